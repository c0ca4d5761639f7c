#!/usr/bin/env python3
"""Validate labelled.jsonl (the masking quality corpus) and print a table of counts.

    python3 Tests/Fixtures/masking/check.py [path/to/labelled.jsonl]

Checks
  * every line is a JSON object with id/kind/category/text/secrets; ids unique; texts unique
  * every secret `value` occurs verbatim in `text`, is delimited by non-token characters,
    and fully matches the format of its detector (GitHub/npm CRC32 checksums, age bech32
    checksum, JWT header/payload decode, ...)
  * positives: no self-identifying secret format occurs in the text outside the labelled values
  * negatives: no self-identifying secret format, no decodable JWT, no URI password and no
    long Bearer credential occurs (documented example keys are allowed in `example-key` only)
  * >= 8 secrets per detector id, >= 600 secrets in total, >= 2500 negatives
Exit status 0 when everything passes, 1 otherwise. Stdlib only; generate.py imports the
scanner from here so that generation and checking agree.
"""
import base64
import binascii
import json
import os
import re
import sys
import zlib
from collections import Counter, OrderedDict

DETECTORS = [
    "aws-access-key-id", "aws-secret-access-key",
    "github-pat", "github-oauth-token", "github-user-token", "github-server-token",
    "github-refresh-token", "github-fine-grained-pat",
    "gitlab-pat", "gitlab-token",
    "slack-token", "slack-webhook-url",
    "stripe-secret-key", "stripe-webhook-secret",
    "openai-api-key", "anthropic-api-key", "anthropic-admin-key",
    "google-api-key", "google-oauth-client-secret", "google-oauth-access-token",
    "gcp-service-account-key-id",
    "azure-storage-account-key", "azure-ad-client-secret",
    "private-key", "jwt", "kubernetes-service-account-token",
    "npm-token", "pypi-token", "huggingface-token", "twilio-api-key", "sendgrid-api-key",
    "digitalocean-token", "databricks-token", "vault-token", "dockerhub-pat", "shopify-token",
    "grafana-cloud-token", "grafana-service-account-token", "sentry-token", "doppler-token",
    "onepassword-service-account-token", "age-secret-key", "heroku-api-key",
    "uri-password", "http-bearer-token", "http-basic-auth", "generic-secret-assignment",
]

NEGATIVE_CATEGORIES = [
    "uuid", "git-sha", "sha256", "md5", "base64-image", "example-key", "placeholder",
    "low-entropy-assignment", "code-identifier", "url-without-password", "version-and-ids",
    "prose", "jwt-like-nonsecret", "near-miss-prefix", "minified-js", "log-lines",
]

MIN_PER_DETECTOR = 8
MIN_SECRETS = 600
MIN_NEGATIVES = 2500
SOFT_TEXT_LIMIT = 2200  # "each text <= ~2 KB except PEM/JSON ones"

# --------------------------------------------------------------------------------------------
# Checksums

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n, width=6):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s.rjust(width, "0")


def crc32_checksum_ok(body36):
    """GitHub classic tokens (and npm granular tokens): 30 random chars + base62(crc32) (6)."""
    return base62(zlib.crc32(body36[:30].encode()) & 0xFFFFFFFF) == body36[30:]


BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32_polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def bech32_hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_ok(s):
    s = s.lower()
    pos = s.rfind("1")
    hrp, data = s[:pos], s[pos + 1:]
    if any(c not in BECH32 for c in data):
        return False
    return bech32_polymod(bech32_hrp_expand(hrp) + [BECH32.index(c) for c in data]) == 1


def b64url_json(seg):
    try:
        raw = base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))
        obj = json.loads(raw.decode("utf-8"))
        return obj if isinstance(obj, dict) else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def jwt_parts(s):
    parts = s.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts):
        return None
    h, p = b64url_json(parts[0]), b64url_json(parts[1])
    if h is None or p is None or "alg" not in h:
        return None
    return h, p


def is_k8s_payload(p):
    iss = p.get("iss", "")
    return (iss in ("https://kubernetes.default.svc.cluster.local", "kubernetes/serviceaccount")
            or isinstance(p.get("kubernetes.io"), dict)
            or any(k.startswith("kubernetes.io/serviceaccount/") for k in p))


# --------------------------------------------------------------------------------------------
# Value formats (full match of the labelled value)

AWS_PREFIX = r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)"
PEM_RE = (r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
          r".+?-----END \1-----")

VALUE_FORMATS = {
    "aws-access-key-id": AWS_PREFIX + r"[A-Z2-7]{16}",
    "aws-secret-access-key": r"(?=.*[0-9])(?=.*[A-Z])(?=.*[a-z])[A-Za-z0-9/+]{40}",
    "github-pat": r"ghp_[A-Za-z0-9]{36}",
    "github-oauth-token": r"gho_[A-Za-z0-9]{36}",
    "github-user-token": r"ghu_[A-Za-z0-9]{36}",
    "github-server-token": r"ghs_[A-Za-z0-9]{36}",
    "github-refresh-token": r"ghr_[A-Za-z0-9]{36}",
    "github-fine-grained-pat": r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
    "gitlab-pat": r"glpat-[A-Za-z0-9_-]{20}",
    "gitlab-token": r"(?:gldt|glrt|glptt|glsoat|glcbt|glimt|glagent|glffct|glft|gloas)-[A-Za-z0-9_-]{20,50}",
    "slack-token": (r"(?:xox[bpars]-(?:[0-9]+-)+[A-Za-z0-9]{8,}|xoxe-[0-9]+-[A-Za-z0-9]{20,}"
                    r"|xapp-[0-9]+-[A-Z0-9]+-[0-9]+-[a-f0-9]{64})"),
    "slack-webhook-url": r"https://hooks\.slack\.com/services/T[A-Z0-9]{8,10}/B[A-Z0-9]{8,10}/[A-Za-z0-9]{24}",
    "stripe-secret-key": r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99}",
    "stripe-webhook-secret": r"whsec_[A-Za-z0-9]{32,64}",
    "openai-api-key": (r"(?:sk-(?:proj|svcacct|admin)-(?=[A-Za-z0-9_-]*T3BlbkFJ)[A-Za-z0-9_-]{40,160}"
                       r"|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})"),
    "anthropic-api-key": r"sk-ant-api03-[A-Za-z0-9_-]{93}AA",
    "anthropic-admin-key": r"sk-ant-admin01-[A-Za-z0-9_-]{93}AA",
    "google-api-key": r"AIza[A-Za-z0-9_-]{35}",
    "google-oauth-client-secret": r"GOCSPX-[A-Za-z0-9_-]{28}",
    "google-oauth-access-token": r"ya29\.[A-Za-z0-9_-]{60,200}",
    "gcp-service-account-key-id": r"[0-9a-f]{40}",
    "azure-storage-account-key": r"[A-Za-z0-9+/]{86}==",
    "azure-ad-client-secret": r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{34}",
    "private-key": PEM_RE,
    "jwt": r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
    "kubernetes-service-account-token": r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
    "npm-token": r"npm_[A-Za-z0-9]{36}",
    "pypi-token": r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{60,180}",
    "huggingface-token": r"hf_[A-Za-z]{34}",
    "twilio-api-key": r"SK[0-9a-f]{32}",
    "sendgrid-api-key": r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
    "digitalocean-token": r"do[opr]_v1_[a-f0-9]{64}",
    "databricks-token": r"dapi[a-f0-9]{32}(?:-[0-9])?",
    "vault-token": r"hv[sb]\.[A-Za-z0-9_-]{24,100}",
    "dockerhub-pat": r"dckr_pat_[A-Za-z0-9_-]{27}",
    "shopify-token": r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
    "grafana-cloud-token": r"glc_[A-Za-z0-9+/]{32,200}={0,2}",
    "grafana-service-account-token": r"glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}",
    "sentry-token": r"(?:sntrys_[A-Za-z0-9+/=_]{60,120}|sntryu_[a-f0-9]{64})",
    "doppler-token": r"dp\.(?:pt|st|sa|ct|scim)\.[A-Za-z0-9]{40,44}",
    "onepassword-service-account-token": r"ops_eyJ[A-Za-z0-9_-]{200,400}",
    "age-secret-key": r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
    "heroku-api-key": r"(?:HRKU-[A-Za-z0-9_-]{60}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
    "uri-password": r"[A-Za-z0-9!$%*_.-]{8,30}",
    "http-bearer-token": r"[A-Za-z0-9._~+/-]{20,200}",
    "http-basic-auth": r"[A-Za-z0-9+/]+={0,2}",
    "generic-secret-assignment": r"[A-Za-z0-9!#%&*+._-]{12,64}",
}
VALUE_RES = {k: re.compile(v, re.S) for k, v in VALUE_FORMATS.items()}

GENERIC_NAME_RE = re.compile(
    r"password|passwd|pwd|secret|token|api_key|apikey|access_key|private_key|client_secret"
    r"|auth_key|credential", re.I)


ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*)[\"']?\s*(?:=>|:=|=|:)\s*[\"'`]?$")
URI_SCHEMES = ("postgres", "postgresql", "mysql", "mongodb", "mongodb+srv", "redis", "rediss",
               "amqp", "amqps", "http", "https", "ftp")


def assigned_name(text, i):
    """Name in a `<name> <sep> <value>` assignment whose value starts at text[i], else None."""
    line_start = text.rfind("\n", 0, i) + 1
    m = ASSIGN_RE.search(text[max(line_start, i - 120):i])
    return m.group(1) if m else None


def context_problem(text, det, v):
    """None when the text gives `v` the context its (context-dependent) detector requires."""
    i = text.find(v)
    before = text[max(0, i - 300):i]
    name = assigned_name(text, i)
    if det == "aws-secret-access-key":
        if name and ((re.search("aws", name, re.I) and re.search("secret", name, re.I))
                     or name.lower() == "secretaccesskey"):
            return None
        for m in re.finditer(AWS_PREFIX + r"[A-Z2-7]{16}", text[:i]):
            if i - m.end() <= 200:
                return None
        return "neither assigned to an aws*secret* name nor within 200 chars after a key id"
    if det == "gcp-service-account-key-id":
        return None if re.search(r'"private_key_id"\s*:\s*"$', before) else "not a private_key_id value"
    if det == "azure-storage-account-key":
        return None if before.endswith("AccountKey=") else "not after AccountKey="
    if det == "http-bearer-token":
        return None if re.search(r"(?i)authorization\W{1,4}bearer $", before) else "not after Authorization: Bearer"
    if det == "http-basic-auth":
        return None if re.search(r"(?i)authorization\W{1,4}basic $", before) else "not after Authorization: Basic"
    if det == "uri-password":
        m = re.search(r"([a-z+]+)://[^\s:/@]*:$", before)
        if not m or m.group(1) not in URI_SCHEMES or text[i + len(v):i + len(v) + 1] != "@":
            return "not scheme://user:PASSWORD@"
        return None
    if det == "generic-secret-assignment":
        return None if name and GENERIC_NAME_RE.search(name) else "not assigned to a secret-like name"
    if det == "heroku-api-key" and not v.startswith("HRKU-"):
        return None if name and "heroku" in name.lower() else "legacy UUID not assigned to HEROKU_*"
    return None


def value_problem(det, v):
    """None when `v` is a well-formed secret for detector `det`, else a short reason."""
    if not VALUE_RES[det].fullmatch(v):
        return "does not match format"
    if det in ("github-pat", "github-oauth-token", "github-user-token", "github-server-token",
               "github-refresh-token"):
        if not crc32_checksum_ok(v[4:]):
            return "bad GitHub CRC32 checksum"
    if det == "age-secret-key" and not bech32_ok(v):
        return "bad bech32 checksum"
    if det in ("jwt", "kubernetes-service-account-token"):
        jp = jwt_parts(v)
        if jp is None:
            return "header/payload do not decode to JSON with alg"
        if (det == "kubernetes-service-account-token") != is_k8s_payload(jp[1]):
            return "kubernetes claims mismatch"
    if det == "http-basic-auth":
        try:
            dec = base64.b64decode(v, validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return "not base64 of text"
        if ":" not in dec:
            return "decoded value has no user:password"
    if det in ("http-bearer-token", "generic-secret-assignment", "uri-password"):
        for d2, rx in SCAN_RES:
            if rx.search(v):
                return "also matches %s (should be labelled as that)" % d2
        if v.startswith("eyJ"):
            return "looks like a JWT"
    if det == "generic-secret-assignment":
        classes = sum(bool(re.search(p, v)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes < 2:
            return "low entropy (fewer than two character classes)"
    return None


# --------------------------------------------------------------------------------------------
# Free-text scanner for self-identifying formats (used on whole texts)

_L = r"(?<![A-Za-z0-9])"
_LW = r"(?<![A-Za-z0-9_-])"
SCAN_FORMATS = [
    ("aws-access-key-id", _L + AWS_PREFIX + r"[A-Z2-7]{16}(?![A-Za-z0-9])"),
    ("github-token", _L + r"gh[pousr]_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    ("github-fine-grained-pat", _L + r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9])"),
    ("gitlab-pat", _L + r"glpat-[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])"),
    ("gitlab-token", _L + r"(?:gldt|glrt|glptt|glsoat|glcbt|glimt|glagent|glffct|glft|gloas)-[A-Za-z0-9_-]{20,50}(?![A-Za-z0-9_-])"),
    ("slack-token", _L + r"xox[bpaers]-[0-9]+-[0-9A-Za-z-]{10,}"),
    ("slack-token", _L + r"xapp-[0-9]+-[A-Z0-9]+-[0-9]+-[a-f0-9]{20,}"),
    ("slack-webhook-url", r"hooks\.slack\.com/services/T[A-Z0-9]{8,10}/B[A-Z0-9]{8,10}/[A-Za-z0-9]{24}"),
    ("stripe-secret-key", _L + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99}(?![A-Za-z0-9])"),
    ("stripe-webhook-secret", _L + r"whsec_[A-Za-z0-9]{32,64}(?![A-Za-z0-9])"),
    ("openai-api-key", _L + r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]*T3BlbkFJ[A-Za-z0-9_-]*"),
    ("openai-api-key", _L + r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9])"),
    ("anthropic-key", _L + r"sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA(?![A-Za-z0-9_-])"),
    ("google-api-key", _L + r"AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"),
    ("google-oauth-client-secret", _L + r"GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])"),
    ("google-oauth-access-token", _L + r"ya29\.[A-Za-z0-9_-]{60,200}(?![A-Za-z0-9_-])"),
    ("azure-storage-account-key", r"AccountKey=[A-Za-z0-9+/]{86}=="),
    ("azure-ad-client-secret", _L + r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{34}(?![A-Za-z0-9_~.-])"),
    ("private-key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----(?:\\n|\s)*[A-Za-z0-9+/]{40}"),
    ("npm-token", _L + r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    ("pypi-token", _L + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{60,}"),
    ("huggingface-token", _L + r"hf_[A-Za-z]{34}(?![A-Za-z0-9])"),
    ("twilio-api-key", _L + r"SK[0-9a-f]{32}(?![A-Za-z0-9])"),
    ("sendgrid-api-key", _L + r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"),
    ("digitalocean-token", _L + r"do[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9])"),
    ("databricks-token", _L + r"dapi[a-f0-9]{32}(?![A-Za-z0-9])"),
    ("vault-token", _L + r"hv[sb]\.[A-Za-z0-9_-]{24,100}(?![A-Za-z0-9_-])"),
    ("dockerhub-pat", _L + r"dckr_pat_[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])"),
    ("shopify-token", _L + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])"),
    ("grafana-cloud-token", _L + r"glc_[A-Za-z0-9+/]{32,200}"),
    ("grafana-service-account-token", _L + r"glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}(?![A-Za-z0-9])"),
    ("sentry-token", _L + r"sntry[su]_[A-Za-z0-9+/=_]{60,}"),
    ("doppler-token", _L + r"dp\.(?:pt|st|sa|ct|scim)\.[A-Za-z0-9]{40,44}(?![A-Za-z0-9])"),
    ("onepassword-service-account-token", _L + r"ops_eyJ[A-Za-z0-9_-]{200,}"),
    ("age-secret-key", _L + r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}(?![A-Za-z0-9])"),
    ("heroku-api-key", _L + r"HRKU-[A-Za-z0-9_-]{60}(?![A-Za-z0-9_-])"),
]
SCAN_RES = [(d, re.compile(r)) for d, r in SCAN_FORMATS]
JWT_SCAN = re.compile(_LW + r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")
URI_PW_SCAN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:([^\s@/'\"]+)@")
BEARER_SCAN = re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]{16,})")
PLACEHOLDERISH = re.compile(
    r"(?i)example|your|xxxx|XXXX|\.\.\.|\*\*\*|redacted|placeholder|changeme|dummy|fake|sample|<|\$|\{")

DOC_EXAMPLE_LITERALS = [
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
]


def is_documented_example(s):
    """Format-valid strings that are documented examples/placeholders (allowed in example-key)."""
    if "EXAMPLE" in s or "example" in s.lower():
        return True
    tail = re.sub(r"^[A-Za-z]+[_.-](?:v1_|pat_|api03-|admin01-)?", "", s)
    if len(set(tail)) <= 4:
        return True
    for seq in ("1234567890abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz",
                "0123456789abcdef0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        if seq in s:
            return True
    return False


def scan(text):
    """Yield (detector, start, end, matched) for self-identifying secret formats in text."""
    for det, rx in SCAN_RES:
        for m in rx.finditer(text):
            if det == "github-token" and not crc32_checksum_ok(m.group(0)[4:]):
                continue  # wrong CRC32: not a GitHub token (the engine checks the checksum)
            yield det, m.start(), m.end(), m.group(0)
    for m in JWT_SCAN.finditer(text):
        if jwt_parts(m.group(0)) is not None:
            yield "jwt", m.start(), m.end(), m.group(0)


def negative_problems(text, category):
    probs = []
    for det, s, e, val in scan(text):
        if category == "example-key" and is_documented_example(val):
            continue
        probs.append("%s-format match %r" % (det, val[:60]))
    for m in URI_PW_SCAN.finditer(text):
        if not PLACEHOLDERISH.search(m.group(1)) and m.group(1).lower() not in (
                "password", "pass", "passwd", "secret", "pwd"):
            probs.append("URI password %r" % m.group(1))
    for m in BEARER_SCAN.finditer(text):
        if not PLACEHOLDERISH.search(m.group(1)) and not re.fullmatch(r"[A-Z_]+", m.group(1)):
            probs.append("Bearer/Basic credential %r" % m.group(1)[:40])
    return probs


# --------------------------------------------------------------------------------------------
# Delimiters

BEFORE_OK = set(" \t\r\n'\"`,;()[]{}<>=:|")
AFTER_OK = set(" \t\r\n'\"`,;()[]{}<>&|\\:@")


def delimited(text, value, det):
    """True when every occurrence of value is delimited by non-token characters."""
    start = 0
    found = False
    while True:
        i = text.find(value, start)
        if i < 0:
            return found
        found = True
        b = text[i - 1] if i > 0 else "\n"
        j = i + len(value)
        a = text[j] if j < len(text) else "\n"
        if det == "uri-password":
            if b != ":" or a != "@":
                return False
        else:
            if b not in BEFORE_OK:
                return False
            if a not in AFTER_OK:
                return False
        start = i + 1


# --------------------------------------------------------------------------------------------

def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    path = argv[1] if len(argv) > 1 else os.path.join(here, "labelled.jsonl")
    errors = []
    warnings = []
    ids = set()
    texts = set()
    sec_per_det = Counter()
    rec_per_cat = Counter()
    multi = Counter()
    neg_per_cat = Counter()
    n_pos = n_neg = 0
    also_count = Counter()
    long_texts = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            where = "line %d" % lineno
            try:
                rec = json.loads(line)
            except ValueError as exc:
                errors.append("%s: invalid JSON: %s" % (where, exc))
                continue
            for key in ("id", "kind", "category", "text", "secrets"):
                if key not in rec:
                    errors.append("%s: missing %r" % (where, key))
            if any(k not in rec for k in ("id", "kind", "category", "text", "secrets")):
                continue
            rid, kind, cat, text, secrets = (rec["id"], rec["kind"], rec["category"],
                                             rec["text"], rec["secrets"])
            where = "%s (%s)" % (where, rid)
            if rid in ids:
                errors.append("%s: duplicate id" % where)
            ids.add(rid)
            if text in texts:
                errors.append("%s: duplicate text" % where)
            texts.add(text)
            rec_also = rec.get("also", [])
            if not isinstance(rec_also, list) or any(a not in DETECTORS for a in rec_also):
                errors.append("%s: bad record-level also %r" % (where, rec_also))
            if kind == "positive":
                n_pos += 1
                if cat not in DETECTORS:
                    errors.append("%s: unknown detector category %r" % (where, cat))
                if not secrets:
                    errors.append("%s: positive without secrets" % where)
                multi[len(secrets)] += 1
                rec_per_cat[cat] += 1
                spans = []
                union_also = []
                for s in secrets:
                    det, val = s.get("detector"), s.get("value")
                    if det not in DETECTORS:
                        errors.append("%s: unknown detector %r" % (where, det))
                        continue
                    if not isinstance(val, str) or val not in text:
                        errors.append("%s: value for %s does not occur verbatim" % (where, det))
                        continue
                    p = value_problem(det, val)
                    if p:
                        errors.append("%s: %s value %r: %s" % (where, det, val[:50], p))
                    c = context_problem(text, det, val)
                    if c:
                        errors.append("%s: %s value %r: %s" % (where, det, val[:50], c))
                    if not delimited(text, val, det):
                        errors.append("%s: %s value not delimited by non-token characters" % (where, det))
                    for a in s.get("also", []):
                        if a not in DETECTORS or a == det:
                            errors.append("%s: bad also %r for %s" % (where, a, det))
                        also_count[(det, a)] += 1
                        if a not in union_also:
                            union_also.append(a)
                    sec_per_det[det] += 1
                    i = text.find(val)
                    while i >= 0:
                        spans.append((i, i + len(val)))
                        i = text.find(val, i + 1)
                if len(secrets) == 1 and sorted(union_also) != sorted(rec_also):
                    errors.append("%s: record-level also differs from the secret's also" % where)
                if len(secrets) > 1 and rec_also:
                    errors.append("%s: record-level also on a multi-secret record (use per-secret also)" % where)
                for det, s0, e0, m in scan(text):
                    if not any(s0 < e1 and s1 < e0 for s1, e1 in spans):
                        errors.append("%s: unlabelled %s-format string %r" % (where, det, m[:60]))
                if len(text) > SOFT_TEXT_LIMIT and not any(
                        s.get("detector") in ("private-key", "gcp-service-account-key-id",
                                              "onepassword-service-account-token") for s in secrets):
                    long_texts += 1
                    warnings.append("%s: text is %d chars" % (where, len(text)))
            elif kind == "negative":
                n_neg += 1
                if cat not in NEGATIVE_CATEGORIES:
                    errors.append("%s: unknown negative category %r" % (where, cat))
                if secrets:
                    errors.append("%s: negative with secrets" % where)
                neg_per_cat[cat] += 1
                for p in negative_problems(text, cat):
                    errors.append("%s: negative contains %s" % (where, p))
                if len(text) > SOFT_TEXT_LIMIT and cat != "base64-image":
                    long_texts += 1
                    warnings.append("%s: text is %d chars" % (where, len(text)))
            else:
                errors.append("%s: bad kind %r" % (where, kind))

    total_secrets = sum(sec_per_det.values())
    for det in DETECTORS:
        if sec_per_det[det] < MIN_PER_DETECTOR:
            errors.append("detector %s has %d secrets (< %d)" % (det, sec_per_det[det], MIN_PER_DETECTOR))
    for cat in NEGATIVE_CATEGORIES:
        if neg_per_cat[cat] == 0:
            errors.append("negative category %s is empty" % cat)
    if total_secrets < MIN_SECRETS:
        errors.append("only %d positive secrets (< %d)" % (total_secrets, MIN_SECRETS))
    if n_neg < MIN_NEGATIVES:
        errors.append("only %d negatives (< %d)" % (n_neg, MIN_NEGATIVES))

    print("Positives by detector (secrets / records whose primary category it is):")
    print("  %-36s %8s %8s" % ("detector", "secrets", "records"))
    for det in DETECTORS:
        print("  %-36s %8d %8d" % (det, sec_per_det[det], rec_per_cat[det]))
    print("  %-36s %8d %8d" % ("TOTAL", total_secrets, n_pos))
    print("  records by number of secrets: " +
          ", ".join("%d secret(s): %d" % (k, multi[k]) for k in sorted(multi)))
    print()
    print("Negatives by category:")
    for cat in NEGATIVE_CATEGORIES:
        print("  %-36s %8d" % (cat, neg_per_cat[cat]))
    print("  %-36s %8d" % ("TOTAL", n_neg))
    print()
    print("Accepted alternatives ('also'):")
    for (det, a), n in sorted(also_count.items()):
        print("  %-36s -> %-28s %5d" % (det, a, n))
    print()
    if warnings:
        print("%d warning(s) (texts over ~2 KB that are not PEM/JSON key files):" % len(warnings))
        for w in warnings[:20]:
            print("  " + w)
    if errors:
        print("%d ERROR(S):" % len(errors))
        for e in errors[:200]:
            print("  " + e)
        return 1
    print("OK: %d records, %d positive records with %d secrets, %d negatives" % (
        n_pos + n_neg, n_pos, total_secrets, n_neg))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
