"""Helpers for driving the real chaperone-collector: a stand-in cluster OIDC issuer (an RSA key,
its JWKS file, and projected service-account tokens shaped exactly like the kubelet's), audit
events written independently of the Swift code (canonical JSON, hash-chained), the collector
process itself, and a PostgreSQL database per test."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from conftest import STARTUP_TIMEOUT, binary, free_port, poll, stop_process, tail

AUDIENCE = "chaperone-collector"
ISSUER = "https://kubernetes.default.svc.cluster.local"
READER_TOKEN = "reader-token-for-e2e-0123456789"
ZERO = "0" * 64
PG_HOST = os.environ.get("CHAPERONE_TEST_POSTGRES_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CHAPERONE_TEST_POSTGRES_PORT", "55432"))


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    """The cluster's service-account token issuer: RS256 keys published as a JWKS."""

    def __init__(self, kid: str = "e2e-key-1"):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}]}

    def token(
        self,
        namespace: str = "agents",
        pod: str = "agent-7f9c",
        pod_uid: str = "0b1c2d3e-0000-4000-8000-000000000001",
        service_account: str = "coder",
        node: str = "node-a",
        audience: str | list[str] = AUDIENCE,
        lifetime: int = 3600,
        issued: int | None = None,
        issuer: str = ISSUER,
        kid: str | None = None,
        key=None,
        pod_claim: bool = True,
    ) -> str:
        now = int(time.time()) if issued is None else issued
        k8s: dict = {"namespace": namespace, "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())}}
        if pod_claim:
            k8s["pod"] = {"name": pod, "uid": pod_uid}
            k8s["node"] = {"name": node, "uid": str(uuid.uuid4())}
        claims = {
            "aud": audience if isinstance(audience, list) else [audience],
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "iss": issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


def canonical(event: dict) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def uuid7() -> str:
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


@dataclass
class Stream:
    """A sidecar's stream of events: seq numbers and the hash chain, as the proxy writes them."""

    stream_id: str = field(default_factory=uuid7)
    seq: int = 0
    prev: str = ZERO
    source: dict = field(default_factory=lambda: {"namespace": "agents", "pod": "agent-7f9c", "self_reported": True})

    def event(self, kind: str = "llm.request", session: str = "session-1", text: str = "hello", **extra) -> dict:
        self.seq += 1
        event = {
            "event_id": uuid7(),
            "findings": [],
            "kind": kind,
            "prev_hash": self.prev,
            "schema_version": "1.0",
            "seq": self.seq,
            "session_id": session,
            "source": self.source,
            "stream_id": self.stream_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1000000:06d}Z",
            "exchange_id": uuid7(),
            "http": {"bytes_in": 10, "bytes_out": 20, "method": "POST", "path": "/v1/chat/completions", "status": 200, "upstream": "openai"},
            "gen_ai": {"operation": {"name": "chat"}, "provider": {"name": "openai"}, "request": {"model": "gpt-4o-mini"}},
        }
        if kind == "llm.request":
            event["content"] = {"messages": [{"role": "user", "content": text}], "tool_calls": [], "truncated": False}
        else:
            event["content"] = {"messages": [], "response_text": text, "tool_calls": [], "truncated": False}
            event["outcome"] = "completed"
        event.update(extra)
        self.prev = hashlib.sha256(canonical(event)).hexdigest()
        return event

    def events(self, n: int, **kwargs) -> list[dict]:
        return [self.event(**kwargs) for _ in range(n)]


def jsonl(events: list[dict]) -> bytes:
    return b"".join(canonical(e) + b"\n" for e in events)


def pg_database() -> str:
    """A fresh, empty database on the test server; returns its name."""
    name = "chaperone_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return name


def pg_sql(database: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True, capture_output=True, text=True)
    return out.stdout


@dataclass
class TLSFiles:
    """A CA and a server certificate for 127.0.0.1 it signed, made with openssl."""

    ca: Path
    cert: Path
    key: Path

    @staticmethod
    def make(directory: Path) -> "TLSFiles":
        directory.mkdir(parents=True, exist_ok=True)

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Chaperone Collector Test CA")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=chaperone-collector")
        (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
        return TLSFiles(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key")


class Collector:
    def __init__(self, directory: Path, backend: str = "sqlite", issuer: Issuer | None = None, extra_config: str = "", env: dict | None = None,
                 tls: TLSFiles | None = None):
        self.directory = directory
        self.tls = tls
        if tls is not None:
            extra_config += f"tls:\n  cert_file: {tls.cert}\n  key_file: {tls.key}\n"
        self.backend = backend
        self.issuer = issuer or Issuer()
        self.port = free_port()
        self.admin_port = free_port()
        self.data = directory / "data"
        self.stdout_path = directory / "collector.stdout"
        self.stderr_path = directory / "collector.stderr"
        self.jwks_path = directory / "jwks.json"
        self.jwks_path.write_text(json.dumps(self.issuer.jwks()))
        self.readers_path = directory / "readers"
        self.readers_path.write_text(f"e2e: {READER_TOKEN}\n")
        self.key_path = directory / "signing.key"
        key = ed25519.Ed25519PrivateKey.generate()
        self.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.signing_key = key
        self.database = pg_database() if backend == "postgres" else None
        storage = f"storage:\n  backend: sqlite\n  data_directory: {self.data}\n"
        if backend == "postgres":
            storage = (
                f"storage:\n  backend: postgres\n  data_directory: {self.data}\n  postgres:\n    host: {PG_HOST}\n    port: {PG_PORT}\n"
                f"    user: postgres\n    database: {self.database}\n    tls: disable\n"
            )
        self.config_path = directory / "collector.yaml"
        self.config_path.write_text(
            f"listen: {{host: 127.0.0.1, port: {self.port}}}\nadmin: {{host: 127.0.0.1, port: {self.admin_port}}}\n"
            f"authentication:\n  mode: jwks\n  jwks_file: {self.jwks_path}\n  issuer: {ISSUER}\n"
            f"{storage}log:\n  origin: e2e.chaperone.test/collector\n  signing_key_file: {self.key_path}\n  checkpoint_interval: 1s\n"
            f"readers:\n  tokens_file: {self.readers_path}\n" + extra_config)
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self):
        return str(self.tls.ca) if self.tls else True

    def start(self) -> "Collector":
        env = dict(os.environ, **self.env)
        self.proc = subprocess.Popen(
            [str(binary("chaperone-collector")), "--config", str(self.config_path), "--log-format", "json"],
            stdout=open(self.stdout_path, "ab"), stderr=open(self.stderr_path, "ab"), env=env)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited {self.proc.returncode}:\n{tail(self.stderr_path)}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            poll(ready, timeout=STARTUP_TIMEOUT, interval=0.05, what="collector readiness")
        except AssertionError:
            raise AssertionError(f"collector not ready:\n{tail(self.stderr_path)}") from None
        return self

    def stop(self, kill: bool = False) -> int:
        if self.proc is None:
            return 0
        if kill:
            self.proc.kill()
            code = self.proc.wait()
        else:
            code = stop_process(self.proc)
        self.proc = None
        return code

    def post(self, body: bytes, token: str | None = None, gzip_body: bool = False, content_type: str = "application/x-ndjson") -> httpx.Response:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if gzip_body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return httpx.post(self.url + "/v1/events", content=body, headers=headers, timeout=30, verify=self.verify)

    def send(self, events: list[dict], token: str | None = None, **kwargs) -> dict:
        response = self.post(jsonl(events), token=token or self.issuer.token(), **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str, **params) -> dict:
        response = httpx.get(self.url + path, params=params, headers={"Authorization": f"Bearer {READER_TOKEN}"}, timeout=60, verify=self.verify)
        assert response.status_code == 200, response.text
        return response.json()

    def stdout_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout_path.read_text().splitlines() if line.strip()]

    def stderr_lines(self) -> list[dict]:
        out = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5).text

    def verifier_key(self) -> str:
        return self.get("/v1/log/checkpoints", limit=1)["verifier_key"]

    def wait_checkpoint(self, size: int, timeout: float = 15) -> dict:
        def covered():
            checkpoints = self.get("/v1/log/checkpoints", limit=1)["checkpoints"]
            return checkpoints[0] if checkpoints and checkpoints[0]["tree_size"] >= size else None

        return poll(covered, timeout=timeout, interval=0.2, what=f"a checkpoint covering {size} leaves")

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        token_file = self.directory / "reader-token"
        token_file.write_text(READER_TOKEN + "\n")
        proc = subprocess.run(
            [str(binary("chaperonectl")), *args, "--collector", self.url, "--token-file", str(token_file),
             *(["--ca-file", str(self.tls.ca)] if self.tls else [])],
            capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, f"chaperonectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc
