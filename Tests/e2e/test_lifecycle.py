"""Streams cut by the agent, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import time

import httpx
import openai
import pytest

from conftest import (
    OPENAI_AGENT_KEY,
    TEST_ID_HEADER,
    exchange_id_of,
    poll,
    start_proxy,
)

SLOW_PIECES = 200  # mock-slow streams 200 pieces, 20 ms apart (about 4 s)
SHUTDOWN_GRACE = 15.0


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


def test_client_disconnect_mid_stream(proxy, mock, oai, test_id):
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST",
            f"{proxy.url}/openai/v1/chat/completions",
            headers={"authorization": f"Bearer {OPENAI_AGENT_KEY}", TEST_ID_HEADER: test_id},
            json={"model": "mock-slow", "stream": True, "messages": [{"role": "user", "content": "talk slowly"}]},
        ) as reply:
            assert reply.status_code == 200
            exchange = exchange_id_of(reply.headers)
            received = b""
            for chunk in reply.iter_raw():
                received += chunk
                if received.count(b"data: ") >= 3:
                    break
        # Leaving the block closed the connection with the stream unfinished.
    assert b"[DONE]" not in received

    event = proxy.audit.wait_event(exchange, "llm.response")
    assert event["outcome"] == "client_disconnected"
    assert event["http"]["status"] == 200
    assert 0 < event["http"]["bytes_out"]
    assert event["gen_ai"]["request"]["model"] == "mock-slow"
    # What was seen before the cut is kept.
    assert event["content"]["response_text"].startswith("piece0 piece1 ")
    assert "piece199" not in event["content"]["response_text"]

    # The upstream stream was cancelled too, before its 200 pieces were out (the mock records
    # completed=false only when its client, the proxy, went away mid-stream).
    record = mock.record.wait_test_id(test_id)
    assert record["completed"] is False

    # And the proxy serves the next request as usual.
    completion = oai.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "next"}])
    assert completion.choices[0].finish_reason == "stop"


@pytest.fixture
def draining_proxy(workdir, mock, request):
    instance = start_proxy(
        workdir / f"proxy-{request.node.name}",
        mock,
        timeouts=f"{{ connect: 2s, idle: 10s, total: 60s, shutdown_grace: {int(SHUTDOWN_GRACE)}s }}",
    )
    yield instance
    instance.stop(timeout=30)


def test_sigterm_drains_in_flight_streams(draining_proxy, mock, test_id):
    proxy = draining_proxy
    client = proxy.openai()
    stream = client.chat.completions.create(
        model="mock-slow",
        messages=[{"role": "user", "content": "a long answer, please"}],
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    )
    exchange = exchange_id_of(stream.response.headers)
    chunks = iter(stream)
    first = next(chunks)
    assert first.choices[0].delta.role == "assistant"

    signalled = time.monotonic()
    proxy.proc.send_signal(signal.SIGTERM)

    # Draining: not ready any more, and no new connections accepted...
    poll(lambda: proxy.readyz() == 503, timeout=5, what="/readyz to answer 503 while draining")
    poll(lambda: connection_refused(proxy.port), timeout=5, what="the proxy listener to refuse new connections")
    assert proxy.proc.poll() is None, "the proxy must wait for the stream in flight"

    # ...while the stream in flight runs to its end.
    pieces, finish = [], None
    for chunk in chunks:
        if chunk.choices:
            if chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            finish = chunk.choices[0].finish_reason or finish
    assert len(pieces) == SLOW_PIECES
    assert pieces[0] == "piece0 " and pieces[-1] == f"piece{SLOW_PIECES - 1} "
    assert finish == "stop"

    code = proxy.proc.wait(timeout=SHUTDOWN_GRACE + 5)
    assert code == 0, f"exit code {code}"
    assert time.monotonic() - signalled < SHUTDOWN_GRACE, "exited only when the grace period ran out"

    # Gone: neither the proxy nor the admin listener accepts connections.
    assert connection_refused(proxy.port)
    assert connection_refused(proxy.admin_port)

    # The exchange was recorded as complete, and the trail was flushed before exit.
    record = mock.record.wait_test_id(test_id)
    assert record["completed"] is True
    response = proxy.audit.wait_event(exchange, "llm.response", timeout=1)
    assert response["outcome"] == "completed"
    assert response["content"]["response_text"] == "".join(pieces)
    assert response["http"]["response_sha256"] == record["response_sha256"]
    lines = proxy.audit.path.read_bytes()
    assert lines.endswith(b"\n")
    assert [json.loads(line)["seq"] for line in lines.splitlines()] == list(range(1, len(lines.splitlines()) + 1))
