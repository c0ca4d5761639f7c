"""Limits, timeouts, backpressure, key rotation, streamed uploads, metrics and concurrency, each
against its own real proxy process (configured for the case) in front of the shared mock."""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from conftest import (
    REAL_KEY,
    TEST_ID_HEADER,
    exchange_id_of,
    poll,
    sha256_hex,
    start_proxy,
)

CHAT = "/openai/v1/chat/completions"


def agent_headers(test_id: str) -> dict:
    return {"authorization": "Bearer sk-agent-fake-key", TEST_ID_HEADER: test_id}


def chat_body(model: str, stream: bool = False) -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def own_proxy(request, tmp_path, mock):
    """A proxy of the test's own, with `timeouts` / `limits` from the test's parameters."""
    options = getattr(request, "param", {})
    proxy = start_proxy(tmp_path / "proxy", mock, **options)
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("own_proxy", [{"timeouts": "{ connect: 2s, idle: 1s, total: 60s }"}], indirect=True)
def test_upstream_that_never_answers_gets_504_after_idle_timeout(own_proxy, mock, test_id):
    started = time.monotonic()
    response = httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id), json=chat_body("mock-hang"), timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.headers["x-chaperone-error"] == "upstream_timeout"
    assert "timeouts.idle" in response.json()["error"]["message"]
    assert 0.9 <= elapsed < 10, elapsed
    event = own_proxy.audit.wait_event(exchange_id_of(response.headers), "llm.response")
    assert event["outcome"] == "timeout"
    assert event["http"]["status"] == 504
    # The upstream's request was abandoned, not left open.
    assert mock.record.wait_test_id(test_id)["completed"] is False


@pytest.mark.parametrize("own_proxy", [{"timeouts": "{ connect: 2s, idle: 1s, total: 60s }"}], indirect=True)
def test_stream_that_stalls_is_cut_and_recorded_as_timeout(own_proxy, test_id):
    received = b""
    with httpx.stream("POST", own_proxy.url + CHAT, headers=agent_headers(test_id), json=chat_body("mock-stall", stream=True), timeout=30) as response:
        assert response.status_code == 200
        exchange = exchange_id_of(response.headers)
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_bytes():
                received += chunk
    assert received.startswith(b"data: ")  # the first events did arrive, as they came
    event = own_proxy.audit.wait_event(exchange, "llm.response")
    assert event["outcome"] == "timeout"
    assert event["error"]["type"] == "upstream_timeout"
    assert event["http"]["bytes_out"] == len(received)


@pytest.mark.parametrize("own_proxy", [{"timeouts": "{ connect: 1s, idle: 10s, total: 60s }"}], indirect=True)
def test_upstream_that_never_accepts_gets_504_after_connect_timeout(own_proxy, test_id):
    """The `dead` upstream's port gets a listener whose accept queue is full: connection
    attempts hang in SYN retransmission, as with a black-holed host."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", own_proxy.extra["dead_port"]))
    listener.listen(0)
    filler = socket.create_connection(("127.0.0.1", own_proxy.extra["dead_port"]), timeout=2)  # fills the queue
    try:
        started = time.monotonic()
        response = httpx.post(own_proxy.url + "/dead/v1/chat/completions", headers=agent_headers(test_id),
                              json=chat_body("gpt-4o"), timeout=30)
        elapsed = time.monotonic() - started
    finally:
        filler.close()
        listener.close()
    assert response.status_code == 504, response.text
    assert response.headers["x-chaperone-error"] == "upstream_timeout"
    assert "timeouts.connect" in response.json()["error"]["message"]
    assert 0.9 <= elapsed < 8, elapsed
    event = own_proxy.audit.wait_event(exchange_id_of(response.headers), "llm.response")
    assert event["outcome"] == "timeout" and event["http"]["status"] == 504


@pytest.mark.parametrize("own_proxy", [{"timeouts": "{ connect: 2s, idle: 10s, total: 1500ms }"}], indirect=True)
def test_total_timeout_cuts_a_long_stream(own_proxy, test_id):
    started = time.monotonic()
    with httpx.stream("POST", own_proxy.url + CHAT, headers=agent_headers(test_id), json=chat_body("mock-slow", stream=True), timeout=30) as response:
        exchange = exchange_id_of(response.headers)
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in response.iter_bytes():
                pass
    assert time.monotonic() - started >= 1.4  # cut by the timer, well before mock-slow's 4 s (the stream did not end: see the raises above)
    event = own_proxy.audit.wait_event(exchange, "llm.response")
    assert event["outcome"] == "timeout"
    assert "timeouts.total" in event["error"]["message"]


def test_too_many_headers_get_431(proxy, test_id):
    headers = agent_headers(test_id) | {f"x-filler-{i}": "v" for i in range(120)}
    response = httpx.post(proxy.url + CHAT, headers=headers, json=chat_body("gpt-4o"), timeout=10)
    assert response.status_code == 431
    assert response.headers["x-chaperone-error"] == "request_headers_too_large"
    assert "limits.max_headers" in response.json()["error"]["message"]
    event = proxy.audit.wait_event(exchange_id_of(response.headers), "http.egress")
    assert event["outcome"] == "rejected"


def test_slow_reader_holds_back_the_upstream_instead_of_filling_memory(proxy, mock, test_id):
    """64 MiB streamed to an agent that pauses: the proxy reads from the upstream only as fast
    as the agent reads, so its memory stays far below the size of the stream."""
    baseline = rss_kib(proxy.proc.pid)
    digest = hashlib.sha256()
    total = 0
    with httpx.stream("POST", proxy.url + CHAT, headers=agent_headers(test_id), json=chat_body("mock-bulk", stream=True), timeout=60) as response:
        assert response.status_code == 200
        exchange = exchange_id_of(response.headers)
        chunks = response.iter_raw()
        while total < 1 << 20:
            chunk = next(chunks)
            digest.update(chunk)
            total += len(chunk)
        time.sleep(1.5)  # the agent stops reading; the mock keeps trying to send 63 MiB more
        held = rss_kib(proxy.proc.pid)
        for chunk in chunks:
            digest.update(chunk)
            total += len(chunk)
    print(f"\nproxy RSS baseline {baseline} KiB, while paused {held} KiB, streamed {total} bytes")
    assert total > 64 * 1000 * 1000
    assert held - baseline < 24 * 1024, f"proxy RSS grew {held - baseline} KiB while the agent paused"
    record = mock.record.wait_test_id(test_id)
    assert record["completed"] is True
    event = proxy.audit.wait_event(exchange, "llm.response")
    # The stream is re-encoded by the masking redactor; the audit hashes the upstream's bytes.
    assert event["http"]["response_sha256"] == record["response_sha256"]
    assert event["outcome"] == "completed" and event["http"]["bytes_out"] == total


def test_non_llm_upload_streams_through_and_is_hashed(proxy, mock, test_id):
    body = os.urandom(700 * 1024)

    def pieces():
        for offset in range(0, len(body), 64 * 1024):
            yield body[offset:offset + 64 * 1024]

    response = httpx.post(proxy.url + "/openai/v1/files", headers=agent_headers(test_id), content=pieces(), timeout=20)
    assert response.status_code == 404  # the mock has no files API; the body still crossed
    record = mock.record.wait_test_id(test_id)
    assert record["request_sha256"] == sha256_hex(body)
    event = proxy.audit.wait_event(exchange_id_of(response.headers), "http.egress")
    assert event["http"]["bytes_in"] == len(body)
    assert event["http"]["request_sha256"] == sha256_hex(body)
    assert "gen_ai" not in event


def test_chunked_body_over_the_limit_is_refused(proxy, test_id):
    def pieces():
        for _ in range(40):
            yield b"x" * (64 * 1024)  # 2.5 MiB, limit is 1 MiB, no content-length

    response = httpx.post(proxy.url + "/openai/v1/files", headers=agent_headers(test_id), content=pieces(), timeout=20)
    assert response.status_code == 413
    assert response.headers["x-chaperone-error"] == "request_too_large"


def test_rotated_key_file_is_used_for_the_next_request(own_proxy, mock, test_id):
    key_file = own_proxy.directory / "key"
    first = httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id + "-a"), json=chat_body("gpt-4o"), timeout=10)
    assert first.status_code == 200
    # Rotate the way kubelet does: a new file renamed over the old one.
    staging = own_proxy.directory / "key.new"
    staging.write_text("sk-rotated-key\n")
    os.replace(staging, key_file)
    second = httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id + "-b"), json=chat_body("gpt-4o"), timeout=10)
    assert second.status_code == 401  # the mock only accepts the first key: the new one was sent
    assert mock.record.wait_test_id(test_id + "-b")["headers"]["authorization"] == "Bearer sk-rotated-key"
    key_file.write_text(REAL_KEY + "\n")
    third = httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id + "-c"), json=chat_body("gpt-4o"), timeout=10)
    assert third.status_code == 200
    # A key file that disappears is a clear 503, not a request without a key.
    key_file.unlink()
    fourth = httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id + "-d"), json=chat_body("gpt-4o"), timeout=10)
    assert fourth.status_code == 503
    assert fourth.headers["x-chaperone-error"] == "credential_unavailable"
    assert str(key_file) in fourth.json()["error"]["message"]


def test_many_concurrent_streams_all_complete_and_chain(own_proxy, mock, test_id):
    def one(index: int) -> tuple[str, bytes]:
        with httpx.stream("POST", own_proxy.url + CHAT, headers=agent_headers(f"{test_id}-{index}"),
                          json=chat_body("gpt-4o", stream=True), timeout=30) as response:
            assert response.status_code == 200
            return exchange_id_of(response.headers), response.read()

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(one, range(40)))
    for index, (exchange, body) in enumerate(results):
        assert body.endswith(b"data: [DONE]\n\n")
        event = own_proxy.audit.wait_event(exchange, "llm.response")
        assert mock.record.wait_test_id(f"{test_id}-{index}")["response_sha256"] == event["http"]["response_sha256"]
    lines = own_proxy.audit.raw_lines()
    assert len(lines) == 80
    previous = "0" * 64
    for seq, line in enumerate(lines, start=1):
        event = json.loads(line)
        assert event["seq"] == seq and event["prev_hash"] == previous
        previous = hashlib.sha256(line).hexdigest()


def test_metrics_count_what_happened(own_proxy, test_id):
    assert httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id), json=chat_body("gpt-4o"), timeout=10).status_code == 200
    assert httpx.post(own_proxy.url + CHAT, headers=agent_headers(test_id), json=chat_body("mock-error-500"), timeout=10).status_code == 500
    assert httpx.get(own_proxy.url + "/nowhere/x", timeout=10).status_code == 404
    text = httpx.get(own_proxy.admin_url + "/metrics", timeout=10).text

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)$", text, re.MULTILINE)
        assert match, f"{pattern} not in metrics:\n{text}"
        return float(match.group(1))

    assert value(r'chaperone_proxy_requests_total\{upstream="openai",operation="openai.chat_completions",status_class="2xx",outcome="completed"\}') == 1
    assert value(r'chaperone_proxy_requests_total\{upstream="openai",operation="openai.chat_completions",status_class="5xx",outcome="completed"\}') == 1
    assert value(r'chaperone_proxy_requests_total\{upstream="none",operation="http",status_class="4xx",outcome="rejected"\}') == 1
    assert value(r'chaperone_proxy_audit_events_total\{kind="llm.request"\}') == 2
    assert value(r'chaperone_proxy_request_duration_seconds_count\{upstream="openai",operation="openai.chat_completions"\}') == 2
    assert value(r"chaperone_proxy_active_streams") == 0
    assert httpx.get(own_proxy.admin_url + "/healthz", timeout=5).text == "ok\n"


def test_agent_that_leaves_mid_body_is_recorded_as_client_disconnected(proxy, mock, test_id):
    body = json.dumps(chat_body("gpt-4o")).encode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as agent:
        agent.sendall(
            b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + f"{TEST_ID_HEADER}: {test_id}\r\ncontent-length: {len(body) + 500}\r\n\r\n".encode()
            + body
        )
    # No exchange id reaches an agent that left; find the event by its error and the request size.
    event = proxy.audit.wait_for(
        lambda e: e.get("kind") == "llm.response" and e.get("error", {}).get("type") == "bad_request_body"
        and e["http"]["bytes_in"] == len(body),
        what="the event of the abandoned request",
    )
    assert event["outcome"] == "client_disconnected"
    assert not mock.record.with_test_id(test_id), "nothing may reach the upstream"
