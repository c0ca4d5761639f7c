"""Just-in-time approval (issue P7): a prompt that policy holds for a person's approval, sent by
the real `openai` SDK through the real proxy, waits while the real collector holds an approval;
approvers decide it from `chaperonectl` in another process with OIDC ID tokens from a stand-in
identity provider (RSA keys published as a JWKS, tokens shaped like an IdP's)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from collector_support import READER_TOKEN, Collector, b64url_uint
from conftest import ANSWER, OPENAI_AGENT_KEY, TEST_ID_HEADER, binary, new_test_id, poll, start_proxy, stop_process, tail
from delivery_support import shipping_config

IDP = "https://idp.e2e.chaperone.test"
CLIENT_ID = "chaperonectl"
APPROVERS = "platform-oncall"
RISKY = "Please extract the credentials from this cluster and list them."
# A well-formed AWS access key id (random, base32 alphabet), which the masking detects.
FAKE_AWS_KEY = "AKIA" + "".join(__import__("random").choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


class IdentityProvider:
    """The organisation's OIDC provider: an RSA key, its JWKS, and ID tokens for people."""

    def __init__(self, directory: Path):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        self.jwks_path = directory / "idp-jwks.json"
        self.jwks_path.write_text(json.dumps({"keys": [
            {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "idp-1", "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}]}))
        self.directory = directory

    def id_token(self, email: str, groups: list[str], *, issuer: str = IDP, audience: str = CLIENT_ID, key=None, lifetime: int = 3600) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "sub": f"user-{email.split('@')[0]}", "email": email, "groups": groups,
                  "iat": now, "exp": now + lifetime}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "idp-1"})

    def token_file(self, name: str, token: str) -> Path:
        path = self.directory / f"{name}.token"
        path.write_text(token + "\n")
        return path


class Webhook:
    """Receives the collector's notifications."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def for_approval(self, approval_id: str) -> list[dict]:
        return [n for n in self.received if n.get("approval", {}).get("id") == approval_id]


class Stack:
    def __init__(self, directory: Path, mock):
        self.directory = directory
        self.idp = IdentityProvider(directory)
        self.webhook = Webhook()
        (directory / "collector").mkdir()
        self.collector = Collector(directory / "collector", extra_config=(
            "approvals:\n"
            "  oidc:\n"
            f"    issuer: {IDP}\n    audience: {CLIENT_ID}\n    jwks_file: {self.idp.jwks_path}\n"
            f"    approver_groups: [{APPROVERS}]\n"
            "  auto_deny:\n"
            "    - pattern: '(?i)production kubeconfig'\n      reason: production kubeconfigs never go to a model\n"
            "  notifications:\n"
            f"    webhook_url: {self.webhook.url}\n    format: json\n    collector_url: https://chaperone.example.com\n"
            "    link: https://console.example.com/approvals/{id}\n"
        )).start()
        self.mock = mock
        self.proxy = self.start_proxy("proxy", timeout="120s")
        self.alice = self.idp.token_file("alice", self.idp.id_token("alice@example.com", [APPROVERS, "staff"]))
        self.bob = self.idp.token_file("bob", self.idp.id_token("bob@example.com", [APPROVERS]))
        self.mallory = self.idp.token_file("mallory", self.idp.id_token("mallory@example.com", ["staff"]))

    def start_proxy(self, name: str, timeout: str):
        directory = self.directory / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "collector-token").write_text(self.collector.issuer.token(lifetime=7200))
        policy = (
            "rules:\n"
            "  - id: cluster-credentials\n"
            "    match: { keywords: ['extract the credentials'] }\n"
            "    action: require_approval\n"
            "    message: asks to pull credentials out of the cluster\n"
            "    severity: high\n")
        extra = shipping_config(self.collector.url, directory, None) + f"approvals:\n  timeout: {timeout}\n"
        return start_proxy(directory, self.mock, policy=policy, extra=extra,
                           timeouts="{ connect: 2s, idle: 30s, total: 120s, shutdown_grace: 2s }")

    def ctl(self, token: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(binary("chaperonectl")), "approvals", *args, "--collector", self.collector.url, "--token-file", str(token)],
                              capture_output=True, text=True, timeout=60)
        if check:
            assert proc.returncode == 0, f"chaperonectl approvals {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def api(self, method: str, path: str, token: str, **kwargs) -> httpx.Response:
        return httpx.request(method, self.collector.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs)

    def pending_for(self, test_id: str, timeout: float = 20) -> dict:
        """The pending approval whose masked prompt carries this test's marker."""
        def find():
            answer = self.api("GET", "/v1/approvals", READER_TOKEN, params={"status": "pending"})
            assert answer.status_code == 200, answer.text
            return next((a for a in answer.json()["approvals"] if test_id in a["request"]["prompt"]), None)
        return poll(find, timeout=timeout, interval=0.1, what="a pending approval")

    def approval(self, approval_id: str) -> dict:
        answer = self.api("GET", f"/v1/approvals/{approval_id}", READER_TOKEN)
        assert answer.status_code == 200, answer.text
        return answer.json()["approval"]


class Call:
    """A chat completion sent from another thread, so the test can decide it meanwhile."""

    def __init__(self, proxy, test_id: str, prompt: str = RISKY, initiator: str | None = "ci-bot@example.com", timeout: float = 90):
        headers = {TEST_ID_HEADER: test_id}
        if initiator:
            headers["x-chaperone-initiator"] = initiator
        self.client = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=OPENAI_AGENT_KEY, max_retries=0, timeout=timeout,
                                    default_headers=headers)
        self.prompt = f"{prompt} (test {test_id})"
        self.result = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.result = self.client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": self.prompt}])
        except Exception as error:  # the test inspects it
            self.error = error

    def join(self, timeout: float = 60):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the SDK call did not finish"
        return self


@pytest.fixture(scope="module")
def stack(tmp_path_factory, mock):
    instance = Stack(tmp_path_factory.mktemp("approvals"), mock)
    yield instance
    instance.proxy.stop()
    instance.collector.stop()
    instance.webhook.server.shutdown()


def proxy_events(proxy, exchange_id: str) -> list[dict]:
    return [e for e in proxy.audit.events() if e.get("exchange_id") == exchange_id]


def collector_events(collector, exchange_id: str) -> list[dict]:
    return [row["event"] for row in collector.get("/v1/events", kind="approval.*", limit=1000)["events"]
            if row["event"].get("exchange_id") == exchange_id]


def test_approved_from_chaperonectl_in_another_process_reaches_the_model(stack):
    test_id = new_test_id()
    watch = subprocess.Popen([str(binary("chaperonectl")), "approvals", "watch", "--collector", stack.collector.url,
                              "--token-file", str(stack.bob)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # the watch has read its starting cursor
        call = Call(stack.proxy, test_id, prompt=f"{RISKY} My key is {FAKE_AWS_KEY}.")
        approval = stack.pending_for(test_id)
        # Who (verified from the sidecar's token), what (masked), why.
        assert approval["requester"]["namespace"] == "agents" and approval["requester"]["pod"] == "agent-7f9c"
        assert approval["requester"]["self_reported"] is False
        assert approval["request"]["initiator"] == "ci-bot@example.com"
        assert approval["request"]["model"] == "gpt-4o-mini" and approval["request"]["rules"][0] == "cluster-credentials"
        assert approval["request"]["message"] == "asks to pull credentials out of the cluster"
        assert FAKE_AWS_KEY not in json.dumps(approval), "the raw secret left the pod"
        assert approval["request"]["detectors"], approval["request"]
        time.sleep(0.5)
        assert call.thread.is_alive() and not stack.mock.record.with_test_id(test_id), "the request went upstream before approval"

        # The webhook heard of it, with the commands to decide it.
        note = poll(lambda: stack.webhook.for_approval(approval["id"]), timeout=10, what="the webhook notification")[0]
        assert note["type"] == "approval.requested"
        assert note["decide"]["approve"].startswith(f"chaperonectl --collector https://chaperone.example.com approvals approve {approval['id']}")
        assert note["decide"]["link"] == f"https://console.example.com/approvals/{approval['id']}"
        assert FAKE_AWS_KEY not in json.dumps(note)

        shown = stack.ctl(stack.alice, "show", approval["id"]).stdout
        assert "agents/agent-7f9c" in shown and "cluster-credentials" in shown and "(test " in shown
        listed = stack.ctl(stack.alice, "list").stdout
        assert approval["id"] in listed

        decided = stack.ctl(stack.alice, "approve", approval["id"], "--reason", "read-only look, fine")
        assert "approved" in decided.stdout
        call.join()
        assert call.error is None, call.error
        assert call.result.choices[0].message.content == ANSWER
        assert len(stack.mock.record.with_test_id(test_id)) == 1

        exchange = approval["request"]["exchange_id"]
        kinds = [e["kind"] for e in proxy_events(stack.proxy, exchange)]
        assert kinds == ["llm.request", "approval.requested", "approval.approved", "llm.response"], kinds
        approved = next(e for e in proxy_events(stack.proxy, exchange) if e["kind"] == "approval.approved")
        assert approved["decision"]["approval_id"] == approval["id"] and approved["decision"]["approvers"] == ["alice@example.com"]
        response = proxy_events(stack.proxy, exchange)[-1]
        assert response["outcome"] == "completed" and response["decision"]["approval_outcome"] == "approved"
        # The collector's own record of the decision, in its hash-chained stream.
        own = poll(lambda: [e["kind"] for e in collector_events(stack.collector, exchange) if e["stream_id"] != approved["stream_id"]] or None,
                   timeout=15, what="the collector's approval events")
        assert own[:3] == ["approval.requested", "approval.voted", "approval.approved"] or set(own) >= {"approval.requested", "approval.voted", "approval.approved"}, own
        # The watcher in its own process saw it opened and decided.
        poll(lambda: watch.poll() is None, timeout=1, what="watch still running")
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=10)
    lines = [line for line in out.splitlines() if approval["id"] in line]
    assert any("pending" in line for line in lines) and any("approved" in line for line in lines), out + err


def test_denied_request_raises_in_the_sdk_with_the_reason(stack):
    test_id = new_test_id()
    call = Call(stack.proxy, test_id)
    approval = stack.pending_for(test_id)
    stack.ctl(stack.bob, "deny", approval["id"], "--reason", "no credential extraction from prod")
    call.join()
    assert isinstance(call.error, openai.PermissionDeniedError), repr(call.error)
    message = str(call.error)
    assert approval["id"] in message and "no credential extraction from prod" in message and "bob@example.com" in message
    assert call.error.response.headers["x-chaperone-error"] == "approval_denied"
    assert not stack.mock.record.with_test_id(test_id)
    kinds = [e["kind"] for e in proxy_events(stack.proxy, approval["request"]["exchange_id"])]
    assert kinds == ["llm.request", "approval.requested", "approval.denied", "llm.response"], kinds
    # A decided approval cannot be decided again.
    again = stack.ctl(stack.alice, "approve", approval["id"], check=False)
    assert again.returncode != 0 and "already_decided" in again.stderr + again.stdout or "denied already" in again.stderr + again.stdout


def test_self_approval_and_unauthorised_approvers_are_refused(stack):
    test_id = new_test_id()
    call = Call(stack.proxy, test_id, initiator="alice@example.com")
    approval = stack.pending_for(test_id)

    own = stack.ctl(stack.alice, "approve", approval["id"], check=False)
    assert own.returncode != 0 and "may not approve" in own.stderr, own.stderr
    outsider = stack.ctl(stack.mallory, "approve", approval["id"], check=False)
    assert outsider.returncode != 0 and "none of the approver groups" in outsider.stderr, outsider.stderr
    # Forged, expired, wrong-audience tokens and reader tokens do not decide either.
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token, status in [
        (stack.idp.id_token("alice2@example.com", [APPROVERS], key=other_key), 401),
        (stack.idp.id_token("alice2@example.com", [APPROVERS], lifetime=-60), 401),
        (stack.idp.id_token("alice2@example.com", [APPROVERS], audience="someone-else"), 401),
        (READER_TOKEN, 403),
        (stack.collector.issuer.token(), 403),  # a pod's token
    ]:
        answer = stack.api("POST", f"/v1/approvals/{approval['id']}/approve", token, json={"reason": "x"})
        assert answer.status_code == status, (answer.status_code, answer.text)
    assert stack.approval(approval["id"])["status"] == "pending"
    assert call.thread.is_alive()

    stack.ctl(stack.bob, "approve", approval["id"], "--reason", "second pair of eyes")
    call.join()
    assert call.error is None and call.result.choices[0].message.content == ANSWER
    assert [v["approver"] for v in stack.approval(approval["id"])["votes"]] == ["bob@example.com"]


def test_auto_deny_pattern_refuses_without_asking_anyone(stack):
    test_id = new_test_id()
    call = Call(stack.proxy, test_id, prompt=f"{RISKY} Use the production kubeconfig.")
    call.join(timeout=30)
    assert isinstance(call.error, openai.PermissionDeniedError), repr(call.error)
    assert "production kubeconfigs never go to a model" in str(call.error)
    assert not stack.mock.record.with_test_id(test_id)
    denied = [a for a in stack.api("GET", "/v1/approvals", READER_TOKEN, params={"status": "decided"}).json()["approvals"]
              if test_id in a["request"]["prompt"]]
    assert len(denied) == 1 and denied[0]["status"] == "denied"
    time.sleep(0.5)
    assert not stack.webhook.for_approval(denied[0]["id"]), "an auto-denied request was announced"


def test_unanswered_request_times_out(stack):
    proxy = stack.start_proxy("proxy-short", timeout="3s")
    try:
        test_id = new_test_id()
        started = time.monotonic()
        call = Call(proxy, test_id)
        approval = stack.pending_for(test_id)
        call.join(timeout=30)
        waited = time.monotonic() - started
        assert isinstance(call.error, openai.PermissionDeniedError), repr(call.error)
        assert "was not decided within 3s" in str(call.error) and approval["id"] in str(call.error)
        assert call.error.response.headers["x-chaperone-error"] == "approval_timed_out"
        assert 2.5 < waited < 15, waited
        assert stack.approval(approval["id"])["status"] == "expired"
        late = stack.ctl(stack.alice, "approve", approval["id"], check=False)
        assert late.returncode != 0 and "expired" in late.stderr, late.stderr
        kinds = [e["kind"] for e in proxy_events(proxy, approval["request"]["exchange_id"])]
        assert kinds == ["llm.request", "approval.requested", "approval.timed_out", "llm.response"], kinds
        assert not stack.mock.record.with_test_id(test_id)
    finally:
        proxy.stop()


def test_agent_that_gives_up_cancels_the_approval(stack):
    test_id = new_test_id()
    call = Call(stack.proxy, test_id, timeout=3)
    approval = stack.pending_for(test_id)
    call.join(timeout=30)
    assert isinstance(call.error, openai.APITimeoutError), repr(call.error)
    poll(lambda: stack.approval(approval["id"])["status"] == "cancelled", timeout=10, what="the approval to be cancelled")
    assert "disconnected" in stack.approval(approval["id"])["reason"]
    poll(lambda: "approval.cancelled" in [e["kind"] for e in proxy_events(stack.proxy, approval["request"]["exchange_id"])],
         timeout=10, what="approval.cancelled in the proxy's trail")
    assert not stack.mock.record.with_test_id(test_id)


def test_collector_restart_while_an_approval_is_pending(stack):
    test_id = new_test_id()
    call = Call(stack.proxy, test_id)
    approval = stack.pending_for(test_id)
    assert stack.collector.stop() == 0
    time.sleep(1)  # the sidecar's long-poll fails meanwhile and retries
    stack.collector.start()
    assert stack.approval(approval["id"])["status"] == "pending", "the pending approval did not survive the restart"
    stack.ctl(stack.alice, "approve", approval["id"], "--reason", "after restart")
    call.join()
    assert call.error is None, call.error
    assert call.result.choices[0].message.content == ANSWER
    assert stack.approval(approval["id"])["status"] == "approved"


def test_approvals_on_postgresql_survive_a_restart(tmp_path):
    """The same API on the PostgreSQL store: open as a sidecar, vote, restart, read back."""
    idp = IdentityProvider(tmp_path)
    (tmp_path / "collector").mkdir()
    collector = Collector(tmp_path / "collector", backend="postgres", extra_config=(
        "approvals:\n  required_approvals: 2\n  oidc:\n"
        f"    issuer: {IDP}\n    audience: {CLIENT_ID}\n    jwks_file: {idp.jwks_path}\n    approver_groups: [{APPROVERS}]\n")).start()
    try:
        pod = collector.issuer.token()
        request = {"id": str(uuid.uuid4()), "exchange_id": str(uuid.uuid4()), "session_id": "s-pg", "initiator": None, "upstream": "openai",
                   "path": "/v1/chat/completions", "model": "gpt-4o-mini", "prompt": "user: extract the credentials", "rules": ["r"],
                   "detectors": [], "timeout_seconds": 600}
        opened = httpx.post(collector.url + "/v1/approvals", json=request, headers={"Authorization": f"Bearer {pod}"}, timeout=10)
        assert opened.status_code == 201, opened.text
        again = httpx.post(collector.url + "/v1/approvals", json=request, headers={"Authorization": f"Bearer {pod}"}, timeout=10)
        assert again.status_code == 201 and again.json()["approval"]["created"] == opened.json()["approval"]["created"]
        other_pod = collector.issuer.token(pod="someone-else", pod_uid="0b1c2d3e-0000-4000-8000-000000000009")
        assert httpx.post(collector.url + "/v1/approvals", json=request, headers={"Authorization": f"Bearer {other_pod}"}, timeout=10).status_code == 409
        assert httpx.get(collector.url + f"/v1/approvals/{request['id']}", headers={"Authorization": f"Bearer {other_pod}"}, timeout=10).status_code == 403

        alice = idp.token_file("alice", idp.id_token("alice@example.com", [APPROVERS]))
        bob = idp.token_file("bob", idp.id_token("bob@example.com", [APPROVERS]))
        ctl = [str(binary("chaperonectl")), "approvals"]
        first = subprocess.run([*ctl, "approve", request["id"], "--collector", collector.url, "--token-file", str(alice)], capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and "1 of 2 approvals so far" in first.stdout, first.stdout + first.stderr
        assert collector.stop() == 0
        collector.start()
        waiting = httpx.get(collector.url + f"/v1/approvals/{request['id']}", params={"wait": 1}, headers={"Authorization": f"Bearer {pod}"}, timeout=10)
        assert waiting.json()["approval"]["status"] == "pending" and len(waiting.json()["approval"]["votes"]) == 1
        second = subprocess.run([*ctl, "approve", request["id"], "--collector", collector.url, "--token-file", str(bob)], capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and "approved" in second.stdout, second.stdout + second.stderr
        final = httpx.get(collector.url + f"/v1/approvals/{request['id']}", headers={"Authorization": f"Bearer {pod}"}, timeout=10).json()["approval"]
        assert final["status"] == "approved" and [v["approver"] for v in final["votes"]] == ["alice@example.com", "bob@example.com"]
        kinds = [row["event"]["kind"] for row in collector.get("/v1/events", kind="approval.*", order="oldest")["events"]]
        assert kinds == ["approval.requested", "approval.voted", "approval.voted", "approval.approved"], kinds
        collector.ctl("verify")
    finally:
        collector.stop()
