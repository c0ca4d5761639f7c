"""Anthropic SDK → chaperone-proxy → mock upstream: the Messages API, streamed and not, with and
without tool use."""

from __future__ import annotations

import json

from conftest import (
    ANSWER,
    TEST_ID_HEADER,
    assert_common_response,
    assert_upstream_headers,
    exchange_id_of,
)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

SYSTEM = "You are a terse assistant."
MESSAGES = [{"role": "user", "content": "Say hello, please."}]

# A conversation that already went through one tool use: an assistant turn with a tool_use block
# and a user turn with its tool_result.
TOOL_CONVERSATION = [
    {"role": "user", "content": "What time is it in UTC?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_prev_1", "name": "get_time", "input": {"tz": "UTC"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_prev_1", "content": "12:00"},
            {"type": "text", "text": "And the weather in Paris?"},
        ],
    },
]


def sse_events(body: bytes) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in body.decode().split("\n") if line.startswith("data: ")]


def test_messages_non_streaming(proxy, mock, ant, test_id):
    raw = ant.messages.with_raw_response.create(
        model="claude-e2e",
        max_tokens=128,
        system=SYSTEM,
        messages=MESSAGES,
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    assert raw.http_response.status_code == 200

    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == ANSWER
    assert message.model == "claude-e2e-20260101"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 11)

    exchange = exchange_id_of(raw.headers)
    record = mock.record.wait_test_id(test_id)
    assert record["path"] == "/v1/messages"
    assert_upstream_headers(record, "anthropic")
    assert record["headers"].get("anthropic-version"), "the SDK's anthropic-version header should pass through"
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="anthropic", path="/v1/messages")

    gen = request["gen_ai"]
    assert gen["operation"]["name"] == "chat"
    assert gen["provider"]["name"] == "anthropic"
    assert gen["request"]["model"] == "claude-e2e"
    assert gen["request"]["stream"] is False
    assert gen["request"]["max_tokens"] == 128
    assert [(m["role"], m["content"]) for m in request["content"]["messages"]] == [
        ("system", SYSTEM), ("user", "Say hello, please.")]

    gen = response["gen_ai"]
    assert gen["provider"]["name"] == "anthropic"
    assert gen["response"]["model"] == "claude-e2e-20260101"
    assert gen["response"]["id"] == "msg_mock_1"
    assert gen["response"]["finish_reasons"] == ["end_turn"]
    assert gen["usage"] == {"input_tokens": 12, "output_tokens": 11}
    assert response["content"]["response_text"] == ANSWER
    assert response["content"]["tool_calls"] == []


def test_messages_streaming_bytes_and_audit(proxy, mock, ant, test_id):
    with ant.messages.with_streaming_response.create(
        model="claude-e2e",
        max_tokens=128,
        system=SYSTEM,
        messages=MESSAGES,
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        exchange = exchange_id_of(stream.headers)
        body = b"".join(stream.iter_bytes())
    events = sse_events(body)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta") == ANSWER

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "anthropic")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="anthropic", path="/v1/messages")
    assert request["gen_ai"]["request"]["stream"] is True
    assert [m["role"] for m in request["content"]["messages"]] == ["system", "user"]
    gen = response["gen_ai"]
    assert gen["response"]["model"] == "claude-e2e-20260101"
    assert gen["response"]["id"] == "msg_mock_1"
    assert gen["response"]["finish_reasons"] == ["end_turn"]
    assert gen["usage"] == {"input_tokens": 12, "output_tokens": 11}
    assert response["content"]["response_text"] == ANSWER


def test_messages_streaming_parsed_by_sdk(proxy, mock, ant, test_id):
    with ant.messages.stream(
        model="claude-e2e",
        max_tokens=128,
        system=SYSTEM,
        messages=MESSAGES,
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        exchange = exchange_id_of(stream.response.headers)
    assert text == ANSWER
    assert final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 11

    record = mock.record.wait_test_id(test_id)
    _, response = proxy.audit.wait_exchange(exchange)
    assert response["content"]["response_text"] == ANSWER
    assert response["http"]["response_sha256"] == record["response_sha256"]


def test_tool_use_non_streaming(proxy, mock, ant, test_id):
    raw = ant.messages.with_raw_response.create(
        model="claude-e2e-tools",
        max_tokens=128,
        system="Use the tools.",
        messages=TOOL_CONVERSATION,
        tools=[WEATHER_TOOL],
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    message = raw.parse()
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert (block.type, block.id, block.name, block.input) == ("tool_use", "toolu_mock_1", "get_weather", {"city": "Paris"})

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "anthropic")
    request, response = proxy.audit.wait_exchange(exchange_id_of(raw.headers))
    assert_common_response(request, response, record, body=body, upstream="anthropic", path="/v1/messages")

    messages = request["content"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert messages[0]["content"] == "Use the tools."
    assert messages[2]["content"] == "Let me check."
    [previous] = messages[2]["tool_calls"]
    assert (previous["id"], previous["name"], json.loads(previous["arguments"])) == ("toolu_prev_1", "get_time", {"tz": "UTC"})
    assert (messages[3]["tool_call_id"], messages[3]["content"]) == ("toolu_prev_1", "12:00")
    assert messages[4]["content"] == "And the weather in Paris?"

    assert response["gen_ai"]["response"]["finish_reasons"] == ["tool_use"]
    [call] = response["content"]["tool_calls"]
    assert (call["id"], call["name"], json.loads(call["arguments"])) == ("toolu_mock_1", "get_weather", {"city": "Paris"})
    assert response["gen_ai"]["usage"] == {"input_tokens": 12, "output_tokens": 11}


def test_tool_use_streaming(proxy, mock, ant, test_id):
    with ant.messages.with_streaming_response.create(
        model="claude-e2e-tools",
        max_tokens=128,
        messages=TOOL_CONVERSATION,
        tools=[WEATHER_TOOL],
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        exchange = exchange_id_of(stream.headers)
        body = b"".join(stream.iter_bytes())
    partial = "".join(
        e["delta"].get("partial_json", "") for e in sse_events(body) if e["type"] == "content_block_delta"
    )
    assert json.loads(partial) == {"city": "Paris"}

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "anthropic")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="anthropic", path="/v1/messages")
    assert request["gen_ai"]["request"]["stream"] is True
    assert response["gen_ai"]["response"]["finish_reasons"] == ["tool_use"]
    [call] = response["content"]["tool_calls"]
    assert (call["id"], call["name"], json.loads(call["arguments"])) == ("toolu_mock_2", "get_weather", {"city": "Paris"})
    assert "response_text" not in response["content"]


def test_tool_use_streaming_parsed_by_sdk(proxy, ant, test_id):
    with ant.messages.stream(
        model="claude-e2e-tools",
        max_tokens=128,
        messages=TOOL_CONVERSATION,
        tools=[WEATHER_TOOL],
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert (block.type, block.id, block.name, block.input) == ("tool_use", "toolu_mock_2", "get_weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use"
