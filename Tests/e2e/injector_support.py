"""Helpers for the chaperone-injector tests: certificates made with the openssl CLI, the real
injector binary started on free loopback ports, and a small HTTPS stand-in for the three
Kubernetes API resources the injector touches in self-signed mode (there is no API server on
these machines). The stand-in applies JSON Patch with the independent `jsonpatch` library,
honours `test` operations (422 when one fails), bumps resourceVersion on every write and
answers 409 on stale writes, as the API server does.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jsonpatch

from conftest import STARTUP_TIMEOUT, binary, free_port, poll, stop_process, tail

FIXTURES = Path(__file__).resolve().parents[1] / "Fixtures" / "admission"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str = "test-ca") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def issue(directory: Path, ca: tuple[Path, Path], name: str, dns: list[str]) -> tuple[Path, Path]:
    """A serving certificate for `dns` (and 127.0.0.1) signed by `ca`."""
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=" + ",".join([f"DNS:{d}" for d in dns] + ["IP:127.0.0.1"]) + "\n"
                   "extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
            "-out", str(csr), "-subj", f"/CN={dns[0]}")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-out", str(cert), "-days", "1", "-extfile", str(ext))
    return cert, key


def peer_certificate_der(port: int, ca_file: Path, server_name: str = "localhost") -> bytes:
    """The certificate a fresh TLS connection is served, verified against `ca_file`."""
    import socket

    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def load_review(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class Injector:
    proc: subprocess.Popen
    port: int
    admin_port: int
    log: Path
    ca_file: Path | None

    @property
    def url(self) -> str:
        # The API server calls the Service's path with a timeout query parameter.
        return f"https://localhost:{self.port}/mutate?timeout=10s"

    def client(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_file)), timeout=10)

    def admit(self, review: dict) -> dict:
        with self.client() as client:
            response = client.post(self.url, json=review, headers={"Accept": "application/json"})
        assert response.status_code == 200, response.text
        return response.json()

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5).text

    def readyz(self) -> int | None:
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=1).status_code
        except httpx.HTTPError:
            return None

    def stop(self) -> int:
        return stop_process(self.proc, timeout=15)


def start_injector(directory: Path, config: str, ca_file: Path | None, *, wait_ready: bool = True) -> Injector:
    directory.mkdir(parents=True, exist_ok=True)
    port, admin_port = free_port(), free_port()
    (directory / "injector.yaml").write_text(config)
    log = directory / "injector.log"
    proc = subprocess.Popen(
        [str(binary("chaperone-injector")), "--config", str(directory / "injector.yaml"),
         "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin_port}", "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
    )
    injector = Injector(proc, port, admin_port, log, ca_file)
    if wait_ready:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"chaperone-injector exited with {proc.returncode}:\n{tail(log)}")
            return injector.readyz() == 200
        poll(ready, timeout=STARTUP_TIMEOUT, what="chaperone-injector /readyz")
    return injector


# --------------------------------------------------------------------------------------------
# a stand-in for the Kubernetes API (Secrets and MutatingWebhookConfigurations only)


@dataclass
class FakeAPIState:
    token: str
    secrets: dict[tuple[str, str], dict] = field(default_factory=dict)
    webhooks: dict[str, dict] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    unauthorized: int = 0
    fail_next: int = 0
    # TokenReview: token -> the user the API server would report for it.
    reviews: dict[str, dict] = field(default_factory=dict)
    version: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_version(self) -> str:
        self.version += 1
        return str(self.version)


def webhook_configuration(name: str, webhooks: list[str]) -> dict:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "resourceVersion": "1"},
        "webhooks": [{
            "name": hook, "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
            "clientConfig": {"service": {"name": "chaperone-injector", "namespace": "chaperone-system", "path": "/mutate", "port": 443}},
        } for hook in webhooks],
    }


class FakeKubernetesAPI:
    SECRETS = "/api/v1/namespaces/{ns}/secrets"
    WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
    TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"

    def __init__(self, directory: Path, token: str = "injector-sa-token"):
        self.ca = make_ca(directory, "apiserver-ca")
        self.cert = issue(directory, self.ca, "apiserver", ["kubernetes.default.svc", "localhost"])
        self.state = FakeAPIState(token=token)
        self.token_file = directory / "token"
        self.token_file.write_text(token)
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def status(self, code: int, reason: str, message: str):
                self.reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code})

            def body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def handle_any(self):
                payload = self.body()
                with state.lock:
                    state.requests.append((self.command, self.path))
                    if self.headers.get("Authorization") != f"Bearer {state.token}":
                        state.unauthorized += 1
                        return self.status(401, "Unauthorized", "Unauthorized")
                    if state.fail_next > 0:
                        state.fail_next -= 1
                        return self.status(500, "InternalError", "etcdserver: request timed out")
                    return self.route(payload)

            def route(self, payload: bytes):
                path = self.path.split("?")[0]
                if path == FakeKubernetesAPI.TOKEN_REVIEWS and self.command == "POST":
                    return self.token_review(json.loads(payload))
                if path.startswith("/api/v1/namespaces/") and "/secrets" in path:
                    parts = path.split("/")
                    namespace = parts[4]
                    name = parts[6] if len(parts) > 6 else None
                    return self.secret(namespace, name, payload)
                if path.startswith(FakeKubernetesAPI.WEBHOOKS):
                    return self.webhook(path[len(FakeKubernetesAPI.WEBHOOKS):], payload)
                return self.status(404, "NotFound", f"no route {path}")

            def token_review(self, review: dict):
                # As kube-apiserver answers: 201 with status.authenticated, the user, and the
                # audiences the token was valid for (the intersection with spec.audiences).
                spec = review.get("spec", {})
                user = state.reviews.get(spec.get("token", ""))
                if user is None or user.get("audience") not in spec.get("audiences", []):
                    result = {"authenticated": False, "error": "[invalid bearer token, token audiences don't match]"}
                else:
                    result = {"authenticated": True, "audiences": [user["audience"]],
                              "user": {k: v for k, v in user.items() if k != "audience"}}
                return self.reply(201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec, "status": result})

            def secret(self, namespace: str, name: str | None, payload: bytes):
                if self.command == "GET" and name:
                    found = state.secrets.get((namespace, name))
                    return self.reply(200, found) if found else self.status(404, "NotFound", f'secrets "{name}" not found')
                if self.command == "POST" and not name:
                    obj = json.loads(payload)
                    key = (namespace, obj["metadata"]["name"])
                    if key in state.secrets:
                        return self.status(409, "AlreadyExists", f'secrets "{key[1]}" already exists')
                    obj["metadata"]["resourceVersion"] = state.next_version()
                    state.secrets[key] = obj
                    return self.reply(201, obj)
                if self.command == "PUT" and name:
                    obj = json.loads(payload)
                    current = state.secrets.get((namespace, name))
                    if current is None:
                        return self.status(404, "NotFound", f'secrets "{name}" not found')
                    if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                        return self.status(409, "Conflict", "the object has been modified")
                    obj["metadata"]["resourceVersion"] = state.next_version()
                    state.secrets[(namespace, name)] = obj
                    return self.reply(200, obj)
                return self.status(405, "MethodNotAllowed", self.command)

            def webhook(self, name: str, payload: bytes):
                current = state.webhooks.get(name)
                if current is None:
                    return self.status(404, "NotFound", f'mutatingwebhookconfigurations "{name}" not found')
                if self.command == "GET":
                    return self.reply(200, current)
                if self.command == "PATCH":
                    if self.headers.get("Content-Type") != "application/json-patch+json":
                        return self.status(415, "UnsupportedMediaType", self.headers.get("Content-Type", ""))
                    try:
                        patched = jsonpatch.JsonPatch(json.loads(payload)).apply(copy.deepcopy(current))
                    except jsonpatch.JsonPatchTestFailed as error:
                        return self.status(422, "Invalid", f"the server rejected our request: {error}")
                    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                        return self.status(422, "Invalid", str(error))
                    patched["metadata"]["resourceVersion"] = state.next_version()
                    state.webhooks[name] = patched
                    return self.reply(200, patched)
                return self.status(405, "MethodNotAllowed", self.command)

            do_GET = do_POST = do_PUT = do_PATCH = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def ca_bundle(self, name: str) -> list[str | None]:
        with self.state.lock:
            return [hook["clientConfig"].get("caBundle") for hook in self.state.webhooks[name]["webhooks"]]

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        with self.state.lock:
            found = self.state.secrets.get((namespace, name))
        return None if found is None else {k: base64.b64decode(v) for k, v in found["data"].items()}

    def count(self, method: str, fragment: str) -> int:
        with self.state.lock:
            return sum(1 for m, p in self.state.requests if m == method and fragment in p)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
