"""Non-LLM traffic, sessions and the headers that cross (or must not cross) the proxy."""

from __future__ import annotations

import httpx

from conftest import (
    ANTHROPIC_AGENT_KEY,
    OPENAI_AGENT_KEY,
    TEST_ID_HEADER,
    assert_upstream_headers,
    exchange_id_of,
    sha256_hex,
)


def test_models_list_is_recorded_as_http_egress(proxy, mock, oai, test_id):
    raw = oai.models.with_raw_response.list(extra_headers={TEST_ID_HEADER: test_id})
    body = raw.http_response.content
    models = raw.parse()
    assert [m.id for m in models.data] == ["mock-model"]

    record = mock.record.wait_test_id(test_id)
    assert (record["method"], record["path"], record["status"]) == ("GET", "/v1/models", 200)
    assert_upstream_headers(record, "openai")
    assert sha256_hex(body) == record["response_sha256"]

    exchange = exchange_id_of(raw.headers)
    event = proxy.audit.wait_event(exchange, "http.egress")
    assert [e["kind"] for e in proxy.audit.for_exchange(exchange)] == ["http.egress"]
    assert event["outcome"] == "completed"
    http = event["http"]
    assert (http["method"], http["upstream"], http["path"], http["status"]) == ("GET", "openai", "/v1/models", 200)
    assert http["response_sha256"] == record["response_sha256"]
    assert http["bytes_out"] == len(body)
    assert http["duration_us"] > 0 and http["ttfb_us"] > 0
    assert "gen_ai" not in event


def test_query_string_is_forwarded_but_not_recorded(proxy, mock, test_id):
    reply = httpx.get(
        f"{proxy.url}/openai/v1/models?limit=5&secret_token=abc123",
        headers={"authorization": f"Bearer {OPENAI_AGENT_KEY}", TEST_ID_HEADER: test_id},
        timeout=10,
    )
    assert reply.status_code == 200
    record = mock.record.wait_test_id(test_id)
    assert record["path"] == "/v1/models?limit=5&secret_token=abc123"
    event = proxy.audit.wait_event(exchange_id_of(reply.headers), "http.egress")
    assert event["http"]["path"] == "/v1/models"
    assert "abc123" not in proxy.audit.path.read_text()


def test_session_header_sets_session_id_and_is_not_forwarded(proxy, mock, oai, ant, test_id):
    headers = {
        TEST_ID_HEADER: test_id,
        "x-chaperone-session": "e2e-session-42",
        "x-chaperone-initiator": "https://ci.example/job/7",
    }
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-e2e", messages=[{"role": "user", "content": "in a session"}], extra_headers=headers
    )
    request, response = proxy.audit.wait_exchange(exchange_id_of(raw.headers))
    for event in (request, response):
        assert event["session_id"] == "e2e-session-42"
        assert event["source"]["initiator"] == "https://ci.example/job/7"
        assert event["source"]["self_reported"] is True

    raw = ant.messages.with_raw_response.create(
        model="claude-e2e", max_tokens=8, messages=[{"role": "user", "content": "same session"}], extra_headers=headers
    )
    _, response = proxy.audit.wait_exchange(exchange_id_of(raw.headers))
    assert response["session_id"] == "e2e-session-42"

    records = mock.record.with_test_id(test_id)
    assert len(records) == 2
    for record in records:
        assert not [name for name in record["headers"] if name.startswith("x-chaperone-")]
    assert_upstream_headers(records[0], "openai")
    assert_upstream_headers(records[1], "anthropic")


def test_session_defaults_to_stream_id(proxy, oai):
    raw = oai.chat.completions.with_raw_response.create(model="gpt-e2e", messages=[{"role": "user", "content": "no session"}])
    request, response = proxy.audit.wait_exchange(exchange_id_of(raw.headers))
    assert request["session_id"] == request["stream_id"]
    assert response["session_id"] == response["stream_id"]
    assert "initiator" not in response["source"]


def test_agent_credentials_never_reach_the_upstream(proxy, mock, test_id):
    # Every header that can carry a key, set by the agent, is dropped; the real key replaces it.
    reply = httpx.post(
        f"{proxy.url}/anthropic/v1/messages",
        headers={
            "x-api-key": ANTHROPIC_AGENT_KEY,
            "authorization": f"Bearer {OPENAI_AGENT_KEY}",
            "api-key": OPENAI_AGENT_KEY,
            "anthropic-version": "2023-06-01",
            TEST_ID_HEADER: test_id,
        },
        json={"model": "claude-e2e", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "anthropic")
    assert "api-key" not in record["headers"]
    assert record["headers"]["anthropic-version"] == "2023-06-01"


def test_upstream_is_asked_for_identity_encoding(proxy, mock, oai, test_id):
    # The SDK asks for gzip; the proxy reads responses to audit them, so it asks the upstream for
    # identity, and the agent still gets a valid answer.
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-e2e",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={TEST_ID_HEADER: test_id, "accept-encoding": "gzip, deflate"},
    )
    assert raw.parse().choices[0].message.content
    record = mock.record.wait_test_id(test_id)
    assert record["headers"].get("accept-encoding") == "identity"
    assert "content-encoding" not in raw.headers
