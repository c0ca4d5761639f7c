import ChaperoneCore
import Testing

@testable import ChaperoneLLM

/// Feeds `stream` to a fresh accumulator in pieces of `size` bytes.
func accumulate(_ operation: LLMOperation, _ stream: String, pieceSize: Int) -> ResponseSummary {
    var accumulator = operation.makeStreamAccumulator()
    let bytes = Array(stream.utf8)
    var index = 0
    while index < bytes.count {
        let end = min(bytes.count, index + pieceSize)
        accumulator.feed(bytes[index..<end])
        index = end
    }
    return accumulator.summary
}

@Suite("Operation classification")
struct ClassificationTests {
    @Test func classify() {
        #expect(LLMOperation.classify(provider: .openai, method: "POST", path: "/v1/chat/completions") == .openAIChatCompletions)
        #expect(LLMOperation.classify(provider: .azureOpenAI, method: "POST", path: "/openai/deployments/gpt/chat/completions") == .openAIChatCompletions)
        #expect(LLMOperation.classify(provider: .openai, method: "POST", path: "/v1/responses") == .openAIResponses)
        #expect(LLMOperation.classify(provider: .openai, method: "POST", path: "/v1/embeddings/") == .openAIEmbeddings)
        #expect(LLMOperation.classify(provider: .anthropic, method: "POST", path: "/v1/messages") == .anthropicMessages)
        #expect(LLMOperation.classify(provider: .anthropic, method: "POST", path: "/v1/messages/count_tokens") == nil)
        #expect(LLMOperation.classify(provider: .openai, method: "GET", path: "/v1/models") == nil)
        #expect(LLMOperation.classify(provider: .openai, method: "GET", path: "/v1/chat/completions") == nil)
        #expect(LLMOperation.classify(provider: .generic, method: "POST", path: "/v1/chat/completions") == nil)
    }
}

@Suite("OpenAI Chat Completions")
struct OpenAIChatTests {
    @Test("request: model, stream, roles, multi-part content, tool calls and results")
    func request() {
        let body = #"""
            {"model":"gpt-4o","stream":true,"max_completion_tokens":50,"messages":[
              {"role":"system","content":"You are terse."},
              {"role":"user","content":[{"type":"text","text":"Look at"},{"type":"image_url","image_url":{"url":"data:x"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"18C"}]}
            """#
        let summary = LLMOperation.openAIChatCompletions.summarizeRequest(Array(body.utf8))
        #expect(summary.model == "gpt-4o")
        #expect(summary.stream)
        #expect(summary.maxTokens == 50)
        #expect(summary.messages.map(\.role) == ["system", "user", "assistant", "tool"])
        #expect(summary.messages[1].content == "Look at\n[image_url]")
        #expect(summary.messages[2].toolCalls == [.init(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#)])
        #expect(summary.messages[3].toolCallID == "call_1")
        #expect(summary.messages[3].content == "18C")
    }

    @Test("non-streamed response: text, finish reason, usage, tool calls")
    func response() {
        let body = #"""
            {"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,
             "tool_calls":[{"id":"call_9","type":"function","function":{"name":"ls","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}
            """#
        let summary = LLMOperation.openAIChatCompletions.summarizeResponse(Array(body.utf8))
        #expect(summary.id == "chatcmpl-1")
        #expect(summary.model == "gpt-4o-2024-08-06")
        #expect(summary.finishReasons == ["tool_calls"])
        #expect(summary.inputTokens == 10 && summary.outputTokens == 3)
        #expect(summary.toolCalls == [.init(id: "call_9", name: "ls", arguments: "{}")])
    }

    @Test("error body is read as the provider's error")
    func error() {
        let body = #"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
        let summary = LLMOperation.openAIChatCompletions.summarizeResponse(Array(body.utf8))
        #expect(summary.error == .init(type: "requests", message: "Rate limit reached"))
    }

    static let stream = """
        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read_file","arguments":""}}]},"finish_reason":null}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"path\\":"}}]},"finish_reason":null}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"a.txt\\"}"}}]},"finish_reason":null}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

        data: {"id":"c1","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12}}

        data: [DONE]


        """

    @Test("streamed response folds deltas, tool-call pieces and usage, for any piece size", arguments: [1, 2, 3, 7, 64, 100_000])
    func stream(pieceSize: Int) {
        let summary = accumulate(.openAIChatCompletions, Self.stream, pieceSize: pieceSize)
        #expect(summary.text == "Hello")
        #expect(summary.id == "c1")
        #expect(summary.model == "gpt-4o-mini")
        #expect(summary.finishReasons == ["tool_calls"])
        #expect(summary.toolCalls == [.init(id: "call_a", name: "read_file", arguments: #"{"path":"a.txt"}"#)])
        #expect(summary.inputTokens == 7 && summary.outputTokens == 5)
    }
}

@Suite("OpenAI Responses and embeddings")
struct OpenAIResponsesTests {
    @Test("request: instructions, string and item inputs, function call output")
    func request() {
        let body = #"""
            {"model":"gpt-4.1","instructions":"Be brief.","input":[
              {"role":"user","content":[{"type":"input_text","text":"What's in a.txt?"}]},
              {"type":"function_call","call_id":"call_1","name":"read","arguments":"{}"},
              {"type":"function_call_output","call_id":"call_1","output":"hello"}],"stream":false,"max_output_tokens":64}
            """#
        let summary = LLMOperation.openAIResponses.summarizeRequest(Array(body.utf8))
        #expect(summary.model == "gpt-4.1")
        #expect(summary.maxTokens == 64)
        #expect(summary.messages.map(\.role) == ["system", "user", "assistant", "tool"])
        #expect(summary.messages[1].content == "What's in a.txt?")
        #expect(summary.messages[2].toolCalls?.first?.name == "read")
        #expect(summary.messages[3].toolCallID == "call_1" && summary.messages[3].content == "hello")
        let plain = LLMOperation.openAIResponses.summarizeRequest(Array(#"{"model":"m","input":"hi"}"#.utf8))
        #expect(plain.messages == [.init(role: "user", content: "hi")])
    }

    static let stream = """
        event: response.created
        data: {"type":"response.created","response":{"id":"resp_1","model":"gpt-4.1","status":"in_progress","output":[]}}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","delta":"Hi "}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","delta":"there"}

        event: response.completed
        data: {"type":"response.completed","response":{"id":"resp_1","model":"gpt-4.1-2025","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi there"}]},{"type":"function_call","call_id":"call_7","name":"run","arguments":"{\\"x\\":1}"}],"usage":{"input_tokens":9,"output_tokens":2}}}


        """

    @Test("streamed response takes the completed response", arguments: [1, 5, 1000])
    func stream(pieceSize: Int) {
        let summary = accumulate(.openAIResponses, Self.stream, pieceSize: pieceSize)
        #expect(summary.text == "Hi there")
        #expect(summary.id == "resp_1")
        #expect(summary.model == "gpt-4.1-2025")
        #expect(summary.finishReasons == ["completed"])
        #expect(summary.toolCalls == [.init(id: "call_7", name: "run", arguments: #"{"x":1}"#)])
        #expect(summary.inputTokens == 9 && summary.outputTokens == 2)
    }

    @Test("a stream cut before completion keeps the text received so far")
    func cutStream() {
        let end = Self.stream.firstRange(of: "event: response.completed")?.lowerBound ?? Self.stream.endIndex
        let cut = String(Self.stream[..<end])
        let summary = accumulate(.openAIResponses, cut, pieceSize: 4)
        #expect(summary.text == "Hi there")
        #expect(summary.finishReasons.isEmpty)
    }

    @Test("embeddings: inputs counted and recorded, vectors counted")
    func embeddings() {
        let request = LLMOperation.openAIEmbeddings.summarizeRequest(Array(#"{"model":"text-embedding-3-small","input":["a","b"]}"#.utf8))
        #expect(request.inputCount == 2)
        #expect(request.messages.map(\.content) == ["a", "b"])
        let tokens = LLMOperation.openAIEmbeddings.summarizeRequest(Array(#"{"model":"m","input":[1,2,3]}"#.utf8))
        #expect(tokens.inputCount == 1)
        let response = LLMOperation.openAIEmbeddings.summarizeResponse(Array(#"{"model":"m","data":[{"embedding":[0.1]},{"embedding":[0.2]}],"usage":{"prompt_tokens":4}}"#.utf8))
        #expect(response.embeddingCount == 2 && response.inputTokens == 4)
    }
}

@Suite("Anthropic Messages")
struct AnthropicMessagesTests {
    @Test("request: system blocks, tool_use and tool_result")
    func request() {
        let body = #"""
            {"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"You are a coder."}],"messages":[
              {"role":"user","content":"Fix the bug"},
              {"role":"assistant","content":[{"type":"text","text":"Reading."},{"type":"tool_use","id":"toolu_1","name":"read","input":{"path":"a.go"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"package a"}]}]}]}
            """#
        let summary = LLMOperation.anthropicMessages.summarizeRequest(Array(body.utf8))
        #expect(summary.model == "claude-sonnet-4-5")
        #expect(summary.maxTokens == 1024)
        #expect(summary.messages.map(\.role) == ["system", "user", "assistant", "tool"])
        #expect(summary.messages[0].content == "You are a coder.")
        #expect(summary.messages[2].toolCalls == [.init(id: "toolu_1", name: "read", arguments: #"{"path":"a.go"}"#)])
        #expect(summary.messages[3].toolCallID == "toolu_1" && summary.messages[3].content == "package a")
    }

    @Test("non-streamed response and error")
    func response() {
        let body = #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Done."},{"type":"tool_use","id":"toolu_2","name":"bash","input":{"cmd":"ls"}}],"stop_reason":"tool_use","usage":{"input_tokens":20,"output_tokens":8}}"#
        let summary = LLMOperation.anthropicMessages.summarizeResponse(Array(body.utf8))
        #expect(summary.text == "Done.")
        #expect(summary.finishReasons == ["tool_use"])
        #expect(summary.toolCalls == [.init(id: "toolu_2", name: "bash", arguments: #"{"cmd":"ls"}"#)])
        #expect(summary.inputTokens == 20 && summary.outputTokens == 8)
        let error = LLMOperation.anthropicMessages.summarizeResponse(Array(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.utf8))
        #expect(error.error == .init(type: "overloaded_error", message: "Overloaded"))
    }

    static let stream = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_s","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":25,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

        event: ping
        data: {"type":"ping"}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check."}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":0}

        event: content_block_start
        data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_s","name":"get_weather","input":{}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Pa"}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\\"}"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":1}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}

        event: message_stop
        data: {"type":"message_stop"}


        """

    @Test("streamed response: text deltas, tool input pieces, stop reason, usage", arguments: [1, 3, 50, 100_000])
    func stream(pieceSize: Int) {
        let summary = accumulate(.anthropicMessages, Self.stream, pieceSize: pieceSize)
        #expect(summary.id == "msg_s")
        #expect(summary.model == "claude-x")
        #expect(summary.text == "Let me check.")
        #expect(summary.toolCalls == [.init(id: "toolu_s", name: "get_weather", arguments: #"{"city": "Paris"}"#)])
        #expect(summary.finishReasons == ["tool_use"])
        #expect(summary.inputTokens == 25 && summary.outputTokens == 30)
    }

    @Test("garbage bodies yield empty summaries, never a crash")
    func garbage() {
        for operation in LLMOperation.allCases {
            _ = operation.summarizeRequest(Array("not json {".utf8))
            _ = operation.summarizeResponse([0xff, 0x00, 0x7b])
            _ = accumulate(operation, "data: {broken\n\ndata: [DONE]\n\n", pieceSize: 3)
        }
    }
}

@Suite("JSONValue")
struct JSONValueTests {
    @Test("every JSON kind decodes to its own case and serializes back with sorted keys")
    func kinds() throws {
        let text = #"{"s":"x","n":1.5,"i":2,"t":true,"f":false,"z":null,"a":[1,"b",{"c":[]}],"o":{"k":"v"}}"#
        let value = try #require(ProviderJSON.decode(JSONValue.self, from: Array(text.utf8)))
        #expect(value["s"] == .string("x"))
        #expect(value["n"] == .number(1.5))
        #expect(value["i"] == .number(2))
        #expect(value["t"] == .bool(true))
        #expect(value["f"] == .bool(false))
        #expect(value["z"] == .null)
        #expect(value["a"] == .array([.number(1), .string("b"), .object(["c": .array([])])]))
        #expect(value.jsonText == #"{"a":[1,"b",{"c":[]}],"f":false,"i":2,"n":1.5,"o":{"k":"v"},"s":"x","t":true,"z":null}"#)
    }
}
