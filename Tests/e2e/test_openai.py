"""OpenAI SDK → chaperone-proxy → mock upstream: chat completions, Responses API, embeddings.

Each test checks that the agent received exactly the bytes the upstream sent (the mock records the
sha256 of every body it sends), that the upstream saw the real key and none of the agent's, and
that the audit events say what was asked and answered.
"""

from __future__ import annotations

import json

from conftest import (
    ANSWER,
    TEST_ID_HEADER,
    assert_common_response,
    assert_upstream_headers,
    exchange_id_of,
    sha256_hex,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

CHAT_MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello, please."},
]

# A conversation that already went through one tool call, so the request carries an assistant
# message with tool_calls and a tool message with tool_call_id.
TOOL_CONVERSATION = [
    {"role": "system", "content": "Use the tools."},
    {"role": "user", "content": "What time is it in UTC?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_prev_1", "type": "function", "function": {"name": "get_time", "arguments": '{"tz":"UTC"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_prev_1", "content": "12:00"},
    {"role": "user", "content": "And the weather in Paris?"},
]


def roles_and_texts(event: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in event["content"]["messages"]]


def sse_data_lines(body: bytes) -> list[str]:
    return [line[len("data: "):] for line in body.decode().split("\n") if line.startswith("data: ")]


# --------------------------------------------------------------------------------------------
# chat completions


def test_chat_non_streaming(proxy, mock, oai, test_id):
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-e2e",
        messages=CHAT_MESSAGES,
        max_completion_tokens=64,
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    assert raw.http_response.status_code == 200

    # The SDK is happy with what came through.
    completion = raw.parse()
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-e2e-2026-01-01"
    assert completion.usage.prompt_tokens == 12 and completion.usage.completion_tokens == 11

    exchange = exchange_id_of(raw.headers)
    record = mock.record.wait_test_id(test_id)
    assert record["path"] == "/v1/chat/completions"
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/chat/completions")

    assert request["kind"] == "llm.request"
    gen = request["gen_ai"]
    assert gen["operation"]["name"] == "chat"
    assert gen["provider"]["name"] == "openai"
    assert gen["request"]["model"] == "gpt-e2e"
    assert gen["request"]["stream"] is False
    assert gen["request"]["max_tokens"] == 64
    assert roles_and_texts(request) == [("system", "You are a terse assistant."), ("user", "Say hello, please.")]

    gen = response["gen_ai"]
    assert gen["request"]["model"] == "gpt-e2e"
    assert gen["response"]["model"] == "gpt-e2e-2026-01-01"
    assert gen["response"]["id"] == "chatcmpl-mock-1"
    assert gen["response"]["finish_reasons"] == ["stop"]
    assert gen["usage"] == {"input_tokens": 12, "output_tokens": 11}
    assert response["content"]["response_text"] == ANSWER
    assert response["content"]["tool_calls"] == []
    assert response["http"]["response_content_type"].startswith("application/json")
    assert "error" not in response


def test_chat_streaming_bytes_and_audit(proxy, mock, oai, test_id):
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-e2e-stream",
        messages=CHAT_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        exchange = exchange_id_of(stream.headers)
        chunks = list(stream.iter_bytes())
    body = b"".join(chunks)
    data = sse_data_lines(body)
    assert data[-1] == "[DONE]"
    text = "".join(
        (json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for d in data[:-1]
    )
    assert text == ANSWER

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/chat/completions")
    assert request["gen_ai"]["request"]["stream"] is True
    assert roles_and_texts(request) == [("system", "You are a terse assistant."), ("user", "Say hello, please.")]
    gen = response["gen_ai"]
    assert gen["request"]["stream"] is True
    assert gen["response"]["model"] == "gpt-e2e-stream-2026-01-01"
    assert gen["response"]["id"] == "chatcmpl-mock-2"
    assert gen["response"]["finish_reasons"] == ["stop"]
    assert gen["usage"] == {"input_tokens": 12, "output_tokens": 11}
    assert response["content"]["response_text"] == ANSWER
    assert response["http"]["response_content_type"].startswith("text/event-stream")


def test_chat_streaming_parsed_by_sdk(proxy, mock, oai, test_id):
    stream = oai.chat.completions.create(
        model="gpt-e2e-stream",
        messages=CHAT_MESSAGES,
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    )
    exchange = exchange_id_of(stream.response.headers)
    pieces, finish = [], None
    for chunk in stream:
        assert chunk.model == "gpt-e2e-stream-2026-01-01"
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len([p for p in pieces if p]) > 1, "the answer should arrive in several pieces"
    assert "".join(pieces) == ANSWER
    assert finish == "stop"

    record = mock.record.wait_test_id(test_id)
    assert record["completed"] is True
    assert_upstream_headers(record, "openai")
    _, response = proxy.audit.wait_exchange(exchange)
    assert response["outcome"] == "completed"
    assert response["content"]["response_text"] == ANSWER
    assert response["http"]["response_sha256"] == record["response_sha256"]
    # Without stream_options.include_usage the stream carries no usage, and none is invented.
    assert "usage" not in response["gen_ai"]


def test_chat_tool_call_non_streaming(proxy, mock, oai, test_id):
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-e2e-tools",
        messages=TOOL_CONVERSATION,
        tools=[WEATHER_TOOL],
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_mock_1", "get_weather", {"city": "Paris"})

    exchange = exchange_id_of(raw.headers)
    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/chat/completions")

    messages = request["content"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user"]
    assert messages[2]["tool_calls"] == [{"id": "call_prev_1", "name": "get_time", "arguments": '{"tz":"UTC"}'}]
    assert messages[3]["tool_call_id"] == "call_prev_1"
    assert messages[3]["content"] == "12:00"
    assert messages[4]["content"] == "And the weather in Paris?"

    assert response["gen_ai"]["response"]["finish_reasons"] == ["tool_calls"]
    assert response["content"]["tool_calls"] == [{"id": "call_mock_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert response["gen_ai"]["usage"] == {"input_tokens": 12, "output_tokens": 11}


def test_chat_tool_call_streaming(proxy, mock, oai, test_id):
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-e2e-tools",
        messages=TOOL_CONVERSATION,
        tools=[WEATHER_TOOL],
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        exchange = exchange_id_of(stream.headers)
        body = b"".join(stream.iter_bytes())
    # The arguments arrive in fragments; put them together as an SDK would.
    arguments = ""
    for d in sse_data_lines(body)[:-1]:
        for choice in json.loads(d)["choices"]:
            for call in choice.get("delta", {}).get("tool_calls") or []:
                arguments += call.get("function", {}).get("arguments") or ""
    assert json.loads(arguments) == {"city": "Paris"}

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/chat/completions")
    assert request["gen_ai"]["request"]["stream"] is True
    assert response["gen_ai"]["response"]["finish_reasons"] == ["tool_calls"]
    assert response["content"]["tool_calls"] == [{"id": "call_mock_2", "name": "get_weather", "arguments": '{"city":"Paris"}'}]
    assert "response_text" not in response["content"]


def test_chat_tool_call_streaming_parsed_by_sdk(proxy, oai, test_id):
    # The SDK's own stream helper accumulates the tool call fragments.
    with oai.chat.completions.stream(
        model="gpt-e2e-tools",
        messages=TOOL_CONVERSATION,
        tools=[WEATHER_TOOL],
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_mock_2", "get_weather", '{"city":"Paris"}')
    assert final.choices[0].finish_reason == "tool_calls"


# --------------------------------------------------------------------------------------------
# Responses API


def test_responses_non_streaming(proxy, mock, oai, test_id):
    raw = oai.responses.with_raw_response.create(
        model="gpt-e2e-resp",
        instructions="Answer in one sentence.",
        input="Say hello via the Responses API.",
        max_output_tokens=80,
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    parsed = raw.parse()
    assert parsed.output_text == ANSWER
    assert parsed.model == "gpt-e2e-resp-2026-01-01"
    assert parsed.usage.input_tokens == 12 and parsed.usage.output_tokens == 11

    exchange = exchange_id_of(raw.headers)
    record = mock.record.wait_test_id(test_id)
    assert record["path"] == "/v1/responses"
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/responses")
    assert request["gen_ai"]["operation"]["name"] == "generate_content"
    assert request["gen_ai"]["request"]["model"] == "gpt-e2e-resp"
    assert request["gen_ai"]["request"]["max_tokens"] == 80
    assert roles_and_texts(request) == [("system", "Answer in one sentence."), ("user", "Say hello via the Responses API.")]
    gen = response["gen_ai"]
    assert gen["operation"]["name"] == "generate_content"
    assert gen["response"]["model"] == "gpt-e2e-resp-2026-01-01"
    assert gen["response"]["id"] == "resp_mock_1"
    assert gen["response"]["finish_reasons"] == ["completed"]
    assert gen["usage"] == {"input_tokens": 12, "output_tokens": 11}
    assert response["content"]["response_text"] == ANSWER


def test_responses_streaming(proxy, mock, oai, test_id):
    with oai.responses.with_streaming_response.create(
        model="gpt-e2e-resp",
        input=[{"role": "user", "content": "Stream a hello."}],
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    ) as stream:
        exchange = exchange_id_of(stream.headers)
        body = b"".join(stream.iter_bytes())
    events = [json.loads(d) for d in sse_data_lines(body)]
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert "".join(e.get("delta", "") for e in events if e["type"] == "response.output_text.delta") == ANSWER

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange)
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/responses")
    assert request["gen_ai"]["request"]["stream"] is True
    assert roles_and_texts(request) == [("user", "Stream a hello.")]
    gen = response["gen_ai"]
    assert gen["response"]["model"] == "gpt-e2e-resp-2026-01-01"
    assert gen["response"]["id"] == "resp_mock_1"
    assert gen["usage"] == {"input_tokens": 12, "output_tokens": 11}
    assert response["content"]["response_text"] == ANSWER


def test_responses_streaming_parsed_by_sdk(proxy, mock, oai, test_id):
    stream = oai.responses.create(
        model="gpt-e2e-resp",
        input="Stream a hello.",
        stream=True,
        extra_headers={TEST_ID_HEADER: test_id},
    )
    exchange = exchange_id_of(stream.response.headers)
    deltas, final = [], None
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            final = event.response
    assert "".join(deltas) == ANSWER
    assert final is not None and final.output_text == ANSWER
    _, response = proxy.audit.wait_exchange(exchange)
    assert response["content"]["response_text"] == ANSWER
    assert response["http"]["response_sha256"] == mock.record.wait_test_id(test_id)["response_sha256"]


def test_responses_function_call(proxy, mock, oai, test_id):
    raw = oai.responses.with_raw_response.create(
        model="gpt-e2e-resp",
        input="Weather in Paris?",
        tools=[{"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}],
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    item = raw.parse().output[0]
    assert (item.type, item.call_id, item.name, json.loads(item.arguments)) == (
        "function_call", "call_mock_3", "get_weather", {"city": "Paris"})

    record = mock.record.wait_test_id(test_id)
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange_id_of(raw.headers))
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/responses")
    assert response["content"]["tool_calls"] == [{"id": "call_mock_3", "name": "get_weather", "arguments": '{"city":"Paris"}'}]


# --------------------------------------------------------------------------------------------
# embeddings


def test_embeddings(proxy, mock, oai, test_id):
    raw = oai.embeddings.with_raw_response.create(
        model="text-embedding-e2e",
        input=["first text to embed", "second text to embed"],
        extra_headers={TEST_ID_HEADER: test_id},
    )
    body = raw.http_response.content
    parsed = raw.parse()
    assert [d.index for d in parsed.data] == [0, 1]
    assert parsed.data[0].embedding == [0.1, 0.2, 0.3]

    record = mock.record.wait_test_id(test_id)
    assert record["path"] == "/v1/embeddings"
    assert_upstream_headers(record, "openai")
    request, response = proxy.audit.wait_exchange(exchange_id_of(raw.headers))
    assert_common_response(request, response, record, body=body, upstream="openai", path="/v1/embeddings")
    assert request["gen_ai"]["operation"]["name"] == "embeddings"
    assert request["gen_ai"]["request"]["model"] == "text-embedding-e2e"
    assert request["content"]["input_count"] == 2
    assert roles_and_texts(request) == [("input", "first text to embed"), ("input", "second text to embed")]
    assert response["gen_ai"]["operation"]["name"] == "embeddings"
    assert response["gen_ai"]["response"]["model"] == "text-embedding-e2e"
    assert response["gen_ai"]["usage"]["input_tokens"] == 5
    assert sha256_hex(body) == response["http"]["response_sha256"]
