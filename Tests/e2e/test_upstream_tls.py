"""Upstream TLS is verified: a private upstream works only with its CA bundle configured, and a
certificate for another name is refused. (NIOSSL also accepts an IP-address SAN that matches the
connected address, whatever the host name, so the certificate here carries a DNS name only.) Real TLS: the mock upstream serves HTTPS with a
certificate signed by a CA made here with openssl."""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(os.environ.get("CHAPERONE_BIN_DIR", Path(__file__).resolve().parents[2] / ".build" / "debug"))
KEY = "sk-tls-real-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def wait_until(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def tls_setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Chaperone Test CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "key").write_text(KEY + "\n")

    mock_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    mock = subprocess.Popen(
        [str(BIN / "chaperone-mock-upstream"), "--port", str(mock_port), "--expect-key", KEY,
         "--tls-cert", str(d / "server.pem"), "--tls-key", str(d / "server.key")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "listening on https://" in mock.stdout.readline()
    config = d / "proxy.yaml"
    config.write_text(f"""
listen: {{ host: 127.0.0.1, port: {proxy_port} }}
admin: {{ host: 127.0.0.1, port: {admin_port} }}
upstreams:
  private:
    base_url: https://localhost:{mock_port}
    provider: openai
    ca_bundle: {d / "ca.pem"}
    credential: {{ file: {d / "key"} }}
  untrusted:
    base_url: https://localhost:{mock_port}
    provider: openai
    credential: {{ file: {d / "key"} }}
  wrongname:                  # the certificate names localhost only
    base_url: https://127.0.0.1:{mock_port}
    provider: openai
    ca_bundle: {d / "ca.pem"}
    credential: {{ file: {d / "key"} }}
timeouts: {{ connect: 5s }}
audit: {{ file: {d / "audit.jsonl"}, stdout: false }}
""")
    stderr = open(d / "proxy.log", "w")
    proxy = subprocess.Popen([str(BIN / "chaperone-proxy"), "--config", str(config)], stdout=subprocess.DEVNULL, stderr=stderr)

    def ready():
        try:
            return httpx.get(f"http://127.0.0.1:{admin_port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, "the proxy's /readyz")
    yield {"base": f"http://127.0.0.1:{proxy_port}", "audit": d / "audit.jsonl"}
    for process in (proxy, mock):
        process.terminate()
        process.wait(timeout=30)
    stderr.close()


def chat(base: str, upstream: str) -> httpx.Response:
    return httpx.post(
        f"{base}/{upstream}/v1/chat/completions",
        headers={"authorization": "Bearer sk-agent-fake"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        timeout=20,
    )


def completion_event(audit: Path, exchange_id: str) -> dict:
    def find():
        if not audit.exists():
            return None
        for line in audit.read_text().splitlines():
            event = json.loads(line)
            if event.get("exchange_id") == exchange_id and event["kind"] in ("llm.response", "http.egress"):
                return event
        return None
    return wait_until(find, f"the completion event of {exchange_id}")


def test_private_upstream_is_reached_with_its_ca_bundle(tls_setup):
    response = chat(tls_setup["base"], "private")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"].startswith("Hello from the mock upstream")
    event = completion_event(tls_setup["audit"], response.headers["x-chaperone-exchange"])
    assert event["outcome"] == "completed" and event["http"]["status"] == 200


@pytest.mark.parametrize("upstream", ["untrusted", "wrongname"])
def test_unverifiable_upstream_certificate_is_refused(tls_setup, upstream):
    response = chat(tls_setup["base"], upstream)
    assert response.status_code == 502, response.text
    assert response.headers["x-chaperone-error"] == "upstream_unreachable"
    message = response.json()["error"]["message"]
    assert f"upstream '{upstream}' could not be reached" in message
    event = completion_event(tls_setup["audit"], response.headers["x-chaperone-exchange"])
    assert event["outcome"] == "upstream_error"
    assert event["http"]["status"] == 502
