#!/usr/bin/env python3
"""Generate the labelled secret-masking quality corpus (labelled.jsonl).

    python3 Tests/Fixtures/masking/generate.py          # rewrites labelled.jsonl + README counts
    python3 Tests/Fixtures/masking/check.py             # validates it

Deterministic: one random.Random with a fixed seed drives everything, no sets are iterated,
stdlib only. Every "secret" is random data in the right shape (with valid checksums where the
format has one); nothing here is, or was ever, a live credential.
"""
import base64
import datetime
import json
import os
import random
import re
import string
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the fixtures directory free of __pycache__
import check as C  # noqa: E402  (shared formats/scanner so generation and checking agree)

SEED = 20250611
R = random.Random(SEED)

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DIG = string.digits
ALNUM = UP + LO + DIG
LETTERS = UP + LO
HEX = "0123456789abcdef"
B64 = UP + LO + DIG + "+/"
B64URL = UP + LO + DIG + "-_"
B32AWS = UP + "234567"


def rs(n, alpha=ALNUM):
    return "".join(R.choice(alpha) for _ in range(n))


def pick(seq):
    return R.choice(seq)


def ri(a, b):
    return R.randint(a, b)


def maybe(p):
    return R.random() < p


def wpick(pairs):
    total = sum(w for _, w in pairs)
    x = R.random() * total
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


def b64(b):
    return base64.b64encode(b).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"))


def mixed(n, alpha=ALNUM):
    """Random string with at least one upper, lower and digit (when the alphabet has them)."""
    while True:
        s = rs(n, alpha)
        if ((not any(c in UP for c in alpha) or any(c in UP for c in s))
                and (not any(c in LO for c in alpha) or any(c in LO for c in s))
                and (not any(c in DIG for c in alpha) or any(c in DIG for c in s))):
            return s


def uuid4():
    n = R.getrandbits(128)
    h = "%032x" % n
    h = h[:12] + "4" + h[13:16] + pick("89ab") + h[17:]
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def hexs(n):
    return rs(n, HEX)


EPOCH0 = datetime.datetime(2023, 1, 1, tzinfo=datetime.timezone.utc)


def when():
    return EPOCH0 + datetime.timedelta(seconds=ri(0, 2 * 365 * 86400), microseconds=ri(0, 999999))


def iso():
    return when().strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % ri(0, 999)


def unix():
    return int(when().timestamp())


def logts():
    return pick([
        lambda: iso(),
        lambda: when().strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % ri(0, 999),
        lambda: when().strftime("[%d/%b/%Y:%H:%M:%S +0000]"),
        lambda: when().strftime("%b %d %H:%M:%S"),
        lambda: when().strftime("%Y/%m/%d %H:%M:%S"),
    ])()


def ipv4(private=True):
    if private:
        return pick(["10.%d.%d.%d" % (ri(0, 255), ri(0, 255), ri(1, 254)),
                     "172.%d.%d.%d" % (ri(16, 31), ri(0, 255), ri(1, 254)),
                     "192.168.%d.%d" % (ri(0, 255), ri(1, 254))])
    return "%d.%d.%d.%d" % (ri(11, 223), ri(0, 255), ri(0, 255), ri(1, 254))


ORGS = ["acme", "globex", "initech", "umbrella", "hooli", "piedpiper", "starkind", "wayne-ent",
        "tyrell", "soylent", "cyberdyne", "wonka", "vandelay", "oscorp", "aperture", "massive-dyn",
        "gringotts", "nakatomi", "monarch", "dunder"]
SERVICES = ["billing", "payments", "search", "ingest", "auth", "gateway", "worker", "scheduler",
            "notifier", "reports", "checkout", "inventory", "analytics", "orders", "profile",
            "media", "ledger", "catalog", "webhooks", "mailer", "exporter", "agent-runner"]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "oscar", "peggy", "trent", "victor", "walter", "deploy", "ci-bot", "svc_app",
         "app", "admin", "readonly", "etl", "backup", "grafana", "jenkins", "api_user", "mlops"]
FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Maya", "Noah", "Priya", "Quentin", "Rosa", "Sam", "Tariq", "Uma", "Yuki", "Zoe"]
NAMESPACES = ["default", "prod", "staging", "agents", "ml", "payments", "data", "platform",
              "ci", "monitoring", "dev-sandbox", "team-search"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1"]
REPOS = ["api", "web", "infra", "platform", "terraform-modules", "data-pipeline", "mobile",
         "ml-training", "docs", "helm-charts", "agent-tools", "dotfiles", "backend", "monorepo"]
DBS = ["app", "app_production", "orders", "analytics", "billing", "users", "main", "warehouse"]


def org():
    return pick(ORGS)


def svc():
    return pick(SERVICES)


def user():
    return pick(USERS)


def email():
    return "%s.%s@%s.%s" % (pick(FIRST).lower(), rs(ri(3, 7), LO), org().replace("-", ""),
                            pick(["com", "io", "dev", "co.uk", "net"]))


def host():
    return pick([
        lambda: "%s.internal" % svc(),
        lambda: "%s-db.%s.svc.cluster.local" % (svc(), pick(NAMESPACES)),
        lambda: "db-%d.%s.internal" % (ri(1, 9), org()),
        lambda: "%s.%s.%s.rds.amazonaws.com" % (svc(), rs(12, LO + DIG), pick(REGIONS)),
        lambda: ipv4(),
        lambda: "localhost",
        lambda: "%s.%s.com" % (svc(), org().replace("-", "")),
    ])()


def pod_name():
    return "%s-%s-%s" % (svc(), rs(10, "bcdfghjklmnpqrstvwxz2456789"), rs(5, "bcdfghjklmnpqrstvwxz2456789"))


def semver():
    return "%d.%d.%d" % (ri(0, 5), ri(0, 30), ri(0, 40))


# =============================================================================================
# Secret value generators (random, correct shape, valid checksums)

AWS_PREFIXES = [("AKIA", 75), ("ASIA", 20), ("ABIA", 3), ("ACCA", 2)]


def v_aws_akid():
    while True:
        v = wpick(AWS_PREFIXES) + rs(16, B32AWS)
        if "EXAMPLE" not in v:
            return v


def v_aws_secret():
    while True:
        v = mixed(40, ALNUM + "/+")
        if "EXAMPLE" not in v:
            return v


def gh_classic(prefix):
    body = rs(30)
    return prefix + body + C.base62(zlib.crc32(body.encode()) & 0xFFFFFFFF)


def v_gh_fine():
    return "github_pat_" + "11" + rs(20, UP + DIG) + "_" + rs(59)


def v_glpat():
    return "glpat-" + rs(20, ALNUM + "_-")


GITLAB_PREFIXES = ["gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-", "glimt-", "glagent-",
                   "glffct-", "glft-", "gloas-"]


def v_gitlab_token():
    p = pick(GITLAB_PREFIXES)
    if p == "glrt-" and maybe(0.5):
        return p + "t%d_" % ri(1, 3) + rs(ri(20, 27), ALNUM + "_-")
    if p == "glagent-" and maybe(0.5):
        return p + rs(50, ALNUM)
    return p + rs(ri(20, 50), ALNUM + "_-")


def digits(n):
    return str(ri(1, 9)) + rs(n - 1, DIG)


def v_slack_token():
    k = wpick([("b", 40), ("p", 20), ("app", 12), ("e", 8), ("r", 7), ("s", 7), ("a", 6)])
    if k == "b":
        return "xoxb-%s-%s-%s" % (digits(ri(10, 13)), digits(13), rs(24))
    if k == "p":
        return "xoxp-%s-%s-%s-%s" % (digits(ri(10, 13)), digits(ri(10, 13)), digits(13), hexs(32))
    if k == "a":
        return "xoxa-2-%s-%s-%s-%s" % (digits(12), digits(12), digits(13), hexs(64))
    if k == "r":
        return "xoxr-%s-%s-%s" % (digits(12), digits(13), rs(24))
    if k == "s":
        return "xoxs-%s-%s-%s-%s" % (digits(11), digits(12), digits(13), hexs(64))
    if k == "e":
        return "xoxe-1-%s" % rs(ri(120, 150))
    return "xapp-1-A%s-%s-%s" % (rs(10, UP + DIG), digits(13), hexs(64))


def v_slack_webhook():
    return "https://hooks.slack.com/services/T%s/B%s/%s" % (
        rs(ri(8, 10), UP + DIG), rs(ri(8, 10), UP + DIG), rs(24))


def v_stripe(prefixes=("sk_live_", "sk_live_", "sk_test_", "rk_live_", "rk_test_")):
    p = pick(prefixes)
    if maybe(0.6):
        return p + "51" + rs(97 if maybe(0.7) else ri(40, 97))
    return p + rs(24)


def v_whsec():
    return "whsec_" + rs(pick([32, 32, 40, 64]))


def v_openai():
    k = wpick([("proj", 55), ("svcacct", 15), ("admin", 8), ("legacy", 22)])
    if k == "legacy":
        return "sk-" + rs(20) + "T3BlbkFJ" + rs(20)
    a = ri(16, 76)
    b = a if maybe(0.7) else ri(16, 152 - a)
    return "sk-%s-%s" % (k, rs(a, ALNUM + "_-") + "T3BlbkFJ" + rs(b, ALNUM + "_-"))


def v_anthropic():
    return "sk-ant-api03-" + rs(93, ALNUM + "_-") + "AA"


def v_anthropic_admin():
    return "sk-ant-admin01-" + rs(93, ALNUM + "_-") + "AA"


def v_google_api():
    return "AIza" + ("Sy" + rs(33, ALNUM + "_-") if maybe(0.9) else rs(35, ALNUM + "_-"))


def v_gocspx():
    return "GOCSPX-" + rs(28, ALNUM + "_-")


def v_ya29():
    return "ya29." + pick(["a0Ad", "a0AX", "c.b0A", "a0AfB_by"]).replace(".", "") + rs(ri(56, 190), ALNUM + "_-")


def v_azure_storage():
    return b64(R.randbytes(64))


def v_azure_ad():
    return rs(3, ALNUM) + pick(DIG) + "Q~" + rs(34, ALNUM + "_~.-")


def v_npm():
    body = rs(30)
    return "npm_" + body + C.base62(zlib.crc32(body.encode()) & 0xFFFFFFFF)


def v_pypi():
    return "pypi-AgEIcHlwaS5vcmc" + "CJ" + rs(ri(58, 178), ALNUM + "_-")


def v_hf():
    return "hf_" + rs(34, LETTERS)


def v_twilio():
    return "SK" + hexs(32)


def v_sendgrid():
    return "SG." + rs(22, ALNUM + "_-") + "." + rs(43, ALNUM + "_-")


def v_do():
    return pick(["dop_v1_", "dop_v1_", "doo_v1_", "dor_v1_"]) + hexs(64)


def v_databricks():
    return "dapi" + hexs(32) + ("-2" if maybe(0.25) else "")


def v_vault():
    if maybe(0.7):
        return "hvs." + ("CAESI" + rs(ri(80, 90), ALNUM + "_-") if maybe(0.6) else rs(24))
    return "hvb." + "AAAAAQ" + rs(ri(60, 94), ALNUM + "_-")


def v_dockerhub():
    return "dckr_pat_" + rs(27, ALNUM + "_-")


def v_shopify():
    return pick(["shpat_", "shpat_", "shpca_", "shppa_", "shpss_"]) + hexs(32)


def v_grafana_cloud():
    while True:
        obj = {"o": str(ri(100000, 9999999)),
               "n": "stack-%d-%s" % (ri(100000, 999999), pick(["hm-write-alloy", "integration",
                                                               "otlp-write", "logs-read", "hm-read"])),
               "k": rs(24), "m": {"r": pick(["prod-us-east-0", "prod-eu-west-2", "prod-ap-southeast-1"])}}
        body = b64(jdump(obj).encode())
        if 32 <= len(body.rstrip("=")) <= 200:
            return "glc_" + body


def v_grafana_sa():
    return "glsa_" + rs(32) + "_" + hexs(8)


def v_sentry():
    if maybe(0.3):
        return "sntryu_" + hexs(64)
    while True:
        obj = {"iat": round(unix() + R.random(), 6), "org": pick(ORGS)}
        if maybe(0.4):
            obj = {"iat": obj["iat"], "url": "https://sentry.io", "org": obj["org"][:6]}
        v = "sntrys_" + b64(jdump(obj).encode()) + "_" + rs(43, ALNUM + "+/")
        if 60 <= len(v) - 7 <= 120:
            return v


def v_doppler():
    return "dp." + pick(["pt", "st", "st", "sa", "ct", "scim"]) + "." + rs(ri(40, 44))


def v_onepassword():
    while True:
        obj = {"signInAddress": "%s.1password.com" % org(),
               "email": "%s@1passwordserviceaccounts.com" % rs(13, LO + DIG),
               "srpX": hexs(64), "secretKey": "A3-%s-%s-%s-%s-%s-%s" % (
                   rs(6, UP + DIG), rs(6, UP + DIG), rs(5, UP + DIG), rs(5, UP + DIG),
                   rs(5, UP + DIG), rs(5, UP + DIG)),
               "deviceUuid": rs(26, LO + DIG)}
        if maybe(0.5):
            del obj["deviceUuid"]
        v = "ops_" + b64url(jdump(obj).encode())
        if v.startswith("ops_eyJ") and 200 <= len(v) - 7 <= 400:
            return v


def convertbits(data, frombits, tobits):
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if bits:
        out.append((acc << (tobits - bits)) & maxv)
    return out


def bech32_encode(hrp, data):
    values = C.bech32_hrp_expand(hrp) + data
    polymod = C.bech32_polymod(values + [0] * 6) ^ 1
    chk = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(C.BECH32[d] for d in data + chk)


def v_age():
    return bech32_encode("age-secret-key-", convertbits(R.randbytes(32), 8, 5)).upper()


def age_public():
    return bech32_encode("age", convertbits(R.randbytes(32), 8, 5))


def v_heroku():
    return "HRKU-" + ("AA" + rs(58, ALNUM + "_-") if maybe(0.7) else rs(60, ALNUM + "_-"))


def v_uri_password():
    while True:
        v = mixed(ri(8, 30), ALNUM + "!$*_.-") if maybe(0.5) else mixed(ri(10, 30))
        if not any(rx.search(v) for _, rx in C.SCAN_RES) and not C.PLACEHOLDERISH.search(v):
            return v


def v_bearer():
    while True:
        k = pick(["b64url", "b64url", "hex", "b64", "linear", "notion", "hubspot", "okta",
                  "dotted", "atlassian"])
        if k == "b64url":
            v = b64url(R.randbytes(ri(18, 96)))
        elif k == "hex":
            v = hexs(pick([40, 48, 64]))
        elif k == "b64":
            v = b64(R.randbytes(pick([30, 33, 48, 66]))).rstrip("=")
        elif k == "linear":
            v = "lin_api_" + rs(40)
        elif k == "notion":
            v = "secret_" + rs(43)
        elif k == "hubspot":
            v = "pat-na1-" + uuid4()
        elif k == "okta":
            v = "00" + rs(40, ALNUM + "-_")
        elif k == "dotted":
            v = "%s.%s" % (rs(ri(16, 30)), rs(ri(20, 43), ALNUM + "_-"))
        else:
            v = "ATATT3xFfGF0" + rs(ri(150, 180), ALNUM + "_-")
        if (20 <= len(v) <= 200 and not v.startswith("eyJ") and len(set(v)) > 10
                and not any(rx.search(v) for _, rx in C.SCAN_RES)):
            return v


def v_basic():
    u = pick([user(), email(), "api", "admin", "svc-" + svc(), str(ri(100000, 999999))])
    return b64(("%s:%s" % (u, mixed(ri(10, 28), ALNUM + "!$*_.-#%"))).encode())


def v_generic():
    while True:
        r = R.random()
        if r < 0.45:
            v = mixed(ri(16, 40))
        elif r < 0.68:
            v = mixed(ri(12, 32), ALNUM + "!#%&*+-._")
            if not any(c in "!#%&*+-._" for c in v):
                continue
        elif r < 0.82:
            v = hexs(pick([32, 40, 48, 64]))
        else:
            v = mixed(ri(20, 64), ALNUM + "-.")
        if C.value_problem("generic-secret-assignment", v) is None and not C.PLACEHOLDERISH.search(v):
            return v


def v_gcp_keyid():
    return hexs(40)


# ---------------------------------------------------------------------------------------------
# PEM private keys

def der_len(n):
    return b"\x82" + n.to_bytes(2, "big")


def pem_body_bytes(kind):
    if kind == "RSA PRIVATE KEY":
        n = pick([1190, 1191, 1192, 1193, 1766, 1768, 2349])
        if n > 2300:
            n = 1767
        mod = b"\x02\x82\x01\x01\x00" if n < 1500 else b"\x02\x82\x01\x81\x00"
        head = b"\x30" + der_len(n - 4) + b"\x02\x01\x00" + mod
    elif kind == "PRIVATE KEY":
        n = pick([1216, 1217, 1218, 1793, 1794])
        head = (b"\x30" + der_len(n - 4) + b"\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d"
                b"\x01\x01\x01\x05\x00\x04" + der_len(n - 26) + b"\x30" + der_len(n - 30)
                + b"\x02\x01\x00\x02\x82\x01\x01\x00")
    elif kind == "EC PRIVATE KEY":
        return (b"\x30\x77\x02\x01\x01\x04\x20" + R.randbytes(32) + b"\xa0\x0a\x06\x08\x2a\x86\x48"
                b"\xce\x3d\x03\x01\x07\xa1\x44\x03\x42\x00\x04" + R.randbytes(64))
    elif kind == "OPENSSH PRIVATE KEY":
        algo = pick([b"ssh-ed25519", b"ssh-ed25519", b"ssh-rsa"])
        n = 399 if algo == b"ssh-ed25519" else pick([1823, 2602])
        head = (b"openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00"
                b"\x00\x00\x01\x00\x00\x00" + bytes([len(algo) + 40]) + b"\x00\x00\x00"
                + bytes([len(algo)]) + algo)
    elif kind == "DSA PRIVATE KEY":
        n = pick([444, 445, 446, 447])
        head = b"\x30" + der_len(n - 4) + b"\x02\x01\x00\x02\x81\x81\x00"
    elif kind == "ENCRYPTED PRIVATE KEY":
        n = pick([1298, 1310, 1312, 1864])
        head = (b"\x30" + der_len(n - 4) + b"\x30\x4e\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d"
                b"\x30\x41\x30\x29\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0c\x30\x1c\x04\x08")
    else:  # PGP PRIVATE KEY BLOCK
        n = ri(900, 2000)
        head = b"\x95\x03\x98\x04"
    return head + R.randbytes(n - len(head))


def wrap(s, width):
    return [s[i:i + width] for i in range(0, len(s), width)]


PEM_KINDS = [("RSA PRIVATE KEY", 30), ("PRIVATE KEY", 30), ("OPENSSH PRIVATE KEY", 22),
             ("EC PRIVATE KEY", 9), ("DSA PRIVATE KEY", 3), ("ENCRYPTED PRIVATE KEY", 5),
             ("PGP PRIVATE KEY BLOCK", 5)]


def make_pem(kind=None, legacy_encrypted=None):
    """A PEM private key with real newlines and no trailing newline."""
    kind = kind or wpick(PEM_KINDS)
    body = b64(pem_body_bytes(kind))
    lines = wrap(body, 70 if kind == "OPENSSH PRIVATE KEY" else 64)
    head = []
    if kind == "PGP PRIVATE KEY BLOCK":
        head = ([pick(["Version: GnuPG v2", "Comment: https://gnupg.org", "Version: Keybase OpenPGP v2.1.15"]), ""]
                if maybe(0.4) else [""])
        crc = b64(R.randbytes(3))
        lines = lines + ["=" + crc]
    elif kind == "RSA PRIVATE KEY" and (legacy_encrypted or (legacy_encrypted is None and maybe(0.12))):
        head = ["Proc-Type: 4,ENCRYPTED",
                "DEK-Info: %s,%s" % (pick(["AES-128-CBC", "AES-256-CBC", "DES-EDE3-CBC"]), rs(32, "0123456789ABCDEF")), ""]
    return "\n".join(["-----BEGIN %s-----" % kind] + head + lines + ["-----END %s-----" % kind])


def certificate():
    body = b64(b"\x30\x82\x03" + R.randbytes(ri(700, 900)))
    return "\n".join(["-----BEGIN CERTIFICATE-----"] + wrap(body, 64) + ["-----END CERTIFICATE-----"])


# ---------------------------------------------------------------------------------------------
# JWTs

def jwt_sig(alg):
    return b64url(R.randbytes({"HS256": 32, "HS384": 48, "HS512": 64, "ES256": 64, "ES384": 96,
                               "EdDSA": 64}.get(alg, 256)))


def make_jwt():
    alg = pick(["HS256", "HS256", "RS256", "RS256", "ES256", "HS512", "PS256", "EdDSA", "RS384"])
    header = {"alg": alg, "typ": "JWT"}
    if alg not in ("HS256", "HS512") and maybe(0.7):
        header = {"alg": alg, "kid": pick([rs(20, ALNUM + "-_"), hexs(40), uuid4()]), "typ": "JWT"}
    iat = unix()
    exp = iat + pick([300, 900, 3600, 86400, 604800])
    style = pick(["auth0", "cognito", "firebase", "app", "app", "keycloak", "supabase", "azure"])
    if style == "auth0":
        p = {"iss": "https://%s.us.auth0.com/" % org(), "sub": "auth0|%s" % hexs(24),
             "aud": ["https://api.%s.com" % org(), "https://%s.us.auth0.com/userinfo" % org()],
             "iat": iat, "exp": exp, "azp": rs(32), "scope": "openid profile email"}
    elif style == "cognito":
        p = {"sub": uuid4(), "cognito:groups": ["admin"], "iss": "https://cognito-idp.%s.amazonaws.com/%s_%s" % (
            pick(REGIONS), pick(REGIONS), rs(9)), "client_id": rs(26, LO + DIG), "token_use": "access",
             "scope": "aws.cognito.signin.user.admin", "auth_time": iat, "exp": exp, "iat": iat,
             "jti": uuid4(), "username": user()}
    elif style == "firebase":
        proj = "%s-%s" % (org(), rs(5, LO + DIG))
        p = {"iss": "https://securetoken.google.com/%s" % proj, "aud": proj, "auth_time": iat,
             "user_id": rs(28), "sub": rs(28), "iat": iat, "exp": exp, "email": email(),
             "email_verified": True}
    elif style == "keycloak":
        p = {"exp": exp, "iat": iat, "jti": uuid4(), "iss": "https://sso.%s.com/realms/%s" % (org(), pick(["master", "internal", "customers"])),
             "aud": "account", "sub": uuid4(), "typ": "Bearer", "azp": svc(), "session_state": uuid4(),
             "realm_access": {"roles": ["offline_access", "uma_authorization"]}, "preferred_username": user()}
    elif style == "supabase":
        p = {"iss": "supabase", "ref": rs(20, LO), "role": "service_role", "iat": iat, "exp": iat + 315360000}
    elif style == "azure":
        tid = uuid4()
        p = {"aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/%s/" % tid,
             "iat": iat, "nbf": iat, "exp": exp, "appid": uuid4(), "oid": uuid4(), "tid": tid,
             "sub": uuid4(), "ver": "1.0"}
    else:
        p = {"sub": pick([str(ri(1, 999999)), uuid4(), email()]), "name": "%s %s" % (pick(FIRST), rs(1, UP) + rs(ri(3, 8), LO)),
             "role": pick(["user", "admin", "editor", "viewer"]), "iat": iat, "exp": exp}
        if maybe(0.5):
            p["iss"] = "https://api.%s.com" % org().replace("-", "")
    return b64url(jdump(header).encode()) + "." + b64url(jdump(p).encode()) + "." + jwt_sig(alg)


def make_k8s_jwt():
    ns = pick(NAMESPACES)
    sa = pick(["default", svc(), "%s-sa" % svc(), "agent", "chaperone-proxy", "argocd-server", "external-secrets"])
    iat = unix()
    header = {"alg": "RS256", "kid": rs(43, ALNUM + "-_")}
    style = wpick([("projected", 60), ("legacy", 20), ("eks", 10), ("gke", 10)])
    if style == "legacy":
        p = {"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": ns,
             "kubernetes.io/serviceaccount/secret.name": "%s-token-%s" % (sa, rs(5, LO + DIG)),
             "kubernetes.io/serviceaccount/service-account.name": sa,
             "kubernetes.io/serviceaccount/service-account.uid": uuid4(),
             "sub": "system:serviceaccount:%s:%s" % (ns, sa)}
    else:
        iss = {"projected": "https://kubernetes.default.svc.cluster.local",
               "eks": "https://oidc.eks.%s.amazonaws.com/id/%s" % (pick(REGIONS), rs(32, "0123456789ABCDEF")),
               "gke": "https://container.googleapis.com/v1/projects/%s-prod/locations/us-central1/clusters/main" % org()}[style]
        pod = pod_name()
        p = {"aud": [iss if style != "eks" else "sts.amazonaws.com"], "exp": iat + pick([3607, 3600, 86400]),
             "iat": iat, "iss": iss, "jti": uuid4(),
             "kubernetes.io": {"namespace": ns, "node": {"name": "ip-%s.ec2.internal" % ipv4().replace(".", "-"), "uid": uuid4()},
                               "pod": {"name": pod, "uid": uuid4()},
                               "serviceaccount": {"name": sa, "uid": uuid4()}, "warnafter": iat + 3607},
             "nbf": iat, "sub": "system:serviceaccount:%s:%s" % (ns, sa)}
        if style == "projected" and maybe(0.4):
            del p["kubernetes.io"]["node"]
    return b64url(jdump(header).encode()) + "." + b64url(jdump(p).encode()) + "." + jwt_sig("RS256")


GEN = {
    "aws-access-key-id": v_aws_akid, "aws-secret-access-key": v_aws_secret,
    "github-pat": lambda: gh_classic("ghp_"), "github-oauth-token": lambda: gh_classic("gho_"),
    "github-user-token": lambda: gh_classic("ghu_"), "github-server-token": lambda: gh_classic("ghs_"),
    "github-refresh-token": lambda: gh_classic("ghr_"), "github-fine-grained-pat": v_gh_fine,
    "gitlab-pat": v_glpat, "gitlab-token": v_gitlab_token,
    "slack-token": v_slack_token, "slack-webhook-url": v_slack_webhook,
    "stripe-secret-key": v_stripe, "stripe-webhook-secret": v_whsec,
    "openai-api-key": v_openai, "anthropic-api-key": v_anthropic, "anthropic-admin-key": v_anthropic_admin,
    "google-api-key": v_google_api, "google-oauth-client-secret": v_gocspx,
    "google-oauth-access-token": v_ya29, "gcp-service-account-key-id": v_gcp_keyid,
    "azure-storage-account-key": v_azure_storage, "azure-ad-client-secret": v_azure_ad,
    "jwt": make_jwt, "kubernetes-service-account-token": make_k8s_jwt,
    "npm-token": v_npm, "pypi-token": v_pypi, "huggingface-token": v_hf, "twilio-api-key": v_twilio,
    "sendgrid-api-key": v_sendgrid, "digitalocean-token": v_do, "databricks-token": v_databricks,
    "vault-token": v_vault, "dockerhub-pat": v_dockerhub, "shopify-token": v_shopify,
    "grafana-cloud-token": v_grafana_cloud, "grafana-service-account-token": v_grafana_sa,
    "sentry-token": v_sentry, "doppler-token": v_doppler,
    "onepassword-service-account-token": v_onepassword, "age-secret-key": v_age,
    "heroku-api-key": v_heroku, "uri-password": v_uri_password, "http-bearer-token": v_bearer,
    "http-basic-auth": v_basic, "generic-secret-assignment": v_generic,
}

# Variable names under which each kind of secret is usually stored.
NAMES = {
    "aws-access-key-id": ["AWS_ACCESS_KEY_ID", "aws_access_key_id", "AWS_ACCESS_KEY", "S3_ACCESS_KEY_ID", "AWS_KEY_ID"],
    "aws-secret-access-key": ["AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", "AWS_SECRET_KEY", "awsSecretAccessKey"],
    "github-pat": ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "GH_PAT", "HOMEBREW_GITHUB_API_TOKEN", "GITHUB_API_KEY", "GITHUB_KEY", "RENOVATE_TOKEN"],
    "github-oauth-token": ["GH_TOKEN", "GITHUB_OAUTH_TOKEN", "oauth_token", "GITHUB_TOKEN"],
    "github-user-token": ["GITHUB_USER_TOKEN", "GITHUB_TOKEN", "USER_ACCESS_TOKEN"],
    "github-server-token": ["GITHUB_TOKEN", "INSTALLATION_TOKEN", "GH_APP_TOKEN", "GITHUB_INSTALLATION_ACCESS"],
    "github-refresh-token": ["GITHUB_REFRESH_TOKEN", "refresh_token", "GH_APP_REFRESH"],
    "github-fine-grained-pat": ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "GH_FINE_GRAINED_PAT", "GITHUB_KEY"],
    "gitlab-pat": ["GITLAB_TOKEN", "GITLAB_PRIVATE_TOKEN", "GL_TOKEN", "CI_JOB_PAT", "GITLAB_PAT", "GITLAB_KEY"],
    "gitlab-token": ["GITLAB_DEPLOY_TOKEN", "RUNNER_TOKEN", "CI_REGISTRATION_TOKEN", "GITLAB_AGENT_TOKEN", "GITLAB_FEED_TOKEN", "GITLAB_CREDS"],
    "slack-token": ["SLACK_BOT_TOKEN", "SLACK_TOKEN", "SLACK_USER_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_KEY", "SLACK_KEY"],
    "slack-webhook-url": ["SLACK_WEBHOOK_URL", "SLACK_WEBHOOK", "ALERT_WEBHOOK", "slack_api_url", "NOTIFY_URL"],
    "stripe-secret-key": ["STRIPE_SECRET_KEY", "STRIPE_API_KEY", "STRIPE_KEY", "STRIPE_SK", "stripe_secret"],
    "stripe-webhook-secret": ["STRIPE_WEBHOOK_SECRET", "STRIPE_SIGNING_SECRET", "WEBHOOK_SIGNING_KEY", "STRIPE_WHSEC"],
    "openai-api-key": ["OPENAI_API_KEY", "OPENAI_KEY", "OPENAI_TOKEN", "LLM_API_KEY", "openai_api_key", "OPENAI_ADMIN_KEY", "AZURE_OPENAI_FALLBACK_KEY"],
    "anthropic-api-key": ["ANTHROPIC_API_KEY", "CLAUDE_API_KEY", "ANTHROPIC_KEY", "anthropic_api_key", "LLM_API_KEY"],
    "anthropic-admin-key": ["ANTHROPIC_ADMIN_KEY", "ANTHROPIC_ADMIN_API_KEY", "ANTHROPIC_ORG_ADMIN_KEY"],
    "google-api-key": ["GOOGLE_API_KEY", "GEMINI_API_KEY", "MAPS_API_KEY", "FIREBASE_API_KEY", "YOUTUBE_KEY", "GOOGLE_MAPS_KEY", "PLACES_KEY"],
    "google-oauth-client-secret": ["GOOGLE_CLIENT_SECRET", "OAUTH_CLIENT_SECRET", "client_secret", "GOOGLE_OAUTH_SECRET"],
    "google-oauth-access-token": ["GOOGLE_ACCESS_TOKEN", "ACCESS_TOKEN", "GCLOUD_ACCESS", "GOOGLE_OAUTH_ACCESS_TOKEN"],
    "azure-ad-client-secret": ["AZURE_CLIENT_SECRET", "ARM_CLIENT_SECRET", "AAD_CLIENT_SECRET", "ClientSecret", "MSAL_SECRET", "AZURE_APP_PASSWORD"],
    "jwt": ["ACCESS_TOKEN", "ID_TOKEN", "AUTH_JWT", "SUPABASE_SERVICE_ROLE_KEY", "API_JWT", "SESSION_JWT"],
    "kubernetes-service-account-token": ["KUBE_TOKEN", "K8S_TOKEN", "SA_TOKEN", "KUBERNETES_TOKEN"],
    "npm-token": ["NPM_TOKEN", "NODE_AUTH_TOKEN", "NPM_AUTH_TOKEN", "NPM_PUBLISH_KEY"],
    "pypi-token": ["PYPI_TOKEN", "TWINE_PASSWORD", "PYPI_API_TOKEN", "POETRY_PYPI_TOKEN_PYPI", "UV_PUBLISH_TOKEN"],
    "huggingface-token": ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "HF_API_KEY", "HF_KEY"],
    "twilio-api-key": ["TWILIO_API_KEY", "TWILIO_API_KEY_SID", "TWILIO_KEY_SID"],
    "sendgrid-api-key": ["SENDGRID_API_KEY", "SENDGRID_KEY", "SMTP_PASSWORD", "EMAIL_API_KEY"],
    "digitalocean-token": ["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN", "DO_TOKEN", "DO_API_KEY"],
    "databricks-token": ["DATABRICKS_TOKEN", "DATABRICKS_API_TOKEN", "DATABRICKS_PAT"],
    "vault-token": ["VAULT_TOKEN", "VAULT_ROOT_TOKEN", "VAULT_AUTH"],
    "dockerhub-pat": ["DOCKERHUB_TOKEN", "DOCKER_PASSWORD", "DOCKERHUB_PAT", "DOCKER_HUB_ACCESS"],
    "shopify-token": ["SHOPIFY_ACCESS_TOKEN", "SHOPIFY_ADMIN_TOKEN", "SHOPIFY_API_SECRET", "SHOPIFY_APP_KEY"],
    "grafana-cloud-token": ["GRAFANA_CLOUD_TOKEN", "GRAFANA_CLOUD_API_KEY", "GCLOUD_RW_API_KEY", "PROM_REMOTE_WRITE_PASSWORD"],
    "grafana-service-account-token": ["GRAFANA_TOKEN", "GRAFANA_SERVICE_ACCOUNT_TOKEN", "GRAFANA_API_KEY", "GF_SA"],
    "sentry-token": ["SENTRY_AUTH_TOKEN", "SENTRY_TOKEN", "SENTRY_API_KEY"],
    "doppler-token": ["DOPPLER_TOKEN", "DOPPLER_SERVICE_TOKEN", "DOPPLER_KEY"],
    "onepassword-service-account-token": ["OP_SERVICE_ACCOUNT_TOKEN", "ONEPASSWORD_TOKEN", "OP_TOKEN"],
    "age-secret-key": ["SOPS_AGE_KEY", "AGE_SECRET_KEY", "AGE_KEY", "CHEZMOI_AGE_IDENTITY"],
    "heroku-api-key": ["HEROKU_API_KEY", "HEROKU_TOKEN", "HEROKU_KEY"],
    "generic-secret-assignment": [
        "DB_PASSWORD", "POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "REDIS_PASSWORD",
        "SECRET_KEY", "DJANGO_SECRET_KEY", "JWT_SECRET", "SESSION_SECRET", "APP_SECRET", "CLIENT_SECRET",
        "API_KEY", "api_key", "apiKey", "MySecretToken", "AUTH_TOKEN", "ACCESS_TOKEN", "REFRESH_TOKEN",
        "SMTP_PASSWORD", "LDAP_BIND_PASSWORD", "ADMIN_PWD", "DB_PASSWD", "PRIVATE_KEY_PASSPHRASE",
        "WEBHOOK_SECRET", "X_API_KEY", "TWILIO_AUTH_TOKEN", "MAILGUN_API_KEY", "ALGOLIA_ADMIN_API_KEY",
        "NEXTAUTH_SECRET", "MINIO_SECRET_KEY", "MINIO_ACCESS_KEY", "RABBITMQ_DEFAULT_PASS_TOKEN",
        "KEYCLOAK_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "ENCRYPTION_SECRET", "OAUTH_CLIENT_SECRET",
        "SIGNING_SECRET", "CONSUMER_SECRET", "PAYPAL_CLIENT_SECRET", "DATADOG_API_KEY", "NEW_RELIC_API_KEY",
        "PINECONE_API_KEY", "ELASTIC_PASSWORD", "MONGO_INITDB_ROOT_PASSWORD", "AUTH_KEY", "SERVICE_CREDENTIAL",
        "CLOUDFLARE_API_TOKEN", "OKTA_API_TOKEN", "MIXPANEL_API_SECRET", "BASIC_AUTH_PASSWORD",
        "secret_token", "db_password", "adminPassword", "clientSecret", "accessToken", "authToken",
        "privateKeyPassword", "storePassword", "keystore_password", "kafka_sasl_password",
    ],
}

# Benign lines used around secrets (they must never look like secrets themselves).
ENV_FILLERS = [
    "NODE_ENV=production", "PORT=8080", "LOG_LEVEL=info", "LOG_LEVEL=debug", "APP_NAME=%s-api",
    "AWS_REGION=%s", "DATABASE_HOST=%s", "DATABASE_PORT=5432", "DATABASE_NAME=%s",
    "REDIS_URL=redis://redis:6379/0", "SENTRY_ENVIRONMENT=staging", "FEATURE_NEW_CHECKOUT=true",
    "TZ=UTC", "WORKERS=4", "S3_BUCKET=%s-prod-uploads", "PUBLIC_URL=https://app.%s.com",
    "SMTP_HOST=smtp.mailgun.org", "SMTP_PORT=587", "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317",
    "GOOGLE_CLOUD_PROJECT=%s-prod-372511", "MAX_UPLOAD_MB=25", "CACHE_TTL_SECONDS=300", "DEBUG=false",
    "TOKEN_TTL_SECONDS=3600", "PASSWORD_MIN_LENGTH=12", "SECRET_NAME=%s-secrets", "RAILS_ENV=production",
    "PYTHONUNBUFFERED=1", "GIN_MODE=release", "OPENAI_MODEL=gpt-4o-mini", "ANTHROPIC_MODEL=claude-sonnet-4-20250514",
    "HTTP_TIMEOUT=30s", "RATE_LIMIT_PER_MINUTE=600", "ALLOWED_HOSTS=localhost,127.0.0.1",
    "KAFKA_BROKERS=kafka-0.kafka:9092,kafka-1.kafka:9092", "JAVA_OPTS=-Xms512m -Xmx2g",
]


def filler(k):
    out = []
    for line in R.sample(ENV_FILLERS, k):
        if "%s" in line:
            arg = {"AWS_REGION": pick(REGIONS), "DATABASE_HOST": host()}.get(line.split("=")[0], org() if "%s-" in line or "app." in line else svc())
            line = line % arg
        out.append(line)
    return out


def needs_quote(v):
    return any(c not in ALNUM + "._/+=-" for c in v)


# =============================================================================================
# Templates: render [(name, value)] into text. Assignment-style templates write `name <sep> value`;
# the record's "also" list is derived from the rendered text afterwards (see also_for()).

def camel(name):
    parts = [p for p in re.split(r"[_\-]+", name) if p]
    if not parts:
        return name
    if len(parts) == 1 and not name.isupper():
        return name
    return parts[0].lower() + "".join(p[:1].upper() + p[1:].lower() for p in parts[1:])


def snake(name):
    if name.isupper() or "_" in name:
        return name.lower()
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def kebab(name):
    return snake(name).replace("_", "-")


def t_dotenv(items):
    lines = []
    if maybe(0.5):
        lines.append("# " + pick(["Production settings", "copied from 1Password", "local dev only",
                                  "%s service" % svc(), "DO NOT COMMIT", "staging overrides",
                                  "generated by setup.sh on %s" % iso()[:10]]))
    entries = filler(ri(2, 7))
    for n, v in items:
        q = pick(["", "", '"', "'"]) if not needs_quote(v) else pick(['"', "'"])
        entries.append("%s=%s%s%s" % (n, q, v, q))
    R.shuffle(entries)
    return "\n".join(lines + entries) + "\n"


def t_export(items):
    lines = ["#!/usr/bin/env bash", "set -euo pipefail", ""]
    body = ["export " + f for f in filler(ri(1, 4))]
    for n, v in items:
        q = "'" if needs_quote(v) else pick(["", '"', "'"])
        body.append("export %s=%s%s%s" % (n, q, v, q))
    R.shuffle(body)
    tail = pick(["exec python -m %s.worker" % svc().replace("-", "_"), "npm run start", "./bin/%s serve" % svc(),
                 "docker compose up -d", "terraform apply -auto-approve", "kubectl rollout restart deploy/%s" % svc()])
    if maybe(0.3):
        return "\n".join(body) + "\n"
    return "\n".join(lines + body + ["", tail]) + "\n"


def yq(v):
    return '"%s"' % v if (needs_quote(v) or maybe(0.4)) else v


def t_k8s_secret(items):
    name = "%s-%s" % (svc(), pick(["secrets", "env", "credentials", "config"]))
    out = ["apiVersion: v1", "kind: Secret", "metadata:", "  name: %s" % name,
           "  namespace: %s" % pick(NAMESPACES)]
    if maybe(0.4):
        out += ["  labels:", "    app.kubernetes.io/name: %s" % name.split("-")[0]]
    out += ["type: Opaque", "stringData:"]
    style = pick(["keep", "kebab", "snake"])
    for n, v in items:
        k = n if style == "keep" else (kebab(n) if style == "kebab" else snake(n))
        out.append("  %s: %s" % (k, yq(v)))
    return "\n".join(out) + "\n"


def t_compose(items):
    s = svc()
    out = ["services:", "  %s:" % s, "    image: ghcr.io/%s/%s:%s" % (org(), s, semver()),
           "    restart: unless-stopped"]
    if maybe(0.5):
        out += ["    ports:", '      - "%d:8080"' % ri(3000, 9000)]
    out.append("    environment:")
    lst = maybe(0.5)
    envs = [tuple(f.split("=", 1)) for f in filler(ri(1, 3))] + list(items)
    R.shuffle(envs)
    for n, v in envs:
        if lst:
            out.append("      - %s=%s" % (n, v))
        else:
            out.append("      %s: %s" % (n, yq(v)))
    if maybe(0.4):
        out += ["    depends_on:", "      - postgres", "  postgres:", "    image: postgres:16-alpine"]
    return "\n".join(out) + "\n"


def t_gha(items):
    out = ["name: %s" % pick(["CI", "Deploy", "Release", "Nightly eval", "Integration tests"]),
           "on:", "  push:", "    branches: [main]", "", "jobs:", "  %s:" % pick(["build", "deploy", "test", "publish"]),
           "    runs-on: ubuntu-latest", "    env:"]
    envs = [(n, v) for n, v in items] + [("REGISTRY", "ghcr.io/%s" % org())]
    if maybe(0.5):
        envs.append(("SLACK_CHANNEL", "#deploys"))
    R.shuffle(envs)
    for n, v in envs:
        out.append("      %s: %s" % (n, yq(v) if n != "SLACK_CHANNEL" else '"%s"' % v))
    out += ["    steps:", "      - uses: actions/checkout@v4",
            "      - run: %s" % pick(["make test", "npm ci && npm test", "./scripts/deploy.sh", "pytest -q"])]
    return "\n".join(out) + "\n"


def t_json(items):
    style = pick(["camel", "keep", "snake"])
    d = {}
    d["service"] = svc()
    if maybe(0.5):
        d["region"] = pick(REGIONS)
    for n, v in items:
        k = camel(n) if style == "camel" else (snake(n) if style == "snake" else n)
        d[k] = v
    if maybe(0.5):
        d["timeoutMs"] = pick([5000, 10000, 30000])
    if maybe(0.3):
        d = {"environment": pick(["production", "staging"]), "config": d}
    return json.dumps(d, indent=pick([2, 4])) + "\n"


def t_python(items):
    out = []
    if maybe(0.6):
        out.append(pick(["import os", "import logging\nimport os", "from pathlib import Path"]))
        out.append("")
    if maybe(0.3):
        out.append("# TODO: move these to the secret manager before launch")
    for n, v in items:
        name = n.upper() if maybe(0.6) else snake(n)
        out.append('%s = %s' % (name, pick(['"%s"', "'%s'"]) % v))
    out.append("")
    out.append(pick(["DEBUG = False", "TIMEOUT = 30", "BASE_URL = \"https://api.%s.com/v2\"" % org().replace("-", ""),
                     "logger = logging.getLogger(__name__)" if "logging" in out[0] else "RETRIES = 3"]))
    return "\n".join(out) + "\n"


def t_js(items):
    out = []
    if maybe(0.4):
        out.append(pick(["'use strict';", "import axios from 'axios';", "const express = require('express');"]))
    if maybe(0.5):
        out.append("module.exports = {")
        for n, v in items:
            out.append("  %s: %s," % (camel(n), pick(["'%s'", '"%s"']) % v))
        out.append("  port: process.env.PORT || 3000,")
        out.append("};")
    else:
        for n, v in items:
            out.append("%s %s = %s;" % (pick(["const", "let", "var"]), camel(n) if maybe(0.6) else n,
                                        pick(["'%s'", '"%s"', "`%s`"]) % v))
        out.append(pick(["", "const client = createClient({ timeout: 10_000 });"]))
    return "\n".join(out) + "\n"


def t_go(items):
    out = ["package config", ""]
    if maybe(0.5):
        out.append("const (")
        for n, v in items:
            out.append('\t%s = "%s"' % (camel(n)[:1].upper() + camel(n)[1:], v))
        out.append(")")
    else:
        out.append("func load() Config {")
        for n, v in items:
            out.append('\t%s := "%s"' % (camel(n), v))
        out.append("\treturn Config{}")
        out.append("}")
    return "\n".join(out) + "\n"


def t_go_setenv(items):
    out = ["func TestMain(m *testing.M) {"]
    for n, v in items:
        out.append('\tos.Setenv("%s", "%s")' % (n, v))
    out += ["\tos.Exit(m.Run())", "}"]
    return "\n".join(out) + "\n"


def t_java(items):
    if maybe(0.5):
        out = ["# application.properties", "server.port=8080",
               "spring.application.name=%s" % svc()]
        for n, v in items:
            out.append("%s.%s=%s" % (pick(["app", "integration", svc()]), kebab(n).replace("-", "."), v))
        return "\n".join(out) + "\n"
    out = ["public final class Credentials {"]
    for n, v in items:
        out.append('    private static final String %s = "%s";' % (snake(n).upper(), v))
    out += ["", "    private Credentials() {}", "}"]
    return "\n".join(out) + "\n"


def t_yaml_app(items):
    out = ["# config/%s.yaml" % pick(["production", "settings", "app", "values"]),
           "%s:" % pick(["app", "integrations", "providers", "server"]),
           "  name: %s" % svc()]
    for n, v in items:
        out.append("  %s: %s" % (pick([snake(n), kebab(n), camel(n)]), yq(v)))
    out += ["logging:", "  level: %s" % pick(["info", "warn", "debug"])]
    return "\n".join(out) + "\n"


def t_toml(items):
    out = ["[%s]" % pick(["default", "production", "auth", "tool.%s" % svc(), "settings"])]
    for n, v in items:
        out.append('%s = "%s"' % (snake(n), v))
    out.append('region = "%s"' % pick(REGIONS))
    return "\n".join(out) + "\n"


def t_hcl(items):
    out = ['resource "kubernetes_secret" "%s" {' % svc().replace("-", "_"),
           "  metadata {", '    name = "%s-creds"' % svc(), "  }", "  data = {"]
    for n, v in items:
        out.append('    %s = "%s"' % (snake(n), v))
    out += ["  }", "}"]
    return "\n".join(out) + "\n"


def t_log(items):
    lines = []
    for n, v in items:
        lines.append("%s %s [%s] %s %s=%s %s" % (
            logts(), pick(["DEBUG", "INFO", "WARN", "ERROR"]), svc(),
            pick(["loaded config", "starting client", "env dump:", "retrying request", "init:"]),
            n, v, pick(["region=%s" % pick(REGIONS), "attempt=%d" % ri(1, 5), "pid=%d" % ri(100, 40000), "ok"])))
    if maybe(0.5):
        lines.insert(0, "%s INFO [%s] listening on :%d" % (logts(), svc(), pick([8080, 3000, 9000])))
    return "\n".join(lines) + "\n"


def t_dockerfile(items):
    out = ["FROM %s" % pick(["python:3.12-slim", "node:20-alpine", "golang:1.22 AS build", "eclipse-temurin:21-jre"]),
           "WORKDIR /app"]
    for n, v in items:
        out.append("%s %s=%s" % (pick(["ENV", "ARG"]), n, '"%s"' % v if needs_quote(v) else v))
    out += ["COPY . .", "CMD [%s]" % pick(['"python", "main.py"', '"node", "server.js"', '"./app"'])]
    return "\n".join(out) + "\n"


def t_traceback(items):
    fn = pick(["connect", "_request", "send", "authenticate", "create_client"])
    out = ["Traceback (most recent call last):",
           '  File "/app/%s/client.py", line %d, in %s' % (svc().replace("-", "_"), ri(20, 400), fn),
           "    resp = session.post(url, headers=headers, timeout=30)"]
    out.append("    locals:")
    for n, v in items:
        out.append("      %s = '%s'" % (snake(n), v))
    out.append("      url = 'https://api.%s.com/v1/%s'" % (org().replace("-", ""), pick(["charges", "messages", "events"])))
    out.append(pick(["requests.exceptions.HTTPError: 401 Client Error: Unauthorized",
                     "ConnectionResetError: [Errno 104] Connection reset by peer",
                     "TimeoutError: timed out"]))
    return "\n".join(out) + "\n"


def t_helm_env(items):
    out = ["env:"]
    for n, v in items:
        out += ["  - name: %s" % n, "    value: %s" % ('"%s"' % v)]
    out += ["  - name: LOG_LEVEL", '    value: "info"']
    return "\n".join(out) + "\n"


def t_chat(items):
    if len(items) == 1:
        n, v = items[0]
        return pick([
            "I set %s to %s but it fails with a 401, any idea why?" % (n, v),
            "here is my key: %s\ncan you check if the format is right?" % v,
            "Quick q - I exported %s=%s in my shell and the SDK still says unauthenticated." % (n, v),
            "The value %s keeps getting rejected. I regenerated it twice already." % v,
            "hey, for the staging box use %s (that's the %s), I'll rotate it after the demo" % (v, n),
            "Why does `%s` work in curl but not from the container?" % v,
            "```\n$ echo $%s\n%s\n```\nso the variable is definitely set." % (n, v),
            "pasting the env for context:\n\n    %s=%s\n\nit worked yesterday." % (n, v),
        ])
    body = "\n".join("%s=%s" % (n, v) for n, v in items)
    return pick(["My .env looks like this:\n```\n%s\n```\nbut the app can't connect to anything. Help?" % body,
                 "Here's what I have set right now (will rotate later):\n%s\nWhat am I missing?" % body])


def t_markdown(items):
    out = ["## %s" % pick(["Local setup", "Getting started", "Configuration", "Running the agent"]), "",
           pick(["Copy the values below into `.env`:", "Set these before running `make dev`:",
                 "The staging credentials (ask Priya before changing):"]), "", "```bash"]
    for n, v in items:
        out.append("%s%s=%s" % (pick(["", "export "]), n, v))
    out += ["```", "", pick(["Then run `docker compose up`.", "Restart the server afterwards.", ""])]
    return "\n".join(out) + "\n"


def t_shell_cli(items):
    form = pick(["ps", "cmd", "docker", "kubectl", "helm"])
    if form == "ps":
        return "\n".join('$env:%s = "%s"' % (n, v) for n, v in items) + "\n.\\scripts\\run-agent.ps1\n"
    if form == "cmd":
        return "\n".join("set %s=%s" % (n, v) for n, v in items) + "\npython -m %s\n" % svc().replace("-", "_")
    if form == "docker":
        return "docker run --rm -it \\\n%s  ghcr.io/%s/%s:%s\n" % ("".join("  -e %s=%s \\\n" % (n, v) for n, v in items), org(), svc(), semver())
    if form == "kubectl":
        return "kubectl create secret generic %s-secrets -n %s \\\n%s" % (svc(), pick(NAMESPACES), " \\\n".join("  --from-literal=%s=%s" % (snake(n), v) for n, v in items)) + "\n"
    return "helm upgrade --install %s ./chart \\\n%s" % (svc(), " \\\n".join("  --set secrets.%s=%s" % (camel(n), v) for n, v in items)) + "\n"


def t_xml(items):
    if maybe(0.5):
        out = ["<settings>", "  <servers>"]
        for n, v in items:
            out += ["    <server>", "      <id>%s</id>" % kebab(n), "      <username>%s</username>" % user(),
                    "      <password>%s</password>" % v, "    </server>"]
        out += ["  </servers>", "</settings>"]
    else:
        out = ["<configuration>", "  <appSettings>"]
        for n, v in items:
            out.append('    <add key="%s" value="%s" />' % (camel(n)[:1].upper() + camel(n)[1:], v))
        out += ['    <add key="Environment" value="Production" />', "  </appSettings>", "</configuration>"]
    return "\n".join(out) + "\n"


def t_log_escaped_json(items):
    inner = ",".join('\\"%s\\":\\"%s\\"' % (camel(n), v) for n, v in items)
    return ('{"ts":"%s","level":"error","logger":"%s.http","msg":"upstream rejected request","body":"{\\"model\\":\\"%s\\",%s}","status":401}\n'
            % (iso(), svc(), pick(["gpt-4o-mini", "claude-sonnet-4", "text-embedding-3-small"]), inner))


ASSIGN_TEMPLATES = [(t_dotenv, 16), (t_export, 10), (t_k8s_secret, 8), (t_compose, 7), (t_gha, 5),
                    (t_json, 10), (t_python, 9), (t_js, 7), (t_go, 4), (t_java, 5), (t_yaml_app, 6),
                    (t_toml, 4), (t_hcl, 3), (t_log, 5), (t_dockerfile, 3), (t_traceback, 4),
                    (t_markdown, 5), (t_shell_cli, 6)]
OTHER_TEMPLATES = [(t_chat, 10), (t_go_setenv, 2), (t_helm_env, 2), (t_xml, 3), (t_log_escaped_json, 3)]


# =============================================================================================
# Detector-specific contexts. Each returns (text, [(detector, value), ...]).

def api_url(det):
    o = org().replace("-", "")
    return {
        "openai-api-key": pick(["https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/models",
                                "https://api.openai.com/v1/responses", "https://api.openai.com/v1/embeddings"]),
        "github-pat": "https://api.github.com/%s" % pick(["user", "user/repos", "repos/%s/%s/pulls" % (o, pick(REPOS))]),
        "github-oauth-token": "https://api.github.com/user",
        "github-user-token": "https://api.github.com/user/installations",
        "github-server-token": "https://api.github.com/repos/%s/%s/issues" % (o, pick(REPOS)),
        "github-fine-grained-pat": "https://api.github.com/repos/%s/%s/contents/README.md" % (o, pick(REPOS)),
        "gitlab-pat": "https://gitlab.com/api/v4/projects/%d/pipelines" % ri(1000000, 60000000),
        "slack-token": pick(["https://slack.com/api/chat.postMessage", "https://slack.com/api/conversations.list",
                             "https://slack.com/api/auth.test"]),
        "huggingface-token": pick(["https://huggingface.co/api/whoami-v2",
                                   "https://api-inference.huggingface.co/models/meta-llama/Llama-3.1-8B-Instruct"]),
        "sendgrid-api-key": "https://api.sendgrid.com/v3/mail/send",
        "digitalocean-token": pick(["https://api.digitalocean.com/v2/droplets", "https://api.digitalocean.com/v2/account"]),
        "databricks-token": "https://adb-%s.%d.azuredatabricks.net/api/2.0/clusters/list" % (rs(16, DIG), ri(1, 19)),
        "grafana-service-account-token": "https://grafana.%s.com/api/search?query=%s" % (o, svc()),
        "google-oauth-access-token": pick(["https://www.googleapis.com/drive/v3/files?pageSize=10",
                                           "https://www.googleapis.com/oauth2/v3/userinfo",
                                           "https://storage.googleapis.com/storage/v1/b?project=%s-prod" % o]),
        "jwt": "https://api.%s.com/v1/%s" % (o, pick(["me", "orders", "admin/users", "graphql"])),
        "kubernetes-service-account-token": "https://kubernetes.default.svc/api/v1/namespaces/%s/pods" % pick(NAMESPACES),
        "stripe-secret-key": "https://api.stripe.com/v1/%s" % pick(["customers", "charges?limit=3", "balance"]),
        "heroku-api-key": "https://api.heroku.com/apps",
        "doppler-token": "https://api.doppler.com/v3/configs/config/secrets/download?format=json",
        "sentry-token": "https://sentry.io/api/0/organizations/%s/projects/" % o,
        "vault-token": "https://vault.%s.internal:8200/v1/secret/data/%s" % (o, svc()),
        "anthropic-api-key": "https://api.anthropic.com/v1/messages",
        "http-bearer-token": "https://api.%s.%s/%s" % (o, pick(["com", "io", "dev"]), pick(
            ["v1/events", "v2/users/me", "graphql", "internal/jobs?status=failed", "api/v3/reports/42"])),
    }.get(det, "https://api.%s.com/v1/resource" % o)


def s_curl_bearer(det, v):
    url = api_url(det)
    hdr = pick(['-H "Authorization: Bearer %s"', "-H 'Authorization: Bearer %s'",
                '--header "authorization: Bearer %s"', '-H "Authorization: Bearer %s"']) % v
    extra = pick(["", ' -H "Content-Type: application/json"', " -H 'Accept: application/json'"])
    data = ""
    if "chat/completions" in url or "responses" in url:
        data = " \\\n  -d '{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"user\", \"content\": \"ping\"}]}'"
    cmd = pick(["curl -sS %s \\\n  %s%s%s" % (url, hdr, extra, data),
                "curl %s%s %s%s" % (hdr, extra, url, data),
                "$ curl -i %s %s\nHTTP/2 401\ncontent-type: application/json\n\n{\"error\": \"unauthorized\"}" % (hdr, url)])
    return cmd + "\n", [(det, v)]


def s_http_dump(det, v):
    url = api_url(det)
    m = re.match(r"https://([^/]+)(/.*)?", url)
    h, path = m.group(1), m.group(2) or "/"
    lines = ["%s %s HTTP/1.1" % (pick(["GET", "POST", "GET", "DELETE"]), path), "Host: %s" % h,
             "User-Agent: %s" % pick(["python-requests/2.31.0", "curl/8.5.0", "axios/1.6.7", "Go-http-client/2.0", "okhttp/4.12.0"]),
             "%s: Bearer %s" % (pick(["Authorization", "authorization"]), v), "Accept: */*"]
    if maybe(0.5):
        lines.insert(3, "X-Request-Id: %s" % uuid4())
    pre = pick(["", "> ", ""])
    return "\n".join(pre + l for l in lines) + "\n", [(det, v)]


def s_requests_headers(det, v):
    url = api_url(det)
    return pick([
        'import requests\n\nheaders = {"Authorization": "Bearer %s", "Accept": "application/json"}\nr = requests.get("%s", headers=headers, timeout=10)\nr.raise_for_status()\n' % (v, url),
        "const res = await fetch('%s', {\n  headers: { 'Authorization': 'Bearer %s', 'Content-Type': 'application/json' },\n});\n" % (url, v),
        'req, _ := http.NewRequest("GET", "%s", nil)\nreq.Header.Set("Authorization", "Bearer %s")\nresp, err := http.DefaultClient.Do(req)\n' % (url, v),
        '{\n  "method": "GET",\n  "url": "%s",\n  "headers": {\n    "Authorization": "Bearer %s",\n    "Accept": "application/json"\n  }\n}\n' % (url, v),
    ]), [(det, v)]


def s_log_bearer(det, v):
    return "%s %s [%s] outbound request failed: status=401 url=%s headers={'User-Agent': 'sdk/%s', 'Authorization': 'Bearer %s'}\n" % (
        logts(), pick(["ERROR", "WARN", "DEBUG"]), svc(), api_url(det), semver(), v), [(det, v)]


BEARER_SPECIALS = [s_curl_bearer, s_http_dump, s_requests_headers, s_log_bearer]


def s_chat(det, v, name=None):
    return t_chat([(name or pick(NAMES.get(det, ["TOKEN"])), v)]), [(det, v)]


def s_cli(det, v):
    u = user()
    o = org()
    forms = {
        "huggingface-token": ["huggingface-cli login --token %s", "hf auth login --token %s --add-to-git-credential",
                              "from huggingface_hub import login\nlogin(\"%s\")\n"],
        "npm-token": ["npm config set //registry.npmjs.org/:_authToken %s", "echo \"//npm.pkg.github.com/:_authToken=%s\" >> ~/.npmrc"],
        "pypi-token": ["twine upload -u __token__ -p %s dist/*", "poetry config pypi-token.pypi %s",
                       "uv publish --token %s", "python -m twine upload --repository pypi --password %s dist/*.whl"],
        "digitalocean-token": ["doctl auth init --access-token %s", "doctl -t %s compute droplet list"],
        "vault-token": ["vault login %s", "vault login -method=token token=%s",
                        "curl -H \"X-Vault-Token: %s\" https://vault.%s.internal:8200/v1/secret/data/app" % ("%s", o)],
        "dockerhub-pat": ["echo %s | docker login -u %s --password-stdin" % ("%s", u), "docker login -u %s -p %s" % (u, "%s")],
        "sentry-token": ["sentry-cli --auth-token %s releases new %s" % ("%s", semver()),
                         "npx @sentry/wizard@latest -i nextjs --auth-token %s"],
        "doppler-token": ["doppler run --token %s -- npm start", "doppler secrets download --no-file --format env --token %s"],
        "heroku-api-key": ["machine api.heroku.com\n  login %s\n  password %s\nmachine git.heroku.com\n  login %s\n  password %s" % (email(), "%s", email(), "%s")],
        "gitlab-token": ["docker login -u gitlab+deploy-token-%d -p %s registry.gitlab.com" % (ri(100, 9999), "%s"),
                         "gitlab-runner register --non-interactive --url https://gitlab.com --token %s --executor docker",
                         "curl --header \"PRIVATE-TOKEN: %s\" https://gitlab.%s.com/api/v4/projects" % ("%s", o)],
        "gitlab-pat": ["curl --header \"PRIVATE-TOKEN: %s\" https://gitlab.com/api/v4/user" % "%s",
                       "glab auth login --hostname gitlab.%s.com --token %s" % (o, "%s")],
        "github-pat": ["echo %s | gh auth login --with-token", "gh auth login --with-token <<< %s",
                       "curl -H \"Authorization: token %s\" https://api.github.com/user/repos"],
        "github-fine-grained-pat": ["echo %s | gh auth login --with-token",
                                    "curl -H \"Authorization: token %s\" -H \"X-GitHub-Api-Version: 2022-11-28\" https://api.github.com/repos/%s/%s" % ("%s", o, pick(REPOS))],
        "github-oauth-token": ["curl -H \"Authorization: token %s\" https://api.github.com/user/emails"],
        "shopify-token": ["curl -X GET \"https://%s.myshopify.com/admin/api/2024-04/products.json\" -H \"X-Shopify-Access-Token: %s\"" % (o, "%s")],
        "anthropic-api-key": ["curl https://api.anthropic.com/v1/messages \\\n  -H \"x-api-key: %s\" \\\n  -H \"anthropic-version: 2023-06-01\" \\\n  -H \"content-type: application/json\" \\\n  -d '{\"model\": \"claude-sonnet-4-20250514\", \"max_tokens\": 256, \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'",
                              "client = anthropic.Anthropic(api_key=\"%s\")\nmsg = client.messages.create(model=\"claude-3-5-haiku-latest\", max_tokens=100, messages=[{\"role\": \"user\", \"content\": \"hi\"}])"],
        "anthropic-admin-key": ["curl \"https://api.anthropic.com/v1/organizations/api_keys?limit=20\" \\\n  --header \"anthropic-version: 2023-06-01\" \\\n  --header \"x-api-key: %s\"",
                                "curl https://api.anthropic.com/v1/organizations/users -H 'x-api-key: %s' -H 'anthropic-version: 2023-06-01'"],
        "openai-api-key": ["client = OpenAI(api_key=\"%s\")", "llm = ChatOpenAI(model=\"gpt-4o\", temperature=0, api_key=\"%s\")",
                           "openai.api_key = \"%s\"", "const openai = new OpenAI({ apiKey: '%s' });",
                           "aider --model gpt-4o --openai-api-key %s"],
        "google-api-key": ["<script async src=\"https://maps.googleapis.com/maps/api/js?key=%s&callback=initMap\"></script>",
                           "curl \"https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:generateContent?key=%s\" -H 'Content-Type: application/json' -d '{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}'",
                           "curl -H \"X-Goog-Api-Key: %s\" https://places.googleapis.com/v1/places:searchText",
                           "genai.configure(api_key=\"%s\")"],
        "sendgrid-api-key": ["sg = SendGridAPIClient(\"%s\")\nresponse = sg.send(message)"],
        "stripe-secret-key": ["const stripe = require('stripe')('%s');", "stripe.api_key = \"%s\"",
                              "curl https://api.stripe.com/v1/customers -u %s: -d email=%s" % ("%s", email()),
                              "Stripe.apiKey = \"%s\";"],
        "stripe-webhook-secret": ["> Ready! You are using Stripe API Version [2024-06-20]. Your webhook signing secret is %s (^C to quit)",
                                  "event = stripe.Webhook.construct_event(payload, sig_header, \"%s\")",
                                  "const event = stripe.webhooks.constructEvent(req.body, sig, '%s');"],
        "slack-token": ["client = WebClient(token=\"%s\")", "const app = new App({ token: '%s', socketMode: true });",
                        "curl -X POST -H 'Authorization: Bearer %s' -H 'Content-type: application/json' --data '{\"channel\":\"C0123456789\",\"text\":\"deploy finished\"}' https://slack.com/api/chat.postMessage"],
        "databricks-token": ["databricks configure --token\nDatabricks Host (should begin with https://): https://adb-%s.%d.azuredatabricks.net\nToken: %s" % (rs(16, DIG), ri(1, 19), "%s"),
                             "[DEFAULT]\nhost  = https://%s.cloud.databricks.com\ntoken = %s" % (o, "%s")],
        "age-secret-key": ["# created: %s\n# public key: %s\n%s" % (iso()[:19] + "Z", age_public(), "%s"),
                           "echo \"%s\" > ~/.config/sops/age/keys.txt"],
        "onepassword-service-account-token": ["op run --env-file=.env -- ./deploy.sh   # with OP_SERVICE_ACCOUNT_TOKEN=%s"],
        "twilio-api-key": ["client = Client(\"%s\", os.environ[\"TWILIO_API_SECRET\"], os.environ[\"TWILIO_ACCOUNT_SID\"])"],
    }.get(det)
    if not forms:
        return None
    f = pick(forms)
    return f.replace("%s", v) + "\n", [(det, v)]


def s_git_url(det, v):
    o = org()
    u = pick(["x-access-token", "oauth2", user(), "gitlab-ci-token", "%s-bot" % o]) if det != "github-server-token" else "x-access-token"
    hostn = "gitlab.com" if det.startswith("gitlab") else "github.com"
    url = "https://%s:%s@%s/%s/%s.git" % (u, v, hostn, o, pick(REPOS))
    return pick([
        "git remote set-url origin %s" % url,
        "git clone %s\nCloning into '%s'..." % (url, pick(REPOS)),
        "$ cat ~/.git-credentials\n%s\nhttps://%s:%s@bitbucket.org" % (url.rsplit("/", 2)[0], user(), "${BITBUCKET_APP_PASSWORD}"),
        "[remote \"origin\"]\n\turl = %s\n\tfetch = +refs/heads/*:refs/remotes/origin/*" % url,
    ]) + "\n", [(det, v)]


def s_gh_hosts(det, v):
    return ("github.com:\n    oauth_token: %s\n    user: %s\n    git_protocol: %s\n" % (v, user(), pick(["https", "ssh"])),
            [(det, v)])


def s_gh_oauth_json(det, v):
    at, rt = gh_classic("ghu_"), gh_classic("ghr_")
    d = {"access_token": at, "expires_in": 28800, "refresh_token": rt, "refresh_token_expires_in": 15811200,
         "scope": "", "token_type": "bearer"}
    txt = json.dumps(d, indent=pick([None, 2]))
    if maybe(0.4):
        txt = "POST https://github.com/login/oauth/access_token -> 200\n" + txt
    return txt + "\n", [("github-user-token", at), ("github-refresh-token", rt)]


def s_actions_clone(det, v):
    return ("Run git clone https://x-access-token:%s@github.com/%s/%s.git\nCloning into '%s'...\n" % (
        v, org(), pick(REPOS), pick(REPOS)), [(det, v)])


# --- AWS

def s_aws_ini(det=None, v=None):
    ak, sk = v_aws_akid(), v_aws_secret()
    prof = pick(["default", "prod", "staging", org(), "ci"])
    lines = ["[%s]" % prof, "aws_access_key_id = %s" % ak, "aws_secret_access_key = %s" % sk]
    if maybe(0.5):
        lines.append("region = %s" % pick(REGIONS))
    if maybe(0.4):
        lines = ["[profile readonly]", "role_arn = arn:aws:iam::%s:role/ReadOnly" % rs(12, DIG),
                 "source_profile = %s" % prof, ""] + lines
    if maybe(0.3):
        lines.insert(0, "$ cat ~/.aws/credentials")
    return "\n".join(lines) + "\n", [("aws-access-key-id", ak), ("aws-secret-access-key", sk)]


def s_aws_json(det=None, v=None):
    ak, sk = v_aws_akid(), v_aws_secret()
    d = {"AccessKey": {"UserName": user(), "AccessKeyId": ak, "Status": "Active",
                       "SecretAccessKey": sk, "CreateDate": iso()[:19] + "+00:00"}}
    return "$ aws iam create-access-key --user-name %s\n" % d["AccessKey"]["UserName"] + json.dumps(d, indent=4) + "\n", \
        [("aws-access-key-id", ak), ("aws-secret-access-key", sk)]


def s_aws_boto(det=None, v=None):
    ak, sk = v_aws_akid(), v_aws_secret()
    return pick([
        'import boto3\n\ns3 = boto3.client(\n    "s3",\n    aws_access_key_id="%s",\n    aws_secret_access_key="%s",\n    region_name="%s",\n)\n' % (ak, sk, pick(REGIONS)),
        "const s3 = new S3Client({\n  region: '%s',\n  credentials: { accessKeyId: '%s', secretAccessKey: '%s' },\n});\n" % (pick(REGIONS), ak, sk),
        'provider "aws" {\n  region     = "%s"\n  access_key = "%s"\n  secret_key = "%s"\n}\n' % (pick(REGIONS), ak, sk),
    ]), [("aws-access-key-id", ak), ("aws-secret-access-key", sk)]


def s_aws_configure(det=None, v=None):
    ak, sk = v_aws_akid(), v_aws_secret()
    return ("$ aws configure\nAWS Access Key ID [None]: %s\nAWS Secret Access Key [None]: %s\nDefault region name [None]: %s\nDefault output format [None]: json\n"
            % (ak, sk, pick(REGIONS)), [("aws-access-key-id", ak), ("aws-secret-access-key", sk)])


def s_aws_csv(det=None, v=None):
    ak, sk = v_aws_akid(), v_aws_secret()
    u = user()
    return pick([
        "User name,Password,Access key ID,Secret access key,Console login link\n%s,,%s,%s,https://%s.signin.aws.amazon.com/console\n" % (u, ak, sk, rs(12, DIG)),
        "Access key ID,Secret access key\n%s,%s\n" % (ak, sk),
    ]), [("aws-access-key-id", ak), ("aws-secret-access-key", sk)]


def s_aws_chat(det=None, v=None):
    ak, sk = v_aws_akid(), v_aws_secret()
    return pick([
        "ok here are the creds for the sandbox account: %s / %s - please don't use them in prod\n" % (ak, sk),
        "I created a new IAM user for the agent. key id %s, secret %s\nCan you update the pipeline?\n" % (ak, sk),
        "docker run -e AWS_ACCESS_KEY_ID=%s -e AWS_SECRET_ACCESS_KEY=%s -e AWS_DEFAULT_REGION=%s amazon/aws-cli s3 ls\n" % (ak, sk, pick(REGIONS)),
    ]), [("aws-access-key-id", ak), ("aws-secret-access-key", sk)]


def s_aws_akid_only(det=None, v=None):
    ak = v_aws_akid()
    acct = rs(12, DIG)
    return pick([
        "%s ERROR botocore.exceptions.ClientError: An error occurred (InvalidAccessKeyId) when calling the PutObject operation: The AWS Access Key Id you provided does not exist in our records. (AccessKeyId: %s)\n" % (logts(), ak),
        "{\n  \"eventName\": \"ConsoleLogin\",\n  \"userIdentity\": {\n    \"type\": \"IAMUser\",\n    \"arn\": \"arn:aws:iam::%s:user/%s\",\n    \"accessKeyId\": \"%s\"\n  },\n  \"sourceIPAddress\": \"%s\"\n}\n" % (acct, user(), ak, ipv4(False)),
        "the key %s was found in a public gist, we need to deactivate it in account %s asap\n" % (ak, acct),
    ]), [("aws-access-key-id", ak)]


def s_aws_secret_only(det=None, v=None):
    sk = v_aws_secret()
    return pick([
        "aws_secret_access_key = %s\n" % sk,
        "export AWS_SECRET_ACCESS_KEY=%s\nexport AWS_DEFAULT_REGION=%s\n" % (sk, pick(REGIONS)),
        '{\n  "SecretAccessKey": "%s",\n  "Expiration": "%s"\n}\n' % (sk, iso()),
        "AWS_SECRET_ACCESS_KEY: %s\n" % yq(sk),
        '  aws_secret_access_key: "%s"\n' % sk,
    ]), [("aws-secret-access-key", sk)]


AWS_PAIRS = [s_aws_ini, s_aws_json, s_aws_boto, s_aws_configure, s_aws_csv, s_aws_chat]


# --- Google / GCP

def gcp_sa_json(pem):
    proj = "%s-%s-%d" % (org(), pick(["prod", "data", "ml", "ci"]), ri(100000, 999999))
    sa = "%s@%s.iam.gserviceaccount.com" % (pick([svc(), "terraform", "github-actions", "bq-loader"]), proj)
    kid = v_gcp_keyid()
    d = OrderedDictLike([
        ("type", "service_account"), ("project_id", proj), ("private_key_id", kid),
        ("private_key", pem + "\n"), ("client_email", sa), ("client_id", rs(21, DIG)),
        ("auth_uri", "https://accounts.google.com/o/oauth2/auth"),
        ("token_uri", "https://oauth2.googleapis.com/token"),
        ("auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs"),
        ("client_x509_cert_url", "https://www.googleapis.com/robot/v1/metadata/x509/%s" % sa.replace("@", "%40")),
        ("universe_domain", "googleapis.com")])
    return d, kid


def OrderedDictLike(pairs):
    d = {}
    for k, v in pairs:
        d[k] = v
    return d


def s_gcp(det=None, v=None):
    pem = make_pem("PRIVATE KEY")
    d, kid = gcp_sa_json(pem)
    esc = pem.replace("\n", "\\n")
    form = pick(["file", "file", "file", "oneline-env", "k8s", "tfvars"])
    if form == "file":
        txt = json.dumps(d, indent=2) + "\n"
        if maybe(0.3):
            txt = "$ cat %s\n" % pick(["key.json", "credentials.json", "~/Downloads/%s.json" % d["project_id"]]) + txt
    elif form == "oneline-env":
        txt = "GOOGLE_CREDENTIALS='%s'\n" % json.dumps(d)
    elif form == "k8s":
        body = json.dumps(d, indent=2).replace("\n", "\n    ")
        txt = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gcp-sa\ntype: Opaque\nstringData:\n  key.json: |\n    %s\n" % body
    else:
        txt = "gcp_credentials = <<EOF\n%s\nEOF\n" % json.dumps(d, indent=2)
    assert esc in txt
    return txt, [("gcp-service-account-key-id", kid), ("private-key", esc)]


def s_gocspx(det, v):
    cid = "%s-%s.apps.googleusercontent.com" % (rs(12, DIG), rs(32, LO + DIG))
    d = {pick(["web", "installed"]): {"client_id": cid, "project_id": "%s-%d" % (org(), ri(1000, 999999)),
                                       "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                                       "token_uri": "https://oauth2.googleapis.com/token",
                                       "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                                       "client_secret": v, "redirect_uris": ["http://localhost:8080/callback"]}}
    return pick([json.dumps(d), json.dumps(d, indent=2)]) + "\n", [(det, v)]


def s_ya29(det, v):
    if maybe(0.5):
        d = {"access_token": v, "expires_in": 3599, "scope": "https://www.googleapis.com/auth/cloud-platform",
             "token_type": "Bearer"}
        secrets = [(det, v)]
        if maybe(0.5):
            jt = make_jwt()
            d["id_token"] = jt
            secrets.append(("jwt", jt))
        return json.dumps(d, indent=pick([None, 2])) + "\n", secrets
    return "$ gcloud auth print-access-token\n%s\n" % v, [(det, v)]


def s_firebase(det, v):
    p = "%s-%s" % (org(), rs(5, LO + DIG))
    return ("const firebaseConfig = {\n  apiKey: \"%s\",\n  authDomain: \"%s.firebaseapp.com\",\n  projectId: \"%s\",\n  storageBucket: \"%s.appspot.com\",\n  messagingSenderId: \"%s\",\n  appId: \"1:%s:web:%s\"\n};\n"
            % (v, p, p, p, rs(12, DIG), rs(12, DIG), hexs(22)), [(det, v)])


def s_gservices(det, v):
    return ('{\n  "client": [\n    {\n      "client_info": {\n        "mobilesdk_app_id": "1:%s:android:%s",\n        "android_client_info": { "package_name": "com.%s.app" }\n      },\n      "api_key": [\n        { "current_key": "%s" }\n      ]\n    }\n  ]\n}\n'
            % (rs(12, DIG), hexs(16), org().replace("-", ""), v), [(det, v)])


# --- Azure

def azure_conn(key):
    acct = org().replace("-", "") + pick(["prod", "storage", "data", "logs"]) + rs(3, DIG)
    parts = ["DefaultEndpointsProtocol=https", "AccountName=%s" % acct, "AccountKey=%s" % key,
             "EndpointSuffix=core.windows.net"]
    if maybe(0.2):
        parts = ["BlobEndpoint=https://%s.blob.core.windows.net/" % acct, "AccountName=%s" % acct, "AccountKey=%s" % key]
    return ";".join(parts)


def s_azure_storage(det, v):
    cs = azure_conn(v)
    return pick([
        '{\n  "IsEncrypted": false,\n  "Values": {\n    "AzureWebJobsStorage": "%s",\n    "FUNCTIONS_WORKER_RUNTIME": "dotnet-isolated"\n  }\n}\n' % cs,
        "AZURE_STORAGE_CONNECTION_STRING=\"%s\"\n" % cs,
        'blob_service = BlobServiceClient.from_connection_string("%s")\ncontainer = blob_service.get_container_client("uploads")\n' % cs,
        'var client = new BlobServiceClient("%s");\n' % cs,
        '{\n  "ConnectionStrings": {\n    "Storage": "%s"\n  },\n  "Logging": { "LogLevel": { "Default": "Information" } }\n}\n' % cs,
        "%s WARN  [%s] falling back to connection string %s\n" % (logts(), svc(), cs),
    ]), [(det, v)]


def s_azure_ad(det, v):
    return pick([
        '{\n  "appId": "%s",\n  "displayName": "%s-sp",\n  "password": "%s",\n  "tenant": "%s"\n}\n' % (uuid4(), svc(), v, uuid4()),
        '{\n  "AzureAd": {\n    "Instance": "https://login.microsoftonline.com/",\n    "TenantId": "%s",\n    "ClientId": "%s",\n    "ClientSecret": "%s"\n  }\n}\n' % (uuid4(), uuid4(), v),
        "az login --service-principal -u %s -p %s --tenant %s\n" % (uuid4(), v, uuid4()),
        "credential = ClientSecretCredential(tenant_id=\"%s\", client_id=\"%s\", client_secret=\"%s\")\n" % (uuid4(), uuid4(), v),
    ]), [(det, v)]


# --- private keys

PK_CYCLE = ["RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "RSA-LEGACY-ENC",
            "OPENSSH PRIVATE KEY", "PGP PRIVATE KEY BLOCK", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
            "OPENSSH PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "PRIVATE KEY", "RSA PRIVATE KEY"]
_pk_i = [0]


def s_private_key(det=None, v=None):
    form = pick(["file", "file", "cat", "k8s-tls", "env-escaped", "json-escaped", "yaml-block", "chat",
                 "crlf", "python", "ansible", "terraform"])
    kind = PK_CYCLE[_pk_i[0] % len(PK_CYCLE)]
    _pk_i[0] += 1
    if form in ("k8s-tls", "json-escaped", "python") and kind not in ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"):
        form = pick(["file", "cat", "env-escaped", "yaml-block", "chat"])
    if kind == "RSA-LEGACY-ENC":
        pem = make_pem("RSA PRIVATE KEY", legacy_encrypted=True)
    else:
        pem = make_pem(kind, legacy_encrypted=False)
    if form == "file":
        return pem + "\n", [("private-key", pem)]
    if form == "cat":
        return "$ cat ~/.ssh/%s\n%s\n" % (pick(["id_rsa", "id_ed25519", "deploy_key", "github_actions"]), pem), [("private-key", pem)]
    if form == "crlf":
        val = pem.replace("\n", "\r\n")
        return val + "\r\n", [("private-key", val)]
    if form == "k8s-tls":
        ind = "    "
        val = pem.replace("\n", "\n" + ind)
        crt = certificate().replace("\n", "\n" + ind)
        txt = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s-tls\n  namespace: %s\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n%s%s\n  tls.key: |\n%s%s\n"
               % (svc(), pick(NAMESPACES), ind, crt, ind, val))
        return txt, [("private-key", val)]
    if form == "yaml-block":
        ind = "  "
        val = pem.replace("\n", "\n" + ind)
        key = pick(["private_key", "ssh_private_key", "signing_key", "githubAppPrivateKey", "deploy_key"])
        return "app_id: %d\n%s: |\n%s%s\n" % (ri(10000, 999999), key, ind, val), [("private-key", val)]
    esc = pem.replace("\n", "\\n")
    if form == "env-escaped":
        name = pick(["PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY", "JWT_PRIVATE_KEY", "SSH_KEY", "APNS_KEY", "SIGNING_KEY"])
        return "%s\n%s=\"%s\\n\"\n%s\n" % (filler(1)[0], name, esc, filler(1)[0]), [("private-key", esc)]
    if form == "json-escaped":
        d = {"keyId": rs(10, UP + DIG), "issuer": uuid4(), "privateKey": pem + "\n"}
        txt = json.dumps(d, indent=2) + "\n"
        assert esc in txt
        return txt, [("private-key", esc)]
    if form == "python":
        return 'PRIVATE_KEY = """%s"""\n\ntoken = jwt.encode(payload, PRIVATE_KEY, algorithm="RS256")\n' % pem, [("private-key", pem)]
    if form == "ansible":
        ind = "      "
        val = pem.replace("\n", "\n" + ind)
        return ("- name: install deploy key\n  copy:\n    dest: /home/deploy/.ssh/id_rsa\n    mode: \"0600\"\n    content: |\n%s%s\n" % (ind, val),
                [("private-key", val)])
    if form == "terraform":
        return 'resource "tls_locally_signed_cert" "x" {\n  ca_private_key_pem = <<EOT\n%s\nEOT\n}\n' % pem, [("private-key", pem)]
    return (pick(["can you tell me why ssh says 'invalid format' for this key?\n\n```\n%s\n```\n",
                  "here is the deploy key for the box, add it to the agent:\n%s\nthanks!\n"]) % pem, [("private-key", pem)])


# --- JWT / kubernetes

def s_jwt(det, v):
    form = pick(["bearer", "bearer", "cookie", "storage", "query", "oauth", "log", "chat", "kv"])
    if form == "bearer":
        return pick(BEARER_SPECIALS)(det, v)
    if form == "cookie":
        return ("GET /dashboard HTTP/1.1\nHost: app.%s.com\nCookie: theme=dark; session=%s; _ga=GA1.2.%d.%d\n" % (
            org().replace("-", ""), v, ri(10**8, 10**9), unix()), [(det, v)])
    if form == "storage":
        return (json.dumps({"auth": {"user": {"email": email()}, "accessToken": v, "expiresAt": unix()}}, indent=2) + "\n",
                [(det, v)])
    if form == "query":
        return ("%s - - %s \"GET /ws/connect?token=%s HTTP/1.1\" 101 0 \"-\" \"Mozilla/5.0\"\n" % (ipv4(False), logts(), v), [(det, v)])
    if form == "oauth":
        d = {"access_token": v, "token_type": "Bearer", "expires_in": 3600, "scope": "openid profile"}
        return json.dumps(d, indent=2) + "\n", [(det, v)]
    if form == "log":
        return ("%s DEBUG [%s] verifying token %s\n%s WARN  [%s] token expired, refreshing\n" % (logts(), svc(), v, logts(), svc()),
                [(det, v)])
    if form == "chat":
        return s_chat(det, v)
    return None


def s_k8s(det, v):
    ns = pick(NAMESPACES)
    form = pick(["cat", "kubeconfig", "bearer", "create", "env", "log"])
    if form == "cat":
        return "$ kubectl exec -n %s %s -- cat /var/run/secrets/kubernetes.io/serviceaccount/token\n%s\n" % (ns, pod_name(), v), [(det, v)]
    if form == "kubeconfig":
        return ("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://%s:6443\n  name: %s\nusers:\n- name: %s\n  user:\n    token: %s\ncontexts:\n- context:\n    cluster: %s\n    user: %s\n  name: default\ncurrent-context: default\n"
                % (ipv4(), org(), "sa-" + svc(), v, org(), "sa-" + svc()), [(det, v)])
    if form == "bearer":
        return pick(BEARER_SPECIALS)(det, v)
    if form == "create":
        return "$ kubectl create token %s -n %s --duration=24h\n%s\n" % (pick(["default", svc(), "agent"]), ns, v), [(det, v)]
    if form == "env":
        return t_dotenv([(pick(NAMES[det]), v)]), [(det, v)]
    return "%s INFO  [collector] rejected shipper token %s: audience mismatch\n" % (logts(), v), [(det, v)]


# --- URI passwords

def s_uri(det=None, v=None):
    pw = v or v_uri_password()
    scheme = pick(["postgres", "postgresql", "mysql", "mongodb", "mongodb+srv", "redis", "rediss",
                   "amqp", "amqps", "http", "https", "ftp"])
    u = pick(USERS + ["postgres", "root", "guest_rw", "celery"])
    if scheme.startswith("postgres"):
        url = "%s://%s:%s@%s:5432/%s%s" % (scheme, u, pw, host(), pick(DBS), pick(["", "?sslmode=require", "?sslmode=disable"]))
        name = pick(["DATABASE_URL", "POSTGRES_URL", "SQLALCHEMY_DATABASE_URI", "DB_DSN"])
    elif scheme == "mysql":
        url = "mysql://%s:%s@%s:3306/%s" % (u, pw, host(), pick(DBS))
        name = pick(["DATABASE_URL", "MYSQL_URL", "DB_URI"])
    elif scheme == "mongodb+srv":
        url = "mongodb+srv://%s:%s@cluster0.%s.mongodb.net/%s?retryWrites=true&w=majority" % (u, pw, rs(5, LO + DIG), pick(DBS))
        name = pick(["MONGODB_URI", "MONGO_URL", "DATABASE_URL"])
    elif scheme == "mongodb":
        url = "mongodb://%s:%s@%s:27017/%s?authSource=admin" % (u, pw, host(), pick(DBS))
        name = pick(["MONGODB_URI", "MONGO_URL"])
    elif scheme.startswith("redis"):
        url = "%s://%s:%s@%s:%d/0" % (scheme, pick([u, "default"]), pw, host(), pick([6379, 6380, 25061]))
        name = pick(["REDIS_URL", "CACHE_URL", "CELERY_RESULT_BACKEND"])
    elif scheme.startswith("amqp"):
        url = "%s://%s:%s@%s:%d/%s" % (scheme, u, pw, pick(["rabbitmq", "mq.internal", host()]), 5671 if scheme == "amqps" else 5672, pick(["", "vhost", "%2F"]))
        name = pick(["CELERY_BROKER_URL", "AMQP_URL", "RABBITMQ_URL"])
    elif scheme == "ftp":
        url = "ftp://%s:%s@ftp.%s.com/%s" % (u, pw, org().replace("-", ""), pick(["exports/", "incoming/daily.csv", ""]))
        name = pick(["FTP_URL", "SFTP_TARGET", "EXPORT_URL"])
    else:
        url = "%s://%s:%s@%s" % (scheme, u, pw, pick(["proxy.%s.internal:3128" % org(), "pypi.%s.com/simple/" % org().replace("-", ""),
                                                     "nexus.%s.internal/repository/npm/" % org(), "%s:9200" % host(),
                                                     "registry.%s.io/v2/" % org()]))
        name = pick(["HTTPS_PROXY", "HTTP_PROXY", "PIP_EXTRA_INDEX_URL", "ELASTICSEARCH_URL", "REGISTRY_URL"])
    form = pick(["env", "env", "kv", "code", "log", "cli", "chat"])
    if form == "env":
        txt = t_dotenv([(name, url)])
    elif form == "kv":
        txt = pick([t_k8s_secret, t_compose, t_json, t_yaml_app, t_export])([(name, url)])
    elif form == "code":
        txt = pick([
            'engine = create_engine("%s", pool_pre_ping=True)\n' % url,
            "await mongoose.connect('%s');\n" % url,
            'conn, err := pgx.Connect(ctx, "%s")\n' % url,
            "r = redis.Redis.from_url(\"%s\")\n" % url,
            "app = Celery('tasks', broker='%s')\n" % url,
            'db, err := sql.Open("mysql", "%s")\n' % url,
        ])
    elif form == "log":
        txt = "%s ERROR [%s] could not connect to %s: %s\n" % (logts(), svc(), url, pick(
            ["connection refused", "timeout after 30s", "FATAL: password authentication failed", "no route to host"]))
    elif form == "cli":
        cli = {"postgres": ["psql \"%s\" -c 'select 1'\n", "pg_dump \"%s\" > dump.sql\n"],
               "mysql": ["mysqlsh --uri %s --sql -e 'show tables'\n"],
               "mongodb": ["mongosh \"%s\"\n", "mongodump --uri=\"%s\" --out=/backup\n"],
               "redis": ["redis-cli -u %s ping\n"],
               "amqp": ["rabbitmqadmin --uri %s list queues\n", "celery -A tasks worker --broker %s\n"],
               "ftp": ["wget %s\n", "curl -O %s\n"],
               "http": ["pip install --index-url %s internal-lib==2.3.1\n", "curl -x %s https://ifconfig.me\n",
                        "npm config set registry %s\n"]}
        key = re.match(r"[a-z]+", scheme).group(0)
        key = {"postgresql": "postgres", "rediss": "redis", "amqps": "amqp", "https": "http"}.get(key, key)
        txt = pick(cli[key]) % url
    else:
        txt = "the %s in staging is %s - is that the right format for the driver?\n" % (name, url)
    return txt, [("uri-password", pw)]


# --- Bearer / Basic

def s_bearer(det=None, v=None):
    v = v or v_bearer()
    return pick(BEARER_SPECIALS)("http-bearer-token", v)


def s_basic(det=None, v=None):
    v = v or v_basic()
    o = org().replace("-", "")
    return pick([
        'curl -H "Authorization: Basic %s" https://jenkins.%s.internal/job/%s/build\n' % (v, o, svc()),
        "GET /api/v1/export HTTP/1.1\nHost: %s.%s.com\nAuthorization: Basic %s\nAccept: text/csv\n" % (svc(), o, v),
        'proxy_set_header Authorization "Basic %s";\n' % v,
        '{\n  "url": "https://registry.%s.io/v2/_catalog",\n  "headers": { "Authorization": "Basic %s" }\n}\n' % (o, v),
        "%s DEBUG urllib3 send: b'GET /metrics HTTP/1.1\\r\\nAuthorization: Basic %s\\r\\n'\n" % (logts(), v),
        "requests.get(url, headers={\"Authorization\": \"Basic %s\"})\n" % v,
    ]), [("http-basic-auth", v)]


# --- misc multi-secret contexts

def s_twilio_keys(det, v):
    secret = mixed(32)
    d = {"sid": v, "friendly_name": pick(["ci", "prod-sms", "%s-notifier" % org()]), "secret": secret,
         "date_created": iso()}
    return "$ twilio api:core:keys:create --friendly-name %s -o json\n%s\n" % (d["friendly_name"], json.dumps([d], indent=2)), \
        [(det, v), ("generic-secret-assignment", secret)]


def s_grafana_alloy(det, v):
    return pick([
        'prometheus.remote_write "grafana_cloud" {\n  endpoint {\n    url = "https://prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push"\n    basic_auth {\n      username = "%d"\n      password = "%s"\n    }\n  }\n}\n' % (ri(100000, 2999999), v),
        "remote_write:\n  - url: https://prometheus-prod-24-prod-eu-west-2.grafana.net/api/prom/push\n    basic_auth:\n      username: %d\n      password: %s\n" % (ri(100000, 2999999), v),
        "curl -u %d:%s https://logs-prod-006.grafana.net/loki/api/v1/push -H 'Content-Type: application/json' --data-raw '{\"streams\": []}'\n" % (ri(100000, 2999999), v),
    ]), [(det, v)]


def s_sentryclirc(det, v):
    return "[auth]\ntoken=%s\n\n[defaults]\norg=%s\nproject=%s\n" % (v, org(), svc()), [(det, v)]


def s_npmrc(det, v):
    return pick([
        "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=%s\n" % v,
        "@%s:registry=https://npm.pkg.github.com\n//registry.npmjs.org/:_authToken=%s\nalways-auth=true\n" % (org(), v),
    ]), [(det, v)]


def s_pypirc(det, v):
    return "[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\npassword = %s\n" % v, [(det, v)]


def s_slack_webhook(det, v):
    return pick([
        "curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"Deploy of %s finished\"}' %s\n" % (svc(), v),
        "await fetch(\"%s\", {\n  method: \"POST\",\n  body: JSON.stringify({ text: `build ${id} failed` }),\n});\n" % v,
        "receivers:\n  - name: slack-oncall\n    slack_configs:\n      - api_url: '%s'\n        channel: '#oncall'\n        send_resolved: true\n" % v,
        "requests.post(\"%s\", json={\"text\": msg}, timeout=5)\n" % v,
    ]), [(det, v)]


def s_op_gha(det, v):
    return ("jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: 1password/load-secrets-action@v2\n        env:\n          OP_SERVICE_ACCOUNT_TOKEN: %s\n          DB_PASSWORD: op://prod/postgres/password\n" % v,
            [(det, v)])


def s_heroku_legacy(det, v):
    u = uuid4()
    return pick([t_dotenv, t_export, t_gha, t_compose])([("HEROKU_API_KEY", u)]), [(det, u)]


SPECIALS = {
    "aws-access-key-id": AWS_PAIRS + [s_aws_akid_only, s_aws_akid_only],
    "aws-secret-access-key": AWS_PAIRS + [s_aws_secret_only, s_aws_secret_only, s_aws_secret_only],
    "github-pat": [s_git_url, s_cli, s_cli, s_curl_bearer, s_chat],
    "github-oauth-token": [s_gh_hosts, s_gh_hosts, s_cli],
    "github-user-token": [s_gh_oauth_json, s_curl_bearer],
    "github-server-token": [s_actions_clone, s_git_url, s_curl_bearer],
    "github-refresh-token": [s_gh_oauth_json],
    "github-fine-grained-pat": [s_git_url, s_cli, s_curl_bearer, s_chat],
    "gitlab-pat": [s_git_url, s_cli, s_curl_bearer],
    "gitlab-token": [s_cli, s_git_url],
    "slack-token": [s_cli, s_cli, s_curl_bearer, s_chat],
    "slack-webhook-url": [s_slack_webhook, s_slack_webhook],
    "stripe-secret-key": [s_cli, s_cli, s_curl_bearer, s_chat],
    "stripe-webhook-secret": [s_cli, s_cli],
    "openai-api-key": [s_cli, s_cli, s_curl_bearer, s_http_dump, s_requests_headers, s_log_bearer, s_chat],
    "anthropic-api-key": [s_cli, s_cli, s_chat],
    "anthropic-admin-key": [s_cli],
    "google-api-key": [s_cli, s_cli, s_firebase, s_gservices],
    "google-oauth-client-secret": [s_gocspx, s_gocspx],
    "google-oauth-access-token": [s_ya29, s_ya29, s_curl_bearer, s_http_dump],
    "gcp-service-account-key-id": [s_gcp],
    "azure-storage-account-key": [s_azure_storage],
    "azure-ad-client-secret": [s_azure_ad, s_azure_ad],
    "private-key": [s_private_key],
    "jwt": [s_jwt],
    "kubernetes-service-account-token": [s_k8s],
    "npm-token": [s_npmrc, s_npmrc, s_cli],
    "pypi-token": [s_pypirc, s_cli],
    "huggingface-token": [s_cli, s_curl_bearer, s_chat],
    "twilio-api-key": [s_twilio_keys, s_cli],
    "sendgrid-api-key": [s_cli, s_curl_bearer],
    "digitalocean-token": [s_cli, s_curl_bearer],
    "databricks-token": [s_cli, s_curl_bearer],
    "vault-token": [s_cli, s_cli],
    "dockerhub-pat": [s_cli],
    "shopify-token": [s_cli],
    "grafana-cloud-token": [s_grafana_alloy],
    "grafana-service-account-token": [s_curl_bearer, s_http_dump],
    "sentry-token": [s_sentryclirc, s_cli, s_curl_bearer],
    "doppler-token": [s_cli, s_curl_bearer],
    "onepassword-service-account-token": [s_op_gha, s_cli],
    "age-secret-key": [s_cli],
    "heroku-api-key": [s_cli, s_curl_bearer, s_heroku_legacy, s_heroku_legacy],
    "uri-password": [s_uri],
    "http-bearer-token": [s_bearer],
    "http-basic-auth": [s_basic],
}

# Probability of a detector-specific context (vs a generic name=value template).
P_SPECIAL = {"aws-access-key-id": 0.75, "aws-secret-access-key": 0.8, "gcp-service-account-key-id": 1.0,
             "azure-storage-account-key": 1.0, "private-key": 1.0, "uri-password": 1.0,
             "http-bearer-token": 1.0, "http-basic-auth": 1.0, "github-refresh-token": 1.0,
             "github-user-token": 0.6, "slack-webhook-url": 0.6, "generic-secret-assignment": 0.0,
             "grafana-cloud-token": 0.5, "google-oauth-client-secret": 0.5, "jwt": 0.8,
             "kubernetes-service-account-token": 1.0, "github-oauth-token": 0.6}

# Extra secrets that may share a config file with the primary one.
EXTRA_POOL = ["generic-secret-assignment", "generic-secret-assignment", "generic-secret-assignment",
              "github-pat", "openai-api-key", "anthropic-api-key", "stripe-secret-key", "slack-token",
              "sendgrid-api-key", "huggingface-token", "npm-token", "google-api-key", "sentry-token",
              "digitalocean-token", "aws-pair", "uri-password", "slack-webhook-url", "databricks-token",
              "stripe-webhook-secret", "dockerhub-pat", "vault-token"]

URI_NAMES = ["DATABASE_URL", "REDIS_URL", "MONGODB_URI", "CELERY_BROKER_URL"]


def extra_items(exclude, used_names):
    items, secrets = [], []
    for _ in range(ri(1, 2)):
        d = pick(EXTRA_POOL)
        if d == exclude:
            continue
        if d == "aws-pair":
            ak, sk = v_aws_akid(), v_aws_secret()
            if "AWS_ACCESS_KEY_ID" in used_names:
                continue
            items += [("AWS_ACCESS_KEY_ID", ak), ("AWS_SECRET_ACCESS_KEY", sk)]
            secrets += [("aws-access-key-id", ak), ("aws-secret-access-key", sk)]
            used_names += ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
            continue
        if d == "uri-password":
            pw = v_uri_password()
            n = pick([x for x in URI_NAMES if x not in used_names] or ["DB_URL"])
            items.append((n, "postgres://%s:%s@%s:5432/%s" % (user(), pw, host(), pick(DBS))))
            secrets.append((d, pw))
            used_names.append(n)
            continue
        names = [n for n in NAMES[d] if n not in used_names]
        if not names:
            continue
        n = pick(names)
        v = GEN[d]()
        items.append((n, v))
        secrets.append((d, v))
        used_names.append(n)
    return items, secrets


def kv_record(det):
    n = pick(NAMES[det])
    v = GEN[det]()
    items, secrets = [(n, v)], [(det, v)]
    if maybe(0.22):
        more_items, more_secrets = extra_items(det, [n])
        items += more_items
        secrets += more_secrets
        R.shuffle(items)
    needs_assign = any(d in ("generic-secret-assignment", "aws-secret-access-key") for d, _ in secrets) \
        or (det == "heroku-api-key" and not v.startswith("HRKU-"))
    pool = ASSIGN_TEMPLATES if (needs_assign or len(items) > 1) else ASSIGN_TEMPLATES + OTHER_TEMPLATES
    for _ in range(40):
        tmpl = wpick(pool)
        txt = tmpl(items)
        if all(C.context_problem(txt, d, val) is None for d, val in secrets):
            return txt, secrets
    raise RuntimeError("could not render %s" % det)


def emit(det):
    p = P_SPECIAL.get(det, 0.5)
    if det in SPECIALS and maybe(p):
        for _ in range(20):
            fn = pick(SPECIALS[det])
            v = GEN[det]() if det in GEN else None
            out = fn(det, v)
            if out is not None:
                return out
    return kv_record(det)


# ---------------------------------------------------------------------------------------------
# "also": other detector ids that may legitimately report the same value

BEARER_BEFORE = re.compile(r"(?i)bearer\s+$")
URI_BEFORE = re.compile(r"://[^\s/@:]*:$")


def also_for(text, det, value):
    i = text.find(value)
    before = text[max(0, i - 200):i]
    out = []
    name = C.assigned_name(text, i)
    if det not in ("generic-secret-assignment", "private-key", "uri-password", "http-bearer-token",
                   "http-basic-auth") and name and C.GENERIC_NAME_RE.search(name):
        out.append("generic-secret-assignment")
    if det != "http-bearer-token" and BEARER_BEFORE.search(before):
        out.append("http-bearer-token")
    if det != "uri-password" and URI_BEFORE.search(before) and text[i + len(value):i + len(value) + 1] == "@":
        out.append("uri-password")
    if det == "kubernetes-service-account-token":
        out.append("jwt")
    return out


# Primary records per detector (multi-secret records add more secrets on top).
PLAN = [
    ("aws-access-key-id", 26), ("aws-secret-access-key", 10),
    ("github-pat", 30), ("github-oauth-token", 10), ("github-user-token", 8), ("github-server-token", 10),
    ("github-refresh-token", 6), ("github-fine-grained-pat", 14),
    ("gitlab-pat", 14), ("gitlab-token", 12),
    ("slack-token", 20), ("slack-webhook-url", 12),
    ("stripe-secret-key", 20), ("stripe-webhook-secret", 10),
    ("openai-api-key", 32), ("anthropic-api-key", 26), ("anthropic-admin-key", 9),
    ("google-api-key", 16), ("google-oauth-client-secret", 10), ("google-oauth-access-token", 10),
    ("gcp-service-account-key-id", 12),
    ("azure-storage-account-key", 12), ("azure-ad-client-secret", 12),
    ("private-key", 30), ("jwt", 24), ("kubernetes-service-account-token", 15),
    ("npm-token", 12), ("pypi-token", 10), ("huggingface-token", 14), ("twilio-api-key", 9),
    ("sendgrid-api-key", 10), ("digitalocean-token", 10), ("databricks-token", 10), ("vault-token", 10),
    ("dockerhub-pat", 10), ("shopify-token", 9), ("grafana-cloud-token", 9),
    ("grafana-service-account-token", 9), ("sentry-token", 10), ("doppler-token", 9),
    ("onepassword-service-account-token", 9), ("age-secret-key", 9), ("heroku-api-key", 12),
    ("uri-password", 40), ("http-bearer-token", 30), ("http-basic-auth", 14),
    ("generic-secret-assignment", 70),
]


def build_positives():
    order = []
    for det, n in PLAN:
        order += [det] * n
    R.shuffle(order)
    recs = []
    seen = set()
    for det in order:
        for _ in range(50):
            text, secrets = emit(det)
            if maybe(0.25):
                text = text.rstrip("\n")
            if text not in seen:
                break
        seen.add(text)
        recs.append((det, text, secrets))
    return recs


# =============================================================================================
# Hard negatives. Each generator returns one text that contains NO secret.

COMMIT_MSGS = ["Fix token refresh race in auth middleware", "Bump axios from 1.6.7 to 1.7.2",
               "Add retry with jitter to webhook sender", "Remove unused secret rotation job",
               "Refactor password reset email template", "Update README with setup steps",
               "Pin actions to full-length commit SHAs", "Handle expired API key errors gracefully",
               "chore(deps): update dependency pytest to v8.2.0", "feat: stream responses to the client",
               "fix: don't log the Authorization header", "Merge pull request #%d from %s/fix-ci" ,
               "Add key rotation docs", "Speed up tokenizer by caching merges", "Revert broken migration"]


def commit_msg():
    m = pick(COMMIT_MSGS)
    return m % (ri(100, 9999), org()) if "%d" in m else m


def person():
    return "%s %s" % (pick(FIRST), rs(1, UP) + rs(ri(3, 8), LO))


def fname():
    return pick(["%s-%s-linux-amd64.tar.gz" % (svc(), semver()), "%s_%s_darwin_arm64.zip" % (svc(), semver()),
                 "node-v20.%d.0-linux-x64.tar.xz" % ri(1, 15), "model-%05d-of-00004.safetensors" % ri(1, 4),
                 "backup-%s.sql.gz" % iso()[:10], "dist/%s-%s-py3-none-any.whl" % (svc().replace("-", "_"), semver()),
                 "terraform_1.%d.%d_linux_amd64.zip" % (ri(3, 9), ri(0, 5)), "ubuntu-24.04-live-server-amd64.iso"])


def neg_uuid():
    u, u2, u3 = uuid4(), uuid4(), uuid4()
    return pick([
        lambda: '{"id": "%s", "status": "%s", "created_at": "%s"}' % (u, pick(["queued", "running", "succeeded", "failed"]), iso()),
        lambda: "X-Request-Id: %s" % u,
        lambda: "%s INFO [%s] request_id=%s method=%s path=/api/v1/%s status=%d duration_ms=%d" % (
            logts(), svc(), u, pick(["GET", "POST", "PUT"]), pick(["orders", "users/me", "search", "tokens/verify"]), pick([200, 201, 204, 404]), ri(2, 900)),
        lambda: "AZURE_TENANT_ID=%s\nAZURE_SUBSCRIPTION_ID=%s\nAZURE_CLIENT_ID=%s\nAZURE_CLIENT_SECRET=${AZURE_CLIENT_SECRET}" % (u, u2, u3),
        lambda: "metadata:\n  name: %s\n  namespace: %s\n  uid: %s\n  resourceVersion: \"%d\"\n  creationTimestamp: \"%s\"" % (pod_name(), pick(NAMESPACES), u, ri(10000, 9999999), iso()[:19] + "Z"),
        lambda: "correlationId: %s" % u,
        lambda: '[Guid("%s")]\npublic interface I%sService { }' % (u.upper(), svc().split("-")[0].capitalize()),
        lambda: "HKEY_CLASSES_ROOT\\CLSID\\{%s}\\InprocServer32" % u.upper(),
        lambda: "Job %s finished in %.1fs (%d retries)" % (u, R.random() * 100, ri(0, 4)),
        lambda: "INSERT INTO orders (id, customer_id, total) VALUES ('%s', '%s', %d.%02d);" % (u, u2, ri(1, 999), ri(0, 99)),
        lambda: '{"traceId": "%s", "spanId": "%s", "level": "info", "msg": "cache miss"}' % (u, hexs(16)),
        lambda: "session %s expired after 30m of inactivity" % u,
        lambda: "Idempotency-Key: %s" % u,
        lambda: 'Project("{%s}") = "%s", "src\\%s.csproj", "{%s}"' % (u.upper(), svc(), svc(), u2.upper()),
        lambda: "$ az account show --query id -o tsv\n%s" % u,
        lambda: "the run id is %s, can you look at why step 3 hung?" % u,
        lambda: "kubectl get pods -A -o custom-columns=NAME:.metadata.name,UID:.metadata.uid\n%s   %s\n%s   %s" % (pod_name(), u, pod_name(), u2),
        lambda: "| %s | %s | %s |" % (u, pick(["active", "disabled"]), iso()[:10]),
        lambda: '"userId": "%s",\n"orgId": "%s",\n"deviceId": "%s"' % (u, u2, u3),
        lambda: "Deleted volume %s (pvc-%s)" % (u, u2),
        lambda: 'ws.send(JSON.stringify({ type: "subscribe", channel: "orders", clientId: "%s" }));' % u,
    ])()


def neg_git_sha():
    sha, sha2 = hexs(40), hexs(40)
    short, short2 = sha[:ri(7, 12)], sha2[:ri(7, 12)]
    return pick([
        lambda: "commit %s\nAuthor: %s <%s>\nDate:   %s\n\n    %s\n" % (sha, person(), email(), when().strftime("%a %b %d %H:%M:%S %Y +0000"), commit_msg()),
        lambda: "git checkout %s" % short,
        lambda: "HEAD is now at %s %s" % (short, commit_msg()),
        lambda: "[main %s] %s\n %d files changed, %d insertions(+), %d deletions(-)" % (short, commit_msg(), ri(1, 20), ri(1, 400), ri(0, 200)),
        lambda: "Merge: %s %s" % (short, short2),
        lambda: "\n".join("%s %s" % (hexs(ri(7, 9)), commit_msg()) for _ in range(ri(3, 8))),
        lambda: "GIT_COMMIT=%s\nBUILD_NUMBER=%d\nBRANCH_NAME=main" % (sha, ri(100, 9000)),
        lambda: "      - uses: actions/checkout@%s # v4.1.%d\n      - uses: actions/setup-node@%s # v4.0.2" % (sha, ri(0, 7), sha2),
        lambda: '{"sha": "%s", "commit": {"message": "%s", "tree": {"sha": "%s"}}, "html_url": "https://github.com/%s/%s/commit/%s"}' % (sha, commit_msg(), sha2, org(), pick(REPOS), sha),
        lambda: "repos:\n-   repo: https://github.com/psf/black\n    rev: %s  # frozen: 24.%d.0\n    hooks:\n    -   id: black" % (sha, ri(1, 10)),
        lambda: "require github.com/%s/%s v0.0.0-%s-%s" % (org(), pick(REPOS), when().strftime("%Y%m%d%H%M%S"), sha[:12]),
        lambda: "image: ghcr.io/%s/%s:sha-%s" % (org(), svc(), sha[:7]),
        lambda: "To github.com:%s/%s.git\n   %s..%s  main -> main" % (org(), pick(REPOS), short, short2),
        lambda: "diff --git a/src/auth.py b/src/auth.py\nindex %s..%s 100644\n--- a/src/auth.py\n+++ b/src/auth.py" % (short, short2),
        lambda: "fatal: reference is not a tree: %s" % sha,
        lambda: 'Revert "%s"\n\nThis reverts commit %s.' % (commit_msg(), sha),
        lambda: '"revision" : "%s",\n"version" : "%s"' % (sha, semver()),
        lambda: "Deployed %s@%s to %s (build %d)" % (svc(), short, pick(["prod", "staging"]), ri(100, 9999)),
        lambda: "cherry-picked from %s, see #%d" % (sha, ri(10, 9999)),
        lambda: "SOURCE_VERSION=%s" % sha,
    ])()


def neg_sha256():
    h, h2 = hexs(64), hexs(64)
    return pick([
        lambda: "%s  %s" % (h, fname()),
        lambda: "SHA256 (%s) = %s" % (fname(), h),
        lambda: 'class %s < Formula\n  url "https://github.com/%s/%s/archive/v%s.tar.gz"\n  sha256 "%s"\n  license "MIT"\nend' % (svc().capitalize().replace("-", ""), org(), svc(), semver(), h),
        lambda: "ARG KUBECTL_SHA256=%s\nRUN echo \"${KUBECTL_SHA256}  kubectl\" | sha256sum -c -" % h,
        lambda: "requests==2.31.0 \\\n    --hash=sha256:%s \\\n    --hash=sha256:%s" % (h, h2),
        lambda: '[[package]]\nname = "%s"\nversion = "%s"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "%s"' % (pick(["serde", "tokio", "hyper", "rand", "regex"]), semver(), h),
        lambda: 'provider "registry.terraform.io/hashicorp/aws" {\n  version = "5.%d.0"\n  hashes = [\n    "h1:%s",\n    "zh:%s",\n    "zh:%s",\n  ]\n}' % (ri(10, 60), b64(R.randbytes(32)), h, h2),
        lambda: "x-amz-content-sha256: %s" % h,
        lambda: "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d" % (h, ri(1000, 10**9)),
        lambda: '"sha256": "%s",\n"size": %d' % (h, ri(1000, 10**8)),
        lambda: "%s  %s\n%s  %s" % (h, fname(), h2, fname()),
        lambda: "Verifying checksum %s... OK" % h,
        lambda: "golang.org/x/%s v0.%d.0 h1:%s" % (pick(["net", "sys", "crypto", "text"]), ri(10, 30), b64(R.randbytes(32))),
        lambda: "<component group=\"com.squareup.okio\" name=\"okio\" version=\"3.6.0\">\n   <artifact name=\"okio-3.6.0.jar\">\n      <sha256 value=\"%s\" origin=\"Generated by Gradle\"/>\n   </artifact>\n</component>" % h,
        lambda: "content hash %s matched the cached artifact, skipping upload" % h,
    ])()


def neg_md5():
    m = hexs(32)
    return pick([
        lambda: "%s  %s" % (m, fname()),
        lambda: 'ETag: "%s"' % m,
        lambda: "Content-MD5: %s" % b64(R.randbytes(16)),
        lambda: '"md5Hash": "%s",\n"crc32c": "%s"' % (b64(R.randbytes(16)), b64(R.randbytes(4))),
        lambda: "MD5 (%s) = %s" % (fname(), m),
        lambda: '<img src="https://www.gravatar.com/avatar/%s?s=80&d=identicon" alt="avatar">' % m,
        lambda: "<script src=\"/static/js/main.%s.js\"></script>" % m[:20],
        lambda: "assets/index-%s.css   %d.%02d kB" % (m[:8], ri(1, 300), ri(0, 99)),
        lambda: '{"Key": "uploads/%s.png", "ETag": "\\"%s\\"", "Size": %d}' % (uuid4(), m, ri(1000, 10**7)),
        lambda: "cache hit for %s (%d bytes)" % (m, ri(100, 10**6)),
        lambda: "checksum: %s" % m,
        lambda: "Fingerprint (MD5): %s" % ":".join(m[i:i + 2] for i in range(0, 32, 2)),
        lambda: "SSH key fingerprint SHA256:%s (ED25519)" % b64(R.randbytes(32)).rstrip("="),
    ])()


PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"
GIF_HEAD = b"GIF89a"


def neg_base64_image():
    n = ri(200, 6000)
    kind = pick(["png", "png", "jpeg", "gif", "webp"])
    head = {"png": PNG_HEAD, "jpeg": JPEG_HEAD, "gif": GIF_HEAD, "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 "}[kind]
    data = b64(head + R.randbytes(n))
    uri = "data:image/%s;base64,%s" % (kind, data)
    return pick([
        lambda: '<img src="%s" alt="%s" width="%d">' % (uri, pick(["logo", "avatar", "chart", "screenshot"]), ri(16, 640)),
        lambda: ".icon-%s {\n  background-image: url(%s);\n}" % (svc(), uri),
        lambda: "![screenshot](%s)" % uri,
        lambda: '{"avatar": "%s", "name": "%s"}' % (uri, person()),
        lambda: '{"thumbnail": "%s", "width": %d, "height": %d}' % (data, ri(32, 512), ri(32, 512)),
        lambda: "Content-Type: image/%s; name=\"image001.%s\"\nContent-Transfer-Encoding: base64\nContent-ID: <image001@%s.com>\n\n%s" % (kind, kind, org(), "\n".join(wrap(data, 76))),
        lambda: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: branding\nbinaryData:\n  logo.%s: %s" % (kind, data),
        lambda: '{"type": "image", "source": {"type": "base64", "media_type": "image/%s", "data": "%s"}}' % (kind, data),
        lambda: '{"type": "image_url", "image_url": {"url": "%s"}}' % uri,
        lambda: data,
        lambda: "msg.attach(MIMEImage(base64.b64decode(\"%s\")))" % data,
    ])()


def neg_example_key():
    single = _example_key_form()
    ctx = pick(["bare", "env", "md", "doc", "code"])
    if ctx == "bare":
        return single
    if ctx == "env":
        lines = filler(ri(1, 4)) + [single]
        R.shuffle(lines)
        return "# .env.example - copy to .env and fill in real values\n" + "\n".join(lines)
    if ctx == "md":
        return "### %s\n\n%s\n\n```\n%s\n```\n" % (pick(["Configuration", "Credentials", "Quickstart", "Authentication", "Environment variables"]),
                                                 pick(["Use the sample values below.", "The values below are the documented examples, not real credentials.",
                                                       "Example (from the provider docs):", "Your file should look like this:"]), single)
    if ctx == "doc":
        return "%s\n\n%s\n\n%s" % (pick(PROSE), single, pick(PROSE))
    return "# example only, do not use\n" + single


def _example_key_form():
    return pick([
        lambda: "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        lambda: "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nexport AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nexport AWS_DEFAULT_REGION=%s" % pick(REGIONS),
        lambda: "For example, an access key ID looks like `AKIAIOSFODNN7EXAMPLE` and a secret access key looks like `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`.",
        lambda: '{\n  "AccessKeyId": "AKIAI44QH8DHBEXAMPLE",\n  "SecretAccessKey": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"\n}',
        lambda: "AWS Access Key ID [None]: AKIAIOSFODNN7EXAMPLE\nAWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        lambda: "GITHUB_TOKEN=ghp_" + "x" * 36,
        lambda: "Personal access tokens look like `ghp_%s` (classic) or `github_pat_%s` (fine-grained)." % ("x" * 36, "x" * 22 + "_" + "x" * 59),
        lambda: "curl -H \"Authorization: token ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\" https://api.github.com/user",
        lambda: "gh auth login --with-token <<< ghp_1234567890abcdefghijklmnopqrstuvwxyz",
        lambda: "OPENAI_API_KEY=sk-...",
        lambda: "Set `OPENAI_API_KEY` to your key (it starts with `sk-proj-...`).",
        lambda: "export OPENAI_API_KEY=\"sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        lambda: "ANTHROPIC_API_KEY=sk-ant-api03-...",
        lambda: "client = anthropic.Anthropic(api_key=\"sk-ant-...\")  # replace with your key",
        lambda: "STRIPE_SECRET_KEY=sk_test_...\nSTRIPE_PUBLISHABLE_KEY=pk_test_...",
        lambda: "stripe.api_key = \"sk_live_%s\"" % ("x" * 24),
        lambda: "Your key will look like AKIA... followed by 16 characters.",
        lambda: "aws_access_key_id = AKIAXXXXXXXXXXXXXXXX\naws_secret_access_key = XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        lambda: "SLACK_BOT_TOKEN=xoxb-your-bot-token\nSLACK_APP_TOKEN=xapp-your-app-token",
        lambda: "token: xoxb-not-a-real-token-this-will-not-work",
        lambda: "HF_TOKEN=hf_" + "x" * 34,
        lambda: "huggingface-cli login --token hf_...",
        lambda: "GOOGLE_API_KEY=AIzaSy" + "X" * 33,
        lambda: "GITLAB_TOKEN=glpat-" + "x" * 20,
        lambda: "//registry.npmjs.org/:_authToken=npm_" + "x" * 36,
        lambda: "SENDGRID_API_KEY=SG.xxxxxxxx.yyyyyyyy",
        lambda: "DIGITALOCEAN_TOKEN=dop_v1_...",
        lambda: "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        lambda: "-----BEGIN PRIVATE KEY-----\nYOUR_PRIVATE_KEY_HERE\n-----END PRIVATE KEY-----",
        lambda: "PRIVATE_KEY=\"-----BEGIN PRIVATE KEY-----\\n<paste key here>\\n-----END PRIVATE KEY-----\\n\"",
        lambda: "The header is always `-----BEGIN OPENSSH PRIVATE KEY-----`; if you see `BEGIN RSA PRIVATE KEY` instead, convert it with `ssh-keygen -p -m PEM`.",
        lambda: "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        lambda: "TWILIO_API_KEY=SKXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\nTWILIO_ACCOUNT_SID=ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        lambda: "SOPS_AGE_KEY=AGE-SECRET-KEY-1" + "X" * 58,
        lambda: "VAULT_TOKEN=hvs.XXXXXXXXXXXXXXXXXXXXXXXX",
        lambda: "databricks_token = \"dapi" + "x" * 32 + "\"",
        lambda: "| Provider | Env var | Example |\n|---|---|---|\n| OpenAI | `OPENAI_API_KEY` | `sk-proj-abc123...` |\n| Anthropic | `ANTHROPIC_API_KEY` | `sk-ant-api03-...` |\n| Google | `GEMINI_API_KEY` | `AIza...` |",
        lambda: "# Replace AKIAIOSFODNN7EXAMPLE with your own access key id\naws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE --profile %s" % pick(["dev", "test", "example"]),
        lambda: "AccountKey=<storage-account-key>",
        lambda: "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=<key>;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        lambda: "SHOPIFY_ACCESS_TOKEN=shpat_" + "0" * 32,
        lambda: "DOCKER_PASSWORD=dckr_pat_...",
        lambda: "HEROKU_API_KEY=HRKU-...",
        lambda: "OP_SERVICE_ACCOUNT_TOKEN=ops_eyJ...",
    ])()


def neg_placeholder():
    n = pick(["DB_PASSWORD", "API_KEY", "SECRET_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "STRIPE_SECRET_KEY",
              "SLACK_BOT_TOKEN", "AUTH_TOKEN", "CLIENT_SECRET", "POSTGRES_PASSWORD", "JWT_SECRET", "REDIS_PASSWORD",
              "ANTHROPIC_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "SENDGRID_API_KEY", "ACCESS_TOKEN"])
    lo = snake(n)
    single = pick([
        lambda: "password=${DB_PASSWORD}",
        lambda: "%s=${%s}" % (n, n),
        lambda: "%s=$%s" % (n, n),
        lambda: "api_key: <your-api-key>",
        lambda: "%s: <%s>" % (lo, kebab(n)),
        lambda: 'token = "changeme"',
        lambda: '%s = "CHANGEME"' % lo,
        lambda: 'secret: "xxxxxxxx"',
        lambda: 'password: "password"',
        lambda: "API_KEY=your_api_key_here",
        lambda: "%s=your-%s-here" % (n, kebab(n)),
        lambda: "%s: {{ .Values.secret }}" % lo,
        lambda: "%s: {{ .Values.%s }}" % (lo, camel(n)),
        lambda: '%s: "{{ vault_%s }}"' % (lo, lo),
        lambda: "%s=$(cat /run/secrets/%s)" % (n, lo),
        lambda: 'api_key = os.environ["API_KEY"]',
        lambda: '%s = os.environ.get("%s")' % (lo, n),
        lambda: '%s = os.getenv("%s", "")' % (lo, n),
        lambda: "const token = process.env.TOKEN;",
        lambda: "const %s = process.env.%s ?? '';" % (camel(n), n),
        lambda: "password=********",
        lambda: "%s=****************" % n,
        lambda: "%s=REPLACE_ME" % n,
        lambda: "%s: REPLACE_WITH_YOUR_TOKEN" % lo,
        lambda: "%s = \"TODO\"" % lo,
        lambda: "%s: null" % lo,
        lambda: '"%s": ""' % camel(n),
        lambda: "%s=" % n,
        lambda: '%s: "${{ secrets.%s }}"' % (n, n),
        lambda: "      %s: ${{ secrets.%s }}" % (n, n),
        lambda: "%s = var.%s" % (lo, lo),
        lambda: '%s = data.aws_secretsmanager_secret_version.%s.secret_string' % (lo, svc().replace("-", "_")),
        lambda: "%s: !Ref %sParameter" % (camel(n), camel(n)),
        lambda: "%s: op://%s/%s/credential" % (n, pick(["prod", "Private", "Engineering"]), svc()),
        lambda: "%s=vault:secret/data/%s#%s" % (n, svc(), lo),
        lambda: "%s: '[REDACTED]'" % lo,
        lambda: "%s=<redacted>" % n,
        lambda: 'postgres://%s:${DB_PASSWORD}@%s:5432/%s' % (user(), host(), pick(DBS)),
        lambda: "mongodb+srv://<username>:<password>@cluster0.%s.mongodb.net/" % rs(5, LO + DIG),
        lambda: "postgresql://user:password@localhost:5432/mydb",
        lambda: "Authorization: Bearer <token>",
        lambda: "Authorization: Bearer $TOKEN",
        lambda: "-H \"Authorization: Bearer ${OPENAI_API_KEY}\"",
        lambda: "Authorization: Bearer YOUR_ACCESS_TOKEN_HERE",
        lambda: "Authorization: Basic <base64(user:password)>",
        lambda: "%s=<insert %s>" % (n, lo.replace("_", " ")),
        lambda: "%s = \"${%s}\"" % (lo, n),
        lambda: "- name: %s\n  valueFrom:\n    secretKeyRef:\n      name: %s-secrets\n      key: %s" % (n, svc(), kebab(n)),
        lambda: "%s = config(\"%s\", cast=str)" % (n, n),
        lambda: "%s: ENC[AES256_GCM,data:...,type:str]" % lo,
        lambda: "%s=dummy" % n,
        lambda: "%s=test" % n,
        lambda: "%s=fake-%s-for-tests" % (n, kebab(n)),
        lambda: "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  <encrypted>",
        lambda: "%s=%%%s%%" % (n, n),
        lambda: "export %s=\"$(aws secretsmanager get-secret-value --secret-id %s --query SecretString --output text)\"" % (n, svc()),
        lambda: "%s: ${file(../secrets.yml):%s}" % (lo, lo),
    ])()
    if maybe(0.4):
        ctx = pick(["env", "yaml", "md"])
        if ctx == "env" and not re.match(r"[A-Z_]+=", single):
            ctx = "md"
        if ctx == "yaml" and not re.match(r"[A-Za-z_]+: ", single):
            ctx = "md"
        if ctx == "env":
            lines = filler(ri(2, 5)) + [single]
            R.shuffle(lines)
            return "\n".join(lines)
        if ctx == "yaml":
            return "# %s\n%s\n%s" % (pick(["example config", "values.yaml", "config/settings.yaml"]), single,
                                       "\n".join("%s: %s" % (k.lower(), v) for k, v in (f.split("=", 1) for f in filler(ri(1, 3)))))
        return "Create a `.env` file:\n\n```\n%s\n```" % single
    return single


def neg_low_entropy():
    return pick([
        lambda: 'token = "%s"' % (pick("abcxyz0") * ri(12, 32)),
        lambda: 'password = "%s"' % pick(["abc", "1234", "pass", "hunter2", "root", "admin", "letmein", "qwerty"]),
        lambda: 'secret_key_name = "%s"' % pick(["service-account", "db-credentials", "prod-api-keys", "stripe-signing"]),
        lambda: '%s = "%s"' % (pick(["api_key_header", "API_KEY_HEADER", "apiKeyHeader"]), pick(["X-API-Key", "x-api-key", "Authorization"])),
        lambda: 'token_type = "%s"' % pick(["Bearer", "bearer", "access_token", "refresh_token"]),
        lambda: "secret_name = \"%s-%s\"" % (svc(), pick(["secrets", "credentials", "tls"])),
        lambda: "password_min_length = %d" % ri(8, 16),
        lambda: 'token_url = "https://oauth2.googleapis.com/token"',
        lambda: 'TOKEN_ENDPOINT=https://login.microsoftonline.com/common/oauth2/v2.0/token',
        lambda: 'auth_token_ttl = "%ds"' % pick([300, 900, 3600]),
        lambda: 'client_secret_ref = "%s-oauth-client"' % svc(),
        lambda: "credential_source = Environment",
        lambda: 'password_hash_algorithm = "%s"' % pick(["argon2id", "bcrypt", "scrypt", "pbkdf2_sha256"]),
        lambda: "PASSWORD_RESET_TIMEOUT=%d" % pick([3600, 86400, 259200]),
        lambda: 'secret_type = "%s"' % pick(["Opaque", "kubernetes.io/tls", "kubernetes.io/dockerconfigjson"]),
        lambda: "api_key_prefix: \"%s\"" % pick(["sk_", "pk_", "key_", "tok_"]),
        lambda: 'token_encoding = "%s"' % pick(["cl100k_base", "o200k_base", "utf-8"]),
        lambda: "max_tokens: %d" % pick([256, 1024, 4096, 8192]),
        lambda: '"max_tokens": %d, "temperature": 0.%d' % (pick([256, 1024, 4096]), ri(0, 9)),
        lambda: "secret_rotation_days = %d" % pick([30, 60, 90]),
        lambda: "access_key_rotation: %s" % pick(["enabled", "disabled", "manual"]),
        lambda: 'password: "%s"' % ("x" * ri(8, 16)),
        lambda: 'apikey = "%s"' % ("0" * ri(16, 32)),
        lambda: 'auth_key = "%s"' % ("1234567890" * 2)[:ri(12, 20)],
        lambda: "TOKEN=%s" % ("A" * ri(20, 40)),
        lambda: 'secret = "%s"' % pick(["secret", "mysecret", "supersecret", "s3cr3t", "topsecret"]),
        lambda: "password = %s" % pick(["true", "false", "None", "nil", "undefined", "0", "required"]),
        lambda: "TOKEN_AUDIENCE=%s" % pick(["api://default", "https://api.%s.com" % org(), "sts.amazonaws.com"]),
        lambda: "private_key_path = \"%s\"" % pick(["~/.ssh/id_ed25519", "/etc/ssl/private/server.key", "./keys/dev.pem"]),
        lambda: "access_key_id_env = \"AWS_ACCESS_KEY_ID\"",
        lambda: "credentials_file = \"%s\"" % pick(["~/.aws/credentials", "/var/run/secrets/gcp/key.json", "credentials.json"]),
        lambda: "secret_scanning: %s" % pick(["enabled", "true"]),
        lambda: 'passwordField: "%s"' % pick(["#password", "input[name=password]", "pwd"]),
        lambda: "TOKEN_HEADER_NAME=X-Auth-Token",
        lambda: 'tokenizer = "%s"' % pick(["bert-base-uncased", "gpt2", "meta-llama/Llama-3.1-8B"]),
        lambda: "pwd = os.getcwd()",
        lambda: "PWD=/home/%s/src/%s" % (user(), pick(REPOS)),
        lambda: "OLDPWD=/home/%s" % user(),
        lambda: '%s = "%s"' % (pick(["password", "token", "secret"]), pick(["my-password", "my-token", "not-a-secret", "placeholder-value"])),
        lambda: 'jwt_secret_key_env: "%s"' % pick(["JWT_SECRET", "APP_JWT_SECRET"]),
        lambda: "secret_key_base_length = 128",
        lambda: "token_limit: %dk" % pick([8, 32, 128, 200]),
        lambda: "PASSWORD_COMPLEXITY=upper,lower,digit,symbol",
    ])()


CODE_SNIPPETS = [
    "def get_token(self):\n    return self._token_cache.get(key)",
    "def refresh_token(self, refresh_token: str) -> Token:\n    resp = self._session.post(self.token_url, data={\"grant_type\": \"refresh_token\", \"refresh_token\": refresh_token})\n    return Token.from_dict(resp.json())",
    "password = getpass.getpass(\"Password: \")",
    "secret = os.urandom(32)",
    "token = request.headers.get(\"Authorization\", \"\").removeprefix(\"Bearer \")",
    "api_key = config.api_key or settings.OPENAI_API_KEY",
    "if password != confirm_password:\n    raise ValidationError(\"passwords do not match\")",
    "token, err := auth.NewToken(ctx, cfg)\nif err != nil {\n\treturn nil, fmt.Errorf(\"new token: %w\", err)\n}",
    "private final String secretKey;\n\npublic Signer(String secretKey) {\n    this.secretKey = Objects.requireNonNull(secretKey);\n}",
    "this.accessKey = accessKey;\nthis.secretKey = secretKey;",
    "secret_key = settings.SECRET_KEY",
    "const apiKey = useApiKey();\nconst { data } = useSWR(apiKey ? ['/api/usage', apiKey] : null, fetcher);",
    "let token = try await tokenProvider.currentToken(forceRefresh: false)",
    "hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    "if !hmac.Equal(expectedMAC, providedMAC) {\n\treturn ErrInvalidSignature\n}",
    "func (s *Store) GetSecret(ctx context.Context, name string) (*Secret, error) {\n\treturn s.client.Get(ctx, name)\n}",
    "class TokenBucket:\n    def __init__(self, rate: float, capacity: int):\n        self.tokens = capacity\n        self.rate = rate",
    "tokens = tokenizer.encode(text)\nif len(tokens) > max_tokens:\n    tokens = tokens[:max_tokens]",
    "export function maskSecret(secret: string): string {\n  return secret.slice(0, 4) + '\u2026' + secret.slice(-4);\n}",
    "password_hash = Column(String(255), nullable=False)",
    "@property\ndef api_key(self) -> str:\n    return self._api_key",
    "const [password, setPassword] = useState('');",
    "<input type=\"password\" name=\"password\" autocomplete=\"current-password\" required>",
    "fn verify_token(token: &str, key: &DecodingKey) -> Result<Claims, Error> {\n    decode::<Claims>(token, key, &Validation::default()).map(|d| d.claims)\n}",
    "session[:access_token] = auth_hash.credentials.token",
    "SecretKeySpec keySpec = new SecretKeySpec(keyBytes, \"HmacSHA256\");",
    "key = Fernet.generate_key()\ncipher = Fernet(key)",
    "var credential = new DefaultAzureCredential();\nvar client = new SecretClient(new Uri(vaultUri), credential);",
    "creds, err := google.FindDefaultCredentials(ctx, storage.ScopeReadOnly)",
    "client = boto3.client(\"secretsmanager\")\nsecret = client.get_secret_value(SecretId=secret_id)[\"SecretString\"]",
    "headers[\"Authorization\"] = f\"Bearer {self.api_key}\"",
    "req.Header.Set(\"Authorization\", \"Bearer \"+token)",
    "curl -H \"Authorization: Bearer $(gcloud auth print-access-token)\" https://%s-aiplatform.googleapis.com/v1/projects/$PROJECT/locations/us-central1/endpoints",
    "if (!token || isExpired(token)) {\n  token = await refreshAccessToken(refreshToken);\n}",
    "def rotate_api_key(user_id: int) -> ApiKey:\n    old = ApiKey.objects.filter(user_id=user_id, revoked=False)\n    old.update(revoked=True)\n    return ApiKey.objects.create(user_id=user_id, key=generate_key())",
    "expect(screen.getByLabelText('Password')).toBeInTheDocument();",
    "assert response.json()[\"detail\"] == \"Invalid token\"",
    "String token = jwtService.generateToken(userDetails);",
    "let secret = std::env::var(\"WEBHOOK_SECRET\").expect(\"WEBHOOK_SECRET must be set\");",
    "const signature = crypto.createHmac('sha256', secret).update(payload).digest('hex');",
    "ssh-keygen -t ed25519 -C \"%s\" -f ~/.ssh/id_ed25519",
    "kubectl create secret generic %s-secrets --from-env-file=.env.production",
    "if err := validatePassword(req.Password); err != nil {\n\treturn status.Error(codes.InvalidArgument, err.Error())\n}",
    "password_reset_token = signer.sign(str(user.pk))",
    "api_key_id = request.headers.get(\"X-Api-Key-Id\")",
    "SELECT id, email, password_hash, last_login FROM users WHERE email = $1;",
    "private static final int TOKEN_EXPIRY_SECONDS = 3600;",
    "auth_key = derive_key(master_key, salt=b\"auth\", length=32)",
    "type Credentials struct {\n\tAccessKeyID     string `json:\"access_key_id\"`\n\tSecretAccessKey string `json:\"secret_access_key\"`\n\tSessionToken    string `json:\"session_token,omitempty\"`\n}",
    "def redact(value: str) -> str:\n    return re.sub(r\"(?i)(token|secret|password)=\\S+\", r\"\\1=***\", value)",
]

CODE_WRAPPERS = [
    lambda s: s,
    lambda s: "```python\n%s\n```" % s,
    lambda s: "    " + s.replace("\n", "\n    "),
    lambda s: "%s\n\n%s" % (pick(["# auth/tokens.py", "// src/lib/auth.ts", "// internal/auth/token.go", "/* Signer.java */"]), s),
    lambda s: "Can you review this?\n\n%s\n\nI'm not sure the error handling is right." % s,
]


def neg_code_identifier():
    k = ri(1, 3)
    parts = []
    for s in R.sample(CODE_SNIPPETS, k):
        if "%s" in s:
            s = s % pick([email(), svc(), "us-central1"])
        parts.append(s)
    return pick(CODE_WRAPPERS)("\n\n".join(parts))


def neg_url():
    o = org().replace("-", "")
    return pick([
        lambda: "postgres://%s@%s/%s" % (user(), host(), pick(DBS)),
        lambda: "postgresql://%s@%s:5432/%s?sslmode=disable" % (pick(["postgres", user()]), host(), pick(DBS)),
        lambda: "https://example.com/path?x=%d" % ri(1, 99),
        lambda: "redis://localhost:6379",
        lambda: "redis://%s:6379/%d" % (host(), ri(0, 15)),
        lambda: "http://%s:@%s" % (user(), host()),
        lambda: "https://%s@github.com/%s/%s.git" % (user(), o, pick(REPOS)),
        lambda: "git@github.com:%s/%s.git" % (o, pick(REPOS)),
        lambda: "ssh://git@gitlab.%s.com:2222/%s/%s.git" % (o, pick(ORGS), pick(REPOS)),
        lambda: "mongodb://localhost:27017/%s" % pick(DBS),
        lambda: "amqp://rabbitmq:5672/%s" % pick(["", "vhost"]),
        lambda: "https://%s.%s.com:8443/api/v1/items?page=%d&per_page=50" % (svc(), o, ri(1, 20)),
        lambda: "jdbc:postgresql://%s:5432/%s" % (host(), pick(DBS)),
        lambda: "https://medium.com/@%s/how-we-rotate-secrets-%s" % (user(), hexs(12)),
        lambda: "https://www.npmjs.com/package/@%s/%s" % (o, svc()),
        lambda: "https://unpkg.com/@%s/%s@%s/dist/index.js" % (o, svc(), semver()),
        lambda: "http://%s:%d/metrics" % (ipv4(), pick([9090, 9100, 8080, 15090])),
        lambda: "https://%s.s3.%s.amazonaws.com/%s/%s.json?versionId=%s" % (o, pick(REGIONS), svc(), uuid4(), rs(32, ALNUM + "._")),
        lambda: "https://console.cloud.google.com/iam-admin/serviceaccounts?project=%s-prod" % o,
        lambda: "ftp://ftp.%s.com/pub/releases/%s" % (o, fname()),
        lambda: "https://login.microsoftonline.com/%s/oauth2/v2.0/authorize?client_id=%s&response_type=code&redirect_uri=https%%3A%%2F%%2Fapp.%s.com%%2Fcallback&scope=openid" % (uuid4(), uuid4(), o),
        lambda: "https://accounts.google.com/o/oauth2/v2/auth?client_id=%s-%s.apps.googleusercontent.com&redirect_uri=http://localhost:8080&response_type=code&scope=email" % (rs(12, DIG), rs(32, LO + DIG)),
        lambda: "https://github.com/%s/%s/pull/%d#discussion_r%d" % (o, pick(REPOS), ri(1, 5000), ri(10**8, 10**9)),
        lambda: "mysql://%s@127.0.0.1:3306/%s" % (user(), pick(DBS)),
        lambda: "DATABASE_URL=postgres://%s@%s:5432/%s" % (user(), host(), pick(DBS)),
        lambda: "REDIS_URL=rediss://%s:6380" % host(),
        lambda: "https://api.%s.com/v2/users/%d/avatar?size=128" % (o, ri(1, 10**6)),
        lambda: "mailto:%s?subject=Password%%20reset" % email(),
        lambda: "https://docs.%s.com/guides/authentication#api-keys" % o,
        lambda: "https://hooks.slack.com/services/T%s" % ("X" * 9),
        lambda: "http://[%s]:8080/healthz" % ":".join(hexs(4) for _ in range(8)),
        lambda: "https://%s.grafana.net/d/%s/%s?orgId=1&from=now-6h&to=now" % (o, rs(9, ALNUM), svc()),
        lambda: "Cloning into '%s'...\nremote: Enumerating objects: %d, done.\nfrom https://github.com/%s/%s" % (pick(REPOS), ri(100, 99999), o, pick(REPOS)),
    ])()


def neg_version_ids():
    o = org().replace("-", "")
    return pick([
        lambda: "version: %s" % semver(),
        lambda: "v%s-beta.%d+build.%d" % (semver(), ri(1, 9), ri(1, 999)),
        lambda: "%s   1/1     Running   %d          %dd" % (pod_name(), ri(0, 5), ri(1, 90)),
        lambda: "image: ghcr.io/%s/%s@sha256:%s" % (o, svc(), hexs(64)),
        lambda: "Digest: sha256:%s\nStatus: Downloaded newer image for %s/%s:%s" % (hexs(64), o, svc(), semver()),
        lambda: '"@types/node": "^20.%d.%d",\n"typescript": "~5.%d.%d"' % (ri(1, 14), ri(0, 9), ri(0, 6), ri(0, 5)),
        lambda: '"resolved": "https://registry.npmjs.org/%s/-/%s-%s.tgz",\n"integrity": "sha512-%s"' % (svc(), svc(), semver(), b64(R.randbytes(64))),
        lambda: "%s %s" % (iso(), pick(["deploy started", "backup finished", "node drained"])),
        lambda: "last_seen=%d" % unix(),
        lambda: "inet %s/24 brd %s scope global eth0" % (ipv4(), ipv4()),
        lambda: "link/ether %s brd ff:ff:ff:ff:ff:ff" % ":".join(hexs(2) for _ in range(6)),
        lambda: "arn:aws:iam::%s:role/%s-%s" % (rs(12, DIG), svc(), pick(["task-role", "irsa", "lambda-exec"])),
        lambda: "arn:aws:secretsmanager:%s:%s:secret:prod/%s/db-%s" % (pick(REGIONS), rs(12, DIG), svc(), rs(6, ALNUM)),
        lambda: "%s\t%s\trunning\t%s" % ("i-0" + hexs(16), pick(["t3.medium", "m6i.large", "c7g.xlarge"]), ipv4()),
        lambda: '"RoleId": "AROA%s",\n"RoleName": "%s-deployer"' % (rs(17, B32AWS), svc()),
        lambda: '"UserId": "AIDA%s",\n"Arn": "arn:aws:iam::%s:user/%s"' % (rs(17, B32AWS), rs(12, DIG), user()),
        lambda: "vpc-%s subnet-%s sg-%s" % (hexs(17), hexs(17), hexs(17)),
        lambda: "ami-%s" % hexs(17),
        lambda: "projects/%s/locations/%s/keyRings/%s/cryptoKeys/%s/cryptoKeyVersions/%d" % (o, pick(["global", "us-central1"]), svc(), svc(), ri(1, 9)),
        lambda: "/subscriptions/%s/resourceGroups/rg-%s/providers/Microsoft.KeyVault/vaults/kv-%s" % (uuid4(), svc(), o),
        lambda: "helm upgrade --install %s %s/%s --version %s -n %s" % (svc(), o, svc(), semver(), pick(NAMESPACES)),
        lambda: "FROM python:3.%d.%d-slim@sha256:%s" % (ri(8, 13), ri(0, 9), hexs(64)),
        lambda: "Build %d (%s) completed in %dm%ds" % (ri(1000, 99999), hexs(8), ri(0, 30), ri(0, 59)),
        lambda: "%s  %s  %s" % (pick(["ghcr.io", "docker.io", "quay.io"]) + "/%s/%s" % (o, svc()), semver(), hexs(12)),
        lambda: "PID %d, PPID %d, UID %d" % (ri(100, 60000), ri(1, 60000), ri(0, 65535)),
        lambda: "Serial Number: %s" % ":".join(hexs(2) for _ in range(16)),
        lambda: "X509v3 Subject Key Identifier: %s" % ":".join(hexs(2).upper() for _ in range(20)),
        lambda: "ETag: W/\"%s-%s\"" % (hex(ri(100, 99999))[2:], b64(R.randbytes(21)).rstrip("=")),
        lambda: "gke-%s-default-pool-%s-%s" % (o, hexs(8), rs(4, LO + DIG)),
        lambda: "node ip-%s.%s.compute.internal Ready" % (ipv4().replace(".", "-"), pick(REGIONS)),
        lambda: "%s.%s.%s.%s" % (svc(), pick(NAMESPACES), "svc", "cluster.local"),
        lambda: "Python %s (main, %s) [GCC 12.2.0] on linux" % ("3.%d.%d" % (ri(8, 13), ri(0, 9)), when().strftime("%b %d %Y, %H:%M:%S")),
        lambda: "swift-tools-version:5.%d\n.package(url: \"https://github.com/apple/swift-nio.git\", from: \"2.%d.0\")" % (ri(7, 10), ri(50, 80)),
        lambda: "ULID %s" % rs(26, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"),
        lambda: "ksuid=%s" % rs(27, ALNUM),
        lambda: '{\n  "files": [],\n  "nextPageToken": "%s"\n}' % b64url(R.randbytes(ri(24, 40))),
        lambda: "GET https://www.googleapis.com/drive/v3/files?pageSize=100&pageToken=%s" % b64url(R.randbytes(ri(24, 40))),
        lambda: '<Reference Include="System.Web.Mvc, Version=5.2.%d.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35" />' % ri(3, 9),
        lambda: "System.Runtime, Version=8.0.0.0, Culture=neutral, PublicKeyToken=%s" % pick(["b03f5f7f11d50a3a", "b77a5c561934e089", "cc7b13ffcd2ddd51", "7cec85d7bea7798e"]),
        lambda: '"sync_token": "%s", "has_more": false' % b64url(R.randbytes(18)),
        lambda: "order #%s-%d placed at %s" % (rs(3, UP), ri(100000, 999999), iso()),
        lambda: "Stripe request id: req_%s (livemode: false)" % rs(14),
        lambda: "charge ch_%s for cus_%s succeeded" % (rs(24), rs(14)),
    ])()


PROSE = [
    "The key to a good on-call rotation is a runbook that people actually read.",
    "Each request consumes a token from the bucket; when the bucket is empty, we return 429.",
    "Their secret sauce is really just aggressive caching at the edge.",
    "We send a password reset email that expires after one hour.",
    "If you lose the key, the backups cannot be decrypted, so store it in two places.",
    "A token is roughly four characters of English text, so budget for about 750 words per 1,000 tokens.",
    "Never paste an API key into a chat window; use the secret manager instead.",
    "The access key was rotated last week and the old one is now disabled.",
    "Make sure the private key never leaves the HSM.",
    "She reset her password twice before realising caps lock was on.",
    "Our threat model assumes an attacker can read any token that is logged.",
    "The secret to fast builds is a warm cache and small layers.",
    "You can generate a fine-grained token from the Developer settings page.",
    "Keys are rotated every ninety days by the platform team.",
    "The credential helper stores tokens in the macOS keychain.",
    "Tokens issued by the identity provider expire after one hour and are refreshed automatically.",
    "Remember that the session cookie is HttpOnly, so JavaScript cannot read it.",
    "A strong password is long rather than complicated.",
    "The bearer of the token has whatever access the token grants, which is why we scope them narrowly.",
    "We masked every value that looked like a secret before the logs were shipped.",
    "The model's context window is 200k tokens, but latency grows with input length.",
    "Key management is the hard part of encryption; the algorithms are the easy part.",
    "It is no secret that the migration took longer than planned.",
    "Please do not share your one-time password with anyone, including support staff.",
    "The SDK reads the API key from the environment if you do not pass one explicitly.",
    "Her keynote covered passkeys and why they are replacing passwords.",
    "The key insight was that most of the latency came from DNS, not TLS.",
    "We store only a salted hash of each API key, so a leaked database does not leak keys.",
    "Rotating credentials is cheap; cleaning up after a leak is not.",
    "A service account token is mounted into every pod unless you opt out.",
    "The tokenizer splits rare words into several sub-word tokens.",
    "Use a password manager and turn on two-factor authentication everywhere.",
    "The secret santa budget this year is twenty dollars.",
    "Lock the front door and leave the key under the mat for the plumber.",
    "Access tokens should be short-lived; refresh tokens can live longer but must be revocable.",
    "In the demo, the agent asked for the database password and the proxy refused to forward it.",
    "Signed URLs embed a signature, not a key, and they expire after fifteen minutes.",
    "The webhook secret is used to compute an HMAC over the request body.",
    "Our SOC 2 auditor asked how we restrict access to production secrets.",
    "The tokens per second figure in the benchmark excludes time to first token.",
]


def neg_prose():
    k = ri(2, 6)
    sents = R.sample(PROSE, k)
    if maybe(0.4):
        sents.insert(ri(0, len(sents)), pick([
            "%s from the %s team will own the follow-up." % (pick(FIRST), svc()),
            "This is tracked in %s-%d." % (pick(["OPS", "SEC", "PLAT", "INC"]), ri(100, 9999)),
            "We reviewed it on %s." % when().strftime("%A, %B %d"),
            "The incident lasted %d minutes." % ri(5, 300)]))
    text = " ".join(sents)
    if maybe(0.3):
        text = "## %s\n\n%s" % (pick(["Postmortem", "Notes", "FAQ", "Security guidelines", "Onboarding"]), text)
    return text


def neg_jwt_like():
    cursor = b64url(jdump({"page": ri(2, 50), "after": uuid4(), "sort": pick(["created_at", "id"])}).encode())
    std = b64(jdump({"v": 1, "filters": {"status": pick(["open", "closed"])}, "limit": pick([25, 50, 100])}).encode())
    hdr = b64url(jdump({"alg": "HS256", "typ": "JWT"}).encode())
    return pick([
        lambda: "next_cursor: %s" % cursor,
        lambda: '{"data": [], "next": "%s"}' % cursor,
        lambda: "GET /api/v1/items?cursor=%s HTTP/1.1" % cursor,
        lambda: "state=%s" % cursor,
        lambda: "X-Pagination-Token: %s" % std,
        lambda: "JWTs start with eyJ because that is what {\" looks like in base64url.",
        lambda: "The header %s decodes to {\"alg\":\"HS256\",\"typ\":\"JWT\"}." % hdr,
        lambda: "Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.<payload>.<signature>",
        lambda: "token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        lambda: "kubectl.kubernetes.io/last-applied-configuration: %s" % b64(jdump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": svc()}}).encode()),
        lambda: "echo %s | base64 -d | jq ." % std,
        lambda: '"filter": "%s"' % std,
        lambda: "eyJ%s" % rs(ri(8, 20), ALNUM),
        lambda: "%s.%s" % (hdr, b64url(jdump({"sub": "1234", "iat": unix()}).encode())),
        lambda: "data:application/json;base64,%s" % std,
        lambda: "//# sourceMappingURL=data:application/json;charset=utf-8;base64,%s" % b64(jdump({"version": 3, "sources": ["src/%s.ts" % svc()], "names": [], "mappings": rs(40, ALNUM + ";,")}).encode()),
        lambda: "the session blob %s is just base64 JSON, not a signed token" % cursor,
        lambda: "%s.not-a-jwt.%s" % (hdr, svc()),
        lambda: "x-amz-meta-context: %s" % std,
        lambda: "Set-Cookie: prefs=%s; Path=/; SameSite=Lax" % cursor,
    ])()


def neg_near_miss():
    o = org()
    return pick([
        lambda: "ghp_%s" % rs(ri(8, 30)),
        lambda: "tokens beginning with ghp_ are classic PATs; gho_ are OAuth tokens",
        lambda: "pip install scikit-learn  # aka sk-learn",
        lambda: "from sklearn.model_selection import train_test_split  # sk-learn",
        lambda: "sk-%s" % pick(["learn", "rebuild", "guide", "chat-ui", "ignore", "fallback", "test-cases"]),
        lambda: "The sk-proj prefix means the key is scoped to a project.",
        lambda: "AWS keys start with AKIA, temporary ones with ASIA.",
        lambda: "AKIA%s" % rs(ri(4, 12), B32AWS),
        lambda: "we got a xoxb token from the Slack app config page",
        lambda: "xoxb-%s" % rs(ri(4, 9), DIG),
        lambda: "from huggingface_hub import hf_hub_download\npath = hf_hub_download(repo_id=\"%s/%s\", filename=\"config.json\")" % (o, svc()),
        lambda: "hf_%s" % rs(ri(5, 20), LETTERS),
        lambda: "glpat-%s" % rs(ri(5, 15), ALNUM),
        lambda: "GitLab PATs have the glpat- prefix since 14.5.",
        lambda: "SG. Smith and J. Doe, %d. \"On tokens.\" Proc. of the %s workshop." % (ri(1990, 2024), o),
        lambda: "See fig. 3 in SG.%d for details." % ri(1, 30),
        lambda: "dapi%s" % rs(ri(3, 10), LO),
        lambda: "The DAPI stain (dapi) highlights nuclei in blue.",
        lambda: "dapi_version = \"%s\"" % semver(),
        lambda: "npm_config_registry=https://registry.npmjs.org/",
        lambda: "echo $npm_package_version",
        lambda: "npm_lifecycle_event=%s" % pick(["build", "test", "postinstall"]),
        lambda: "pypi-server -p 8080 ~/packages",
        lambda: "pip install --index-url https://pypi.org/simple pypi-simple",
        lambda: "AIza%s" % rs(ri(5, 20), ALNUM),
        lambda: "ya29.%s" % rs(ri(5, 30), ALNUM),
        lambda: "hvs.%s" % rs(ri(4, 12), ALNUM),
        lambda: "dop_v1_%s" % hexs(ri(8, 40)),
        lambda: "SK%s" % hexs(ri(10, 28)),
        lambda: "SKU %s-%d" % (rs(4, UP), ri(1000, 9999)),
        lambda: "whsec_%s" % rs(ri(5, 20)),
        lambda: "sk_live_%s" % rs(ri(5, 20)),
        lambda: "rk_test_%s" % rs(ri(4, 16)),
        lambda: "xapp-1-%s" % rs(ri(4, 10), UP + DIG),
        lambda: "glsa_%s" % rs(ri(8, 25)),
        lambda: "sntrys_%s" % rs(ri(5, 40)),
        lambda: "dp.st.%s" % rs(ri(5, 30)),
        lambda: "HRKU-%s" % rs(ri(5, 40)),
        lambda: "AGE-SECRET-KEY-1%s" % rs(ri(10, 40), "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
        lambda: "GOCSPX-%s" % rs(ri(5, 20)),
        lambda: "dckr_pat_%s" % rs(ri(5, 20)),
        lambda: "shpat_%s" % hexs(ri(8, 24)),
        lambda: "npm_%s" % rs(ri(8, 30)),
        lambda: "github_pat_%s" % rs(ri(10, 40)),
        lambda: "sk-ant-%s" % pick(["api03", "admin01", "sid01"]),
        lambda: "AccountKey=%s" % rs(ri(10, 40)),
        lambda: "ops_%s" % rs(ri(5, 30)),
        lambda: "ghp_%s" % gh_bad_checksum(),
        lambda: "ghp_%s fails the CRC32 check, so it was never a real token (typo in the ticket?)" % gh_bad_checksum(),
        lambda: '@pytest.mark.parametrize("candidate", ["ghp_%s", "gho_%s"])\ndef test_rejects_bad_checksum(candidate):\n    assert not looks_like_github_token(candidate)' % (gh_bad_checksum(), gh_bad_checksum()),
        lambda: "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----" % "\n".join(wrap(b64(b"\x30\x82\x01\x22" + R.randbytes(290)), 64)),
        lambda: certificate(),
        lambda: "-----BEGIN OPENSSH PUBLIC KEY-----",
        lambda: "eyJhbGciOiJIUzI1NiJ9",
        lambda: "asia-northeast1-docker.pkg.dev/%s/%s" % (o, svc()),
        lambda: "skip-%s sk8-%s AKIAN %s" % (svc(), svc(), svc()),
        lambda: "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided: sk-proj-%s. You can find your API key at https://platform.openai.com/account/api-keys.', 'type': 'invalid_request_error', 'code': 'invalid_api_key'}}" % ("*" * ri(20, 150) + rs(4)),
        lambda: "OPENAI_API_KEY=sk-...%s (redacted)" % rs(4),
        lambda: "Using token ghp_****%s from keychain" % rs(4),
        lambda: "AKIA************%s" % rs(4, B32AWS),
        lambda: "pk_live_%s" % rs(99),
        lambda: "STRIPE_PUBLISHABLE_KEY=pk_test_%s" % rs(99),
        lambda: "Twilio account SID: AC%s" % hexs(32),
        lambda: "public key: %s" % age_public(),
        lambda: "ssh-ed25519 %s %s" % (b64(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00 " + R.randbytes(32)), email()),
        lambda: "ssh-rsa %s %s@%s" % (b64(b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x03\x01\x00\x01\x00\x00\x01\x01\x00" + R.randbytes(256)), user(), svc()),
        lambda: "GOOGLE_CLIENT_ID=%s-%s.apps.googleusercontent.com" % (rs(12, DIG), rs(32, LO + DIG)),
        lambda: "NEXT_PUBLIC_SENTRY_DSN=https://%s@o%d.ingest.sentry.io/%d" % (hexs(32), ri(100000, 999999), ri(1000000, 9999999)),
    ])()


def gh_bad_checksum():
    body = rs(30)
    good = C.base62(zlib.crc32(body.encode()) & 0xFFFFFFFF)
    while True:
        bad = rs(6)
        if bad != good:
            return body + bad


def neg_minified_js():
    ids = list("abcdefghijklmnopqrstuvwxyz") + ["_", "$"]
    parts = []
    for _ in range(ri(8, 25)):
        a, b, c, d = (pick(ids) for _ in range(4))
        parts.append(pick([
            "function %s(%s,%s){return %s.apply(this,arguments)}" % (a, b, c, d),
            "var %s=%s.token||\"\"" % (a, b),
            "%s.apiKey=%s.apiKey||%s.env.API_KEY" % (a, b, c),
            "this._secret=%s" % a,
            "%s.headers.Authorization=\"Bearer \"+%s" % (a, b),
            "if(!%s.password)throw new Error(\"password required\")" % a,
            "%s=%s.split(\".\"),%s=JSON.parse(atob(%s[1]))" % (a, b, c, a),
            "for(var %s=0;%s<%s.length;%s++)%s[%s]=%s.charCodeAt(%s)" % (a, a, b, a, c, a, b, a),
            "%s.prototype.getToken=function(){return this.%s}" % (a.upper(), b),
            "\"use strict\"",
            "Object.defineProperty(%s,\"__esModule\",{value:!0})" % a,
            "%s.exports=%s" % (a, b),
            "var %s=\"%s\"" % (a, pick(["https://api.%s.com/v1" % org().replace("-", ""), "accessToken", "refresh_token", "x-api-key", "Authorization"])),
            "%s=%s?%s:%s" % (a, b, c, d),
            "return %s.replace(/[A-Za-z0-9+/=]/g,\"\")" % a,
            "%s=\"%s\"" % (a, hexs(pick([8, 16]))),
            "%s.setItem(\"%s\",%s)" % (a, pick(["token", "session", "theme"]), b),
            "new Promise(function(%s,%s){setTimeout(%s,%d)})" % (a, b, a, ri(10, 5000)),
        ]))
    head = pick(["!function(e,t){\"object\"==typeof exports&&\"undefined\"!=typeof module?module.exports=t():\"function\"==typeof define&&define.amd?define(t):(e=e||self).%s=t()}(this,function(){" % svc().capitalize().replace("-", ""),
                 "(()=>{var e={%d:(e,t,n)=>{" % ri(100, 999), "/*! %s v%s | MIT */" % (svc(), semver()), ""])
    return head + ";".join(parts) + pick(["});", "}}})();", ""]) + (
        "\n//# sourceMappingURL=%s.%s.js.map" % (svc(), hexs(8)) if maybe(0.4) else "")


def neg_log_lines():
    out = []
    for _ in range(ri(1, 6)):
        out.append(pick([
            lambda: "%s INFO  [%s] request_id=%s trace_id=%s span_id=%s status=%d latency=%dms" % (logts(), svc(), uuid4(), hexs(32), hexs(16), pick([200, 201, 204, 401, 403, 500]), ri(1, 3000)),
            lambda: '{"ts":"%s","level":"info","msg":"token refreshed","user_id":%d,"expires_in":3600,"trace":"%s"}' % (iso(), ri(1, 10**6), hexs(32)),
            lambda: "%s - - %s \"GET /api/v1/%s HTTP/1.1\" %d %d \"-\" \"%s\"" % (ipv4(False), logts(), pick(["health", "orders?page=2", "users/me"]), pick([200, 304, 404]), ri(10, 99999), pick(["curl/8.5.0", "kube-probe/1.29", "Mozilla/5.0"])),
            lambda: "traceparent: 00-%s-%s-01" % (hexs(32), hexs(16)),
            lambda: "X-Amzn-Trace-Id: Root=1-%s-%s" % (hexs(8), hexs(24)),
            lambda: "cf-ray: %s-%s" % (hexs(16), pick(["SJC", "FRA", "LHR", "NRT"])),
            lambda: "x-request-id: %s" % rs(26, ALNUM),
            lambda: "%s WARN  [%s] token expired for session %s, redirecting to login" % (logts(), svc(), hexs(24)),
            lambda: "%s ERROR [%s] password authentication failed for user \"%s\"" % (logts(), "postgres", user()),
            lambda: "%s INFO  [auth] issued access token (jti=%s, ttl=900s) to client %s" % (logts(), uuid4(), svc()),
            lambda: "%s DEBUG [http] -> POST https://api.%s.com/v1/charges (Authorization: Bearer ***)" % (logts(), org().replace("-", "")),
            lambda: "%s INFO  [secrets] loaded 12 secrets from vault path secret/data/%s (values redacted)" % (logts(), svc()),
            lambda: "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x%s pc=0x%s]" % (hexs(2), hexs(6)),
            lambda: "goroutine %d [running]:\nmain.(*Server).handleToken(0xc000%s, {0x%s, 0xc000%s})\n\t/src/server.go:%d +0x%s" % (ri(1, 999), hexs(6), hexs(6), hexs(6), ri(10, 900), hexs(3)),
            lambda: "%s kubelet[%d]: E%s %d pod_workers.go:%d] \"Error syncing pod\" pod=\"%s/%s\" podUID=%s" % (when().strftime("%b %d %H:%M:%S"), ri(100, 9999), when().strftime("%m%d %H:%M:%S.%f"), ri(100, 9999), ri(100, 1500), pick(NAMESPACES), pod_name(), uuid4()),
            lambda: "%s audit: type=USER_LOGIN msg=audit(%d.%03d:%d): pid=%d uid=0 auid=%d ses=%d msg='op=login acct=\"%s\" exe=\"/usr/sbin/sshd\" res=success'" % (when().strftime("%b %d %H:%M:%S"), unix(), ri(0, 999), ri(100, 99999), ri(100, 60000), ri(1000, 2000), ri(1, 500), user()),
            lambda: "[%s] span %s parent %s duration %.3fms name=%s" % (iso(), hexs(16), hexs(16), R.random() * 500, pick(["db.query", "http.request", "cache.get", "llm.completion"])),
            lambda: "AWS request id %s, extended request id %s" % (uuid4(), b64(R.randbytes(48))),
            lambda: "Sentry event %s captured (release %s@%s)" % (hexs(32), svc(), semver()),
            lambda: "%s INFO  [proxy] masked 2 findings (detectors: aws-access-key-id, generic-secret-assignment) event_id=%s" % (logts(), uuid4()),
            lambda: "%s level=info msg=\"rotated API key\" key_id=key_%s owner=%s" % (iso(), rs(12, LO + DIG), email()),
            lambda: "Received webhook evt_%s (type=invoice.paid) signature verified" % rs(24),
            lambda: "%s INFO  [%s] GET /oauth/callback?code=%s&state=%s 302" % (logts(), svc(), pick(["<redacted>", "***"]), hexs(16)),
        ])())
    return "\n".join(out)


NEG_PLAN = [
    ("uuid", neg_uuid, 180), ("git-sha", neg_git_sha, 200), ("sha256", neg_sha256, 120), ("md5", neg_md5, 100),
    ("base64-image", neg_base64_image, 200), ("example-key", neg_example_key, 130),
    ("placeholder", neg_placeholder, 360), ("low-entropy-assignment", neg_low_entropy, 200),
    ("code-identifier", neg_code_identifier, 300), ("url-without-password", neg_url, 200),
    ("version-and-ids", neg_version_ids, 260), ("prose", neg_prose, 200),
    ("jwt-like-nonsecret", neg_jwt_like, 120), ("near-miss-prefix", neg_near_miss, 260),
    ("minified-js", neg_minified_js, 100), ("log-lines", neg_log_lines, 260),
]


def build_negatives():
    recs = []
    seen = set()
    for cat, fn, n in NEG_PLAN:
        made = 0
        tries = 0
        while made < n:
            tries += 1
            if tries > n * 40:
                raise RuntimeError("cannot make %d unique negatives for %s (got %d)" % (n, cat, made))
            text = fn()
            if text in seen or C.negative_problems(text, cat):
                continue
            seen.add(text)
            recs.append((cat, text))
            made += 1
    return recs


# =============================================================================================

def main():
    pos = build_positives()
    neg = build_negatives()
    lines = []
    for i, (cat, text, secrets) in enumerate(pos, 1):
        out_secrets = []
        union = []
        for det, val in secrets:
            assert val in text, (det, val)
            p = C.value_problem(det, val) or C.context_problem(text, det, val)
            assert p is None, (det, val[:60], p, text[:300])
            s = {"detector": det, "value": val}
            also = also_for(text, det, val)
            if also:
                s["also"] = also
                union += [a for a in also if a not in union]
            out_secrets.append(s)
        rec = {"id": "pos-%04d" % i, "kind": "positive", "category": cat, "text": text, "secrets": out_secrets}
        if union and len(out_secrets) == 1:
            # Record-level "also" only where it cannot widen another secret's alternatives.
            rec["also"] = union
        lines.append(json.dumps(rec, ensure_ascii=False))
    for i, (cat, text) in enumerate(neg, 1):
        lines.append(json.dumps({"id": "neg-%04d" % i, "kind": "negative", "category": cat, "text": text,
                                 "secrets": []}, ensure_ascii=False))
    path = os.path.join(HERE, "labelled.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(lines) + "\n")
    print("wrote %s: %d positive records, %d negatives" % (path, len(pos), len(neg)))
    update_readme_counts(pos, neg)


def update_readme_counts(pos, neg):
    """Rewrite the counts block of README.md (between the BEGIN/END COUNTS markers)."""
    readme = os.path.join(HERE, "README.md")
    if not os.path.exists(readme):
        return
    secrets, records, also = {}, {}, {}
    for cat, text, sec in pos:
        records[cat] = records.get(cat, 0) + 1
        for det, val in sec:
            secrets[det] = secrets.get(det, 0) + 1
    negs = {}
    for cat, _ in neg:
        negs[cat] = negs.get(cat, 0) + 1
    out = ["| detector | secrets | records (primary) |", "|---|---:|---:|"]
    for det in C.DETECTORS:
        out.append("| `%s` | %d | %d |" % (det, secrets.get(det, 0), records.get(det, 0)))
    out.append("| **total** | **%d** | **%d** |" % (sum(secrets.values()), len(pos)))
    out += ["", "| negative category | records |", "|---|---:|"]
    for cat in C.NEGATIVE_CATEGORIES:
        out.append("| `%s` | %d |" % (cat, negs.get(cat, 0)))
    out.append("| **total** | **%d** |" % len(neg))
    with open(readme, encoding="utf-8") as fh:
        text = fh.read()
    begin, end = "<!-- BEGIN COUNTS (generate.py rewrites this block) -->", "<!-- END COUNTS -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < 0:
        return
    text = text[:i + len(begin)] + "\n" + "\n".join(out) + "\n" + text[j:]
    with open(readme, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
