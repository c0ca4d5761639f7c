"""Errors: the upstream's own (passed through untouched and recorded), and the proxy's (unknown
upstream, unreachable upstream, body too large), which come in the provider's error shape so the
agent's SDK raises its usual exception."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from conftest import (
    ANTHROPIC_AGENT_KEY,
    OPENAI_AGENT_KEY,
    REAL_KEY,
    TEST_ID_HEADER,
    assert_upstream_headers,
    exchange_id_of,
    sha256_hex,
)

MOCK_500 = "The mock upstream failed on purpose."
MOCK_429 = "Rate limit reached (mock)."


def assert_no_upstream_contact(mock, test_id):
    # The mock records an exchange before the proxy can answer it, so absence now is final.
    assert mock.record.with_test_id(test_id) == [], "the request should not have reached the upstream"


# --------------------------------------------------------------------------------------------
# the upstream's errors


@pytest.mark.parametrize(
    "model, exception, status, message, error_type",
    [
        ("mock-error-500", openai.InternalServerError, 500, MOCK_500, "server_error"),
        ("mock-error-429", openai.RateLimitError, 429, MOCK_429, "requests"),
    ],
)
def test_openai_upstream_error(proxy, mock, oai, test_id, model, exception, status, message, error_type):
    with pytest.raises(exception) as raised:
        oai.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "fail please"}],
            extra_headers={TEST_ID_HEADER: test_id},
        )
    error = raised.value
    assert error.status_code == status
    assert message in str(error)
    assert error.body["message"] == message
    body = error.response.content

    record = mock.record.wait_test_id(test_id)
    assert record["status"] == status
    assert_upstream_headers(record, "openai")
    assert sha256_hex(body) == record["response_sha256"]

    request, response = proxy.audit.wait_exchange(exchange_id_of(error.response.headers))
    assert request["gen_ai"]["request"]["model"] == model
    assert response["http"]["status"] == status
    assert response["http"]["response_sha256"] == record["response_sha256"]
    assert response["error"] == {"type": error_type, "message": message}
    # The upstream answered and its whole answer reached the agent.
    assert response["outcome"] in ("completed", "upstream_error")
    assert "x-chaperone-error" not in error.response.headers, "an upstream error is not the proxy's"


@pytest.mark.parametrize(
    "model, exception, status, message, error_type",
    [
        ("mock-error-500", anthropic.InternalServerError, 500, MOCK_500, "api_error"),
        ("mock-error-429", anthropic.RateLimitError, 429, MOCK_429, "rate_limit_error"),
    ],
)
def test_anthropic_upstream_error(proxy, mock, ant, test_id, model, exception, status, message, error_type):
    with pytest.raises(exception) as raised:
        ant.messages.create(
            model=model,
            max_tokens=16,
            messages=[{"role": "user", "content": "fail please"}],
            extra_headers={TEST_ID_HEADER: test_id},
        )
    error = raised.value
    assert error.status_code == status
    assert message in str(error)
    body = error.response.content
    assert json.loads(body)["error"] == {"type": error_type, "message": message}

    record = mock.record.wait_test_id(test_id)
    assert record["status"] == status
    assert_upstream_headers(record, "anthropic")
    assert sha256_hex(body) == record["response_sha256"]

    request, response = proxy.audit.wait_exchange(exchange_id_of(error.response.headers))
    assert request["gen_ai"]["provider"]["name"] == "anthropic"
    assert request["gen_ai"]["request"]["model"] == model
    assert response["http"]["status"] == status
    assert response["http"]["response_sha256"] == record["response_sha256"]
    assert response["error"] == {"type": error_type, "message": message}
    assert response["outcome"] in ("completed", "upstream_error")


# --------------------------------------------------------------------------------------------
# the proxy's errors


def test_unknown_upstream_openai_shape(proxy, mock, test_id):
    reply = httpx.post(
        f"{proxy.url}/nope/v1/chat/completions",
        headers={"authorization": f"Bearer {OPENAI_AGENT_KEY}", TEST_ID_HEADER: test_id},
        json={"model": "gpt-e2e", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["x-chaperone-error"] == "unknown_upstream"
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "unknown_upstream"
    assert error["type"] == "invalid_request_error"
    assert "'nope'" in error["message"]
    assert "openai" in error["message"] and "anthropic" in error["message"], "lists the configured upstreams"
    assert_no_upstream_contact(mock, test_id)

    event = proxy.audit.wait_event(exchange_id_of(reply.headers), "http.egress")
    assert event["outcome"] == "rejected"
    assert event["http"]["status"] == 404
    assert event["http"]["method"] == "POST"
    assert event["error"]["type"] == "unknown_upstream"
    assert "'nope'" in event["error"]["message"]


def test_unknown_upstream_anthropic_shape(proxy, mock, test_id):
    reply = httpx.post(
        f"{proxy.url}/claude/v1/messages",
        headers={"x-api-key": ANTHROPIC_AGENT_KEY, TEST_ID_HEADER: test_id},
        json={"model": "claude-e2e", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 404
    assert reply.headers["x-chaperone-error"] == "unknown_upstream"
    payload = reply.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "not_found_error"
    assert "'claude'" in payload["error"]["message"]
    assert_no_upstream_contact(mock, test_id)
    event = proxy.audit.wait_event(exchange_id_of(reply.headers), "http.egress")
    assert (event["outcome"], event["http"]["status"]) == ("rejected", 404)


def test_unknown_upstream_through_the_sdks(proxy):
    # An agent whose base URL names an upstream that is not configured gets its SDK's usual
    # not-found exception, with a message that says what to fix.
    misconfigured = openai.OpenAI(base_url=f"{proxy.url}/open-ai/v1", api_key=OPENAI_AGENT_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as raised:
        misconfigured.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "hi"}])
    assert "no upstream named 'open-ai'" in str(raised.value)
    assert raised.value.body["code"] == "unknown_upstream"

    misconfigured = anthropic.Anthropic(base_url=f"{proxy.url}/anthropic-x", api_key=ANTHROPIC_AGENT_KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as raised:
        misconfigured.messages.create(model="claude-e2e", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert "no upstream named 'anthropic-x'" in str(raised.value)


def test_unreachable_upstream(proxy, test_id):
    dead = openai.OpenAI(base_url=f"{proxy.url}/dead/v1", api_key=OPENAI_AGENT_KEY, max_retries=0, timeout=30)
    with pytest.raises(openai.APIStatusError) as raised:
        dead.chat.completions.create(
            model="gpt-e2e",
            messages=[{"role": "user", "content": "anyone there?"}],
            extra_headers={TEST_ID_HEADER: test_id},
        )
    error = raised.value
    assert error.status_code == 502
    assert "upstream 'dead'" in str(error)
    assert error.body["code"] == "upstream_unreachable"
    assert error.response.headers["x-chaperone-error"] == "upstream_unreachable"

    request, response = proxy.audit.wait_exchange(exchange_id_of(error.response.headers))
    assert request["http"]["upstream"] == "dead"
    assert request["content"]["messages"] == [{"role": "user", "content": "anyone there?"}]
    assert response["outcome"] == "upstream_error"
    assert response["http"]["status"] == 502
    assert response["http"]["upstream"] == "dead"
    assert response["error"]["type"] == "upstream_unreachable"
    assert "upstream 'dead'" in response["error"]["message"]
    assert response["http"]["bytes_out"] == len(error.response.content)


def test_request_body_too_large(proxy, mock, oai, test_id):
    # The main proxy is configured with limits.max_request_body: 1MiB; send 2 MiB.
    big = "x" * (2 * 1024 * 1024)
    with pytest.raises(openai.APIStatusError) as raised:
        oai.chat.completions.create(
            model="gpt-e2e",
            messages=[{"role": "user", "content": big}],
            extra_headers={TEST_ID_HEADER: test_id},
        )
    error = raised.value
    assert error.status_code == 413
    assert error.response.headers["x-chaperone-error"] == "request_too_large"
    assert error.body["code"] == "request_too_large"
    assert error.body["type"] == "invalid_request_error"
    assert "limits.max_request_body" in error.body["message"]
    assert_no_upstream_contact(mock, test_id)

    event = proxy.audit.wait_event(exchange_id_of(error.response.headers), "llm.response")
    assert event["outcome"] == "rejected"
    assert event["http"]["status"] == 413
    assert event["error"]["type"] == "request_too_large"
    # The prompt was never read, so none of it is in the record.
    assert big not in json.dumps(event)


def test_request_body_too_large_anthropic_shape(proxy, mock, ant, test_id):
    with pytest.raises(anthropic.APIStatusError) as raised:
        ant.messages.create(
            model="claude-e2e",
            max_tokens=8,
            messages=[{"role": "user", "content": "z" * (2 * 1024 * 1024)}],
            extra_headers={TEST_ID_HEADER: test_id},
        )
    error = raised.value
    assert error.status_code == 413
    assert error.response.headers["x-chaperone-error"] == "request_too_large"
    payload = error.response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "request_too_large"
    assert "limits.max_request_body" in payload["error"]["message"]
    assert_no_upstream_contact(mock, test_id)
    event = proxy.audit.wait_event(exchange_id_of(error.response.headers), "llm.response")
    assert (event["outcome"], event["http"]["status"], event["http"]["upstream"]) == ("rejected", 413, "anthropic")


def test_request_body_too_large_without_content_length(proxy, mock, test_id):
    # A chunked body has no declared length: the proxy counts while reading and stops at the limit.
    def chunks():
        yield b'{"model":"gpt-e2e","messages":[{"role":"user","content":"'
        for _ in range(32):
            yield b"y" * 65536
        yield b'"}]}'

    reply = httpx.post(
        f"{proxy.url}/openai/v1/chat/completions",
        headers={"authorization": f"Bearer {OPENAI_AGENT_KEY}", "content-type": "application/json", TEST_ID_HEADER: test_id},
        content=chunks(),
        timeout=10,
    )
    assert reply.status_code == 413
    assert reply.headers["x-chaperone-error"] == "request_too_large"
    assert reply.json()["error"]["code"] == "request_too_large"
    assert_no_upstream_contact(mock, test_id)
    event = proxy.audit.wait_event(exchange_id_of(reply.headers), "llm.response")
    assert (event["outcome"], event["http"]["status"]) == ("rejected", 413)


def test_proxy_keeps_serving_after_errors(proxy, oai):
    completion = oai.chat.completions.create(model="gpt-e2e", messages=[{"role": "user", "content": "still there?"}])
    assert completion.choices[0].message.content
    assert REAL_KEY not in completion.model_dump_json()
