import Foundation

/// What the mock answers: a status, headers, and the body as a list of writes, each sent after
/// its delay, so streams arrive in pieces the way a real provider's do.
struct MockReply {
    struct Write {
        var bytes: [UInt8]
        var delayMilliseconds: Int64
    }

    var status: Int
    var contentType: String
    var writes: [Write]
    /// Send `content-length` (non-streamed replies) or chunked encoding (streams).
    var isStream: Bool
    /// Never send a response head (an upstream that accepted the request and went silent).
    var hangBeforeHead = false
    /// Send only this many writes, then go silent without ending the response.
    var stallAfterWrites: Int?

    static func json(_ status: Int, _ object: Any) -> MockReply {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return MockReply(status: status, contentType: "application/json", writes: [.init(bytes: Array(data), delayMilliseconds: 0)], isStream: false)
    }
}

/// Builds replies for the OpenAI (chat completions, responses, embeddings, models) and Anthropic
/// (messages) APIs, streamed and not. Behaviour is chosen by the request:
/// - model `mock-error-500` / `mock-error-429`: the provider's error shape with that status;
/// - model `mock-slow`: a long stream (200 pieces, 20 ms apart) for disconnect and shutdown tests;
/// - model `mock-hang`: no answer at all; `mock-stall`: two events, then silence (timeout tests);
/// - model `mock-bulk`: a 64 MiB stream sent as fast as the reader takes it (backpressure tests);
/// - model `mock-echo`: the answer is the text of the last user message, in 3-byte deltas;
/// - model `mock-leak-N` (e.g. `mock-leak-1`, `mock-leak-17`): the last user message is standard
///   base64; the answer is the text it decodes to, streamed in deltas of N bytes (so that a
///   secret in it reaches the proxy split across many events);
/// - model `mock-leak-tool-N`: the same decoded text becomes the arguments of a call to the first
///   tool of the request, `{"command":<text>}`, streamed in N-byte pieces of that JSON text;
/// - a request with `tools`: the model calls the first tool with `{"city":"Paris"}`;
/// - otherwise the answer is "Hello from the mock upstream. This answer arrived in pieces."
///
/// The echo and leak models work for chat completions, the Responses API and Anthropic messages,
/// streamed and not; their deltas never split a UTF-8 character (see `MockScript+Leak.swift`).
struct MockScript: Sendable {
    let chunkDelay: Int64
    /// Replies are a pure function of the request, so the last few are kept: a benchmark that
    /// sends the same request over and over measures the proxies, not the mock's JSON work.
    private let memo = ReplyMemo()
    static let answer = "Hello from the mock upstream. This answer arrived in pieces."

    func reply(method: String, path: String, body: [UInt8]) -> MockReply {
        let key = ReplyMemo.Key(method: method, path: path, body: body)
        if let reply = self.memo[key] { return reply }
        let reply = self.compute(method: method, path: path, body: body)
        self.memo[key] = reply
        return reply
    }

    private func compute(method: String, path: String, body: [UInt8]) -> MockReply {
        let request = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        let model = request["model"] as? String ?? "mock-model"
        let stream = request["stream"] as? Bool ?? false
        let tools = (request["tools"] as? [[String: Any]]) ?? []
        let pathOnly = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        switch (method, pathOnly) {
        case ("POST", "/v1/chat/completions"):
            if let error = self.openAIError(model: model) { return error }
            if let leak = LeakBehaviour(model: model) { return self.leak(leak, api: .chat, model: model, request: request, stream: stream, tools: tools) }
            if let special = self.chatSpecial(model: model, request: request, tools: tools) { return special }
            return stream ? self.chatStream(model: model, tools: tools, request: request) : self.chat(model: model, tools: tools)
        case ("POST", "/v1/responses"):
            if let error = self.openAIError(model: model) { return error }
            if let leak = LeakBehaviour(model: model) { return self.leak(leak, api: .responses, model: model, request: request, stream: stream, tools: tools) }
            return stream ? self.responsesStream(model: model, tools: tools) : .json(200, self.responseObject(model: model, tools: tools))
        case ("POST", "/v1/embeddings"):
            if let error = self.openAIError(model: model) { return error }
            return self.embeddings(model: model, input: request["input"])
        case ("POST", "/v1/messages"):
            if let error = self.anthropicError(model: model) { return error }
            if let leak = LeakBehaviour(model: model) { return self.leak(leak, api: .messages, model: model, request: request, stream: stream, tools: tools) }
            return stream ? self.messagesStream(model: model, tools: tools) : .json(200, self.message(model: model, tools: tools))
        case ("GET", "/v1/models"):
            return .json(200, ["object": "list", "data": [["id": "mock-model", "object": "model", "owned_by": "chaperone"]]])
        default:
            return .json(404, ["error": ["message": "mock upstream: no route for \(method) \(pathOnly)", "type": "invalid_request_error", "param": NSNull(), "code": "not_found"]])
        }
    }

    // MARK: errors

    private func openAIError(model: String) -> MockReply? {
        switch model {
        case "mock-error-500":
            return .json(500, ["error": ["message": "The mock upstream failed on purpose.", "type": "server_error", "param": NSNull(), "code": NSNull()]])
        case "mock-error-429":
            return .json(429, ["error": ["message": "Rate limit reached (mock).", "type": "requests", "param": NSNull(), "code": "rate_limit_exceeded"]])
        default: return nil
        }
    }

    private func anthropicError(model: String) -> MockReply? {
        switch model {
        case "mock-error-500":
            return .json(500, ["type": "error", "error": ["type": "api_error", "message": "The mock upstream failed on purpose."]])
        case "mock-error-429":
            return .json(429, ["type": "error", "error": ["type": "rate_limit_error", "message": "Rate limit reached (mock)."]])
        default: return nil
        }
    }

    // MARK: OpenAI chat completions

    private func chatSpecial(model: String, request: [String: Any], tools: [[String: Any]]) -> MockReply? {
        switch model {
        case "mock-hang":
            var reply = MockReply.json(200, [:])
            reply.hangBeforeHead = true
            return reply
        case "mock-stall":
            var reply = self.chatStream(model: model, tools: tools, request: request)
            reply.stallAfterWrites = 4
            return reply
        case "mock-bulk":
            let filler = String(repeating: "x", count: 64 * 1024 - 200)
            let event = "data: {\"choices\":[{\"delta\":{\"content\":\"\(filler)\"},\"index\":0}],\"id\":\"bulk\",\"model\":\"mock-bulk\"}\n\n"
            let bytes = Array(event.utf8)
            var writes = [MockReply.Write](repeating: .init(bytes: bytes, delayMilliseconds: 0), count: 1024)
            writes.append(.init(bytes: Array("data: [DONE]\n\n".utf8), delayMilliseconds: 0))
            return MockReply(status: 200, contentType: "text/event-stream", writes: writes, isStream: true)
        default:
            return nil
        }
    }

    private func pieces(model: String) -> [String] {
        if model == "mock-slow" { return (0..<200).map { "piece\($0) " } }
        var words: [String] = []
        for word in Self.answer.split(separator: " ", omittingEmptySubsequences: false) {
            words.append(words.isEmpty ? String(word) : " " + word)
        }
        return words
    }

    private func delay(model: String) -> Int64 { model == "mock-slow" ? 20 : self.chunkDelay }

    private func chat(model: String, tools: [[String: Any]]) -> MockReply {
        var message: [String: Any] = ["role": "assistant", "content": Self.answer]
        var finish = "stop"
        if let tool = Self.toolName(tools) {
            message = ["role": "assistant", "content": NSNull(), "tool_calls": [
                ["id": "call_mock_1", "type": "function", "function": ["name": tool, "arguments": #"{"city":"Paris"}"#]],
            ]]
            finish = "tool_calls"
        }
        return self.chatCompletion(model: model, message: message, finish: finish)
    }

    /// A non-streamed chat completion with one choice.
    func chatCompletion(model: String, message: [String: Any], finish: String) -> MockReply {
        .json(200, [
            "id": "chatcmpl-mock-1", "object": "chat.completion", "created": 1_700_000_000, "model": "\(model)-2026-01-01",
            "choices": [["index": 0, "message": message, "finish_reason": finish, "logprobs": NSNull()]],
            "usage": ["prompt_tokens": 12, "completion_tokens": 11, "total_tokens": 23],
        ])
    }

    private func chatStream(model: String, tools: [[String: Any]], request: [String: Any]) -> MockReply {
        var deltas: [[String: Any]] = []
        var finish = "stop"
        if let tool = Self.toolName(tools) {
            deltas.append(["tool_calls": [["index": 0, "id": "call_mock_2", "type": "function", "function": ["name": tool, "arguments": ""]]]])
            for piece in [#"{"ci"#, #"ty":"Pa"#, #"ris"}"#] {
                deltas.append(["tool_calls": [["index": 0, "function": ["arguments": piece]]]])
            }
            finish = "tool_calls"
        } else {
            for piece in self.pieces(model: model) { deltas.append(["content": piece]) }
        }
        return self.eventStream(self.chatStreamEvents(model: model, deltas: deltas, finish: finish, request: request), model: model)
    }

    /// The `data:` lines of a streamed chat completion: the role, each delta, the finish reason,
    /// usage when the request asked for it, and `[DONE]`.
    func chatStreamEvents(model: String, deltas: [[String: Any]], finish: String, request: [String: Any]) -> [String] {
        let base: [String: Any] = ["id": "chatcmpl-mock-2", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "\(model)-2026-01-01"]
        func chunk(_ delta: [String: Any], finish: String? = nil) -> [String: Any] {
            var object = base
            object["choices"] = [["index": 0, "delta": delta, "finish_reason": finish.map { $0 as Any } ?? NSNull()]]
            return object
        }
        var events: [Any] = [chunk(["role": "assistant", "content": ""])]
        events.append(contentsOf: deltas.map { chunk($0) })
        events.append(chunk([:], finish: finish))
        if let options = request["stream_options"] as? [String: Any], options["include_usage"] as? Bool == true {
            var usage = base
            usage["choices"] = [Any]()
            usage["usage"] = ["prompt_tokens": 12, "completion_tokens": 11, "total_tokens": 23]
            events.append(usage)
        }
        var lines = events.map { "data: \(Self.jsonText($0))\n\n" }
        lines.append("data: [DONE]\n\n")
        return lines
    }

    // MARK: OpenAI responses

    private func responseObject(model: String, tools: [[String: Any]], status: String = "completed") -> [String: Any] {
        var output: [[String: Any]] = [[
            "type": "message", "id": "msg_mock_1", "status": "completed", "role": "assistant",
            "content": [["type": "output_text", "text": Self.answer, "annotations": [Any]()]],
        ]]
        if let tool = Self.toolName(tools) {
            output = [["type": "function_call", "id": "fc_mock_1", "call_id": "call_mock_3", "name": tool, "arguments": #"{"city":"Paris"}"#, "status": "completed"]]
        }
        return self.responseEnvelope(model: model, output: output, status: status)
    }

    /// A Responses API `response` object around these output items.
    func responseEnvelope(model: String, output: [[String: Any]], status: String) -> [String: Any] {
        [
            "id": "resp_mock_1", "object": "response", "created_at": 1_700_000_000, "status": status, "model": "\(model)-2026-01-01",
            "output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [Any](),
            "usage": ["input_tokens": 12, "output_tokens": 11, "total_tokens": 23,
                      "input_tokens_details": ["cached_tokens": 0], "output_tokens_details": ["reasoning_tokens": 0]],
        ]
    }

    private func responsesStream(model: String, tools: [[String: Any]]) -> MockReply {
        var inProgress = self.responseObject(model: model, tools: tools, status: "in_progress")
        inProgress["output"] = [Any]()
        var events: [(String, [String: Any])] = [
            ("response.created", ["type": "response.created", "sequence_number": 0, "response": inProgress]),
        ]
        if let tool = Self.toolName(tools) {
            let item: [String: Any] = ["type": "function_call", "id": "fc_mock_1", "call_id": "call_mock_3", "name": tool, "arguments": #"{"city":"Paris"}"#, "status": "completed"]
            events.append(("response.output_item.done", ["type": "response.output_item.done", "sequence_number": 1, "output_index": 0, "item": item]))
        } else {
            for (index, piece) in self.pieces(model: model).enumerated() {
                events.append(("response.output_text.delta", [
                    "type": "response.output_text.delta", "sequence_number": index + 1, "item_id": "msg_mock_1",
                    "output_index": 0, "content_index": 0, "delta": piece,
                ]))
            }
        }
        events.append(("response.completed", ["type": "response.completed", "sequence_number": events.count, "response": self.responseObject(model: model, tools: tools)]))
        return self.eventStream(events.map { "event: \($0.0)\ndata: \(Self.jsonText($0.1))\n\n" }, model: model)
    }

    // MARK: embeddings

    private func embeddings(model: String, input: Any?) -> MockReply {
        let count = (input as? [Any])?.count ?? 1
        let data = (0..<count).map { index in ["object": "embedding", "index": index, "embedding": [0.1, 0.2, 0.3]] as [String: Any] }
        return .json(200, ["object": "list", "data": data, "model": model, "usage": ["prompt_tokens": 5, "total_tokens": 5]])
    }

    // MARK: Anthropic messages

    private func message(model: String, tools: [[String: Any]]) -> [String: Any] {
        var content: [[String: Any]] = [["type": "text", "text": Self.answer]]
        var stop = "end_turn"
        if let tool = Self.toolName(tools) {
            content = [["type": "tool_use", "id": "toolu_mock_1", "name": tool, "input": ["city": "Paris"]]]
            stop = "tool_use"
        }
        return self.messageEnvelope(model: model, content: content, stop: stop)
    }

    /// An Anthropic `message` object with these content blocks.
    func messageEnvelope(model: String, content: [[String: Any]], stop: String) -> [String: Any] {
        [
            "id": "msg_mock_1", "type": "message", "role": "assistant", "model": "\(model)-20260101", "content": content,
            "stop_reason": stop, "stop_sequence": NSNull(), "usage": ["input_tokens": 12, "output_tokens": 11],
        ]
    }

    private func messagesStream(model: String, tools: [[String: Any]]) -> MockReply {
        if let tool = Self.toolName(tools) {
            let block: [String: Any] = ["type": "tool_use", "id": "toolu_mock_2", "name": tool, "input": [String: Any]()]
            let deltas = [#"{"ci"#, #"ty": "Pa"#, #"ris"}"#].map { ["type": "input_json_delta", "partial_json": $0] }
            return self.eventStream(self.messagesStreamEvents(model: model, block: block, deltas: deltas, stop: "tool_use"), model: model)
        }
        let deltas = self.pieces(model: model).map { ["type": "text_delta", "text": $0] }
        return self.eventStream(self.messagesStreamEvents(model: model, block: ["type": "text", "text": ""], deltas: deltas, stop: "end_turn"), model: model)
    }

    /// The events of a streamed Anthropic message with one content block: its start, its deltas
    /// (a ping first for a text block, as the real API sends), its stop, and the message's end.
    func messagesStreamEvents(model: String, block: [String: Any], deltas: [[String: Any]], stop: String) -> [String] {
        var start = self.messageEnvelope(model: model, content: [], stop: stop)
        start["stop_reason"] = NSNull()
        start["usage"] = ["input_tokens": 12, "output_tokens": 1]
        var events: [(String, [String: Any])] = [("message_start", ["type": "message_start", "message": start])]
        events.append(("content_block_start", ["type": "content_block_start", "index": 0, "content_block": block]))
        if block["type"] as? String == "text" { events.append(("ping", ["type": "ping"])) }
        for delta in deltas {
            events.append(("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": delta]))
        }
        events.append(("content_block_stop", ["type": "content_block_stop", "index": 0]))
        events.append(("message_delta", ["type": "message_delta", "delta": ["stop_reason": stop, "stop_sequence": NSNull()], "usage": ["output_tokens": 11]]))
        events.append(("message_stop", ["type": "message_stop"]))
        return events.map { "event: \($0.0)\ndata: \(Self.jsonText($0.1))\n\n" }
    }

    // MARK: helpers

    /// Each event is sent in two writes split mid-event, so the proxy sees events cut at
    /// arbitrary points, as it does on real networks. The chunk delay comes before every
    /// `pauseEvery`-th event (long leak streams pause less often, to stay fast).
    func eventStream(_ events: [String], model: String, pauseEvery: Int = 1) -> MockReply {
        var writes: [MockReply.Write] = []
        for (index, event) in events.enumerated() {
            let bytes = Array(event.utf8)
            let cut = bytes.count / 2
            let delay = index % max(1, pauseEvery) == 0 ? self.delay(model: model) : 0
            writes.append(.init(bytes: Array(bytes[..<cut]), delayMilliseconds: delay))
            writes.append(.init(bytes: Array(bytes[cut...]), delayMilliseconds: 0))
        }
        return MockReply(status: 200, contentType: "text/event-stream; charset=utf-8", writes: writes, isStream: true)
    }

    static func toolName(_ tools: [[String: Any]]) -> String? {
        guard let tool = tools.first else { return nil }
        if let function = tool["function"] as? [String: Any], let name = function["name"] as? String { return name }
        return tool["name"] as? String
    }

    static func jsonText(_ object: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// A small bounded cache of replies by request.
final class ReplyMemo: @unchecked Sendable {
    struct Key: Hashable {
        var method: String
        var path: String
        var body: [UInt8]
    }

    private let lock = NSLock()
    private var replies: [Key: MockReply] = [:]

    subscript(key: Key) -> MockReply? {
        get { self.lock.withLock { self.replies[key] } }
        set {
            guard key.body.count <= 64 * 1024 else { return }
            self.lock.withLock {
                if self.replies.count >= 64 { self.replies.removeAll(keepingCapacity: true) }
                self.replies[key] = newValue
            }
        }
    }
}
