import Foundation

/// The echo and leak models, which make the mock answer with text the test chose, cut into small
/// deltas: so end-to-end tests can have a provider return a secret split across many events.
///
/// - `mock-echo`: the answer is the last user message's text, in 3-byte deltas;
/// - `mock-leak-N`: the last user message is standard base64; the answer is the text it decodes
///   to, in deltas of N bytes;
/// - `mock-leak-tool-N`: the decoded text becomes the arguments of a call to the request's first
///   tool, the JSON text `{"command":<text>}`, streamed in N-byte pieces of that JSON text.
///
/// A delta never splits a UTF-8 character: it holds at most N bytes, or one character when that
/// character alone is longer.
struct LeakBehaviour: Equatable {
    enum Source: Equatable {
        /// The text as the user sent it.
        case echo
        /// The user's text is base64 of the answer.
        case base64
    }

    var source: Source
    var deltaBytes: Int
    var asToolCall: Bool

    init?(model: String) {
        if model == "mock-echo" {
            self.init(source: .echo, deltaBytes: 3, asToolCall: false)
        } else if let size = Self.size(model, after: "mock-leak-tool-") {
            self.init(source: .base64, deltaBytes: size, asToolCall: true)
        } else if let size = Self.size(model, after: "mock-leak-") {
            self.init(source: .base64, deltaBytes: size, asToolCall: false)
        } else {
            return nil
        }
    }

    init(source: Source, deltaBytes: Int, asToolCall: Bool) {
        self.source = source
        self.deltaBytes = deltaBytes
        self.asToolCall = asToolCall
    }

    private static func size(_ model: String, after prefix: String) -> Int? {
        guard model.hasPrefix(prefix), let size = Int(model.dropFirst(prefix.count)), size > 0 else { return nil }
        return size
    }

    /// The answer for the user's text, or nil when it should be base64 and is not (or does not
    /// decode to UTF-8).
    func answer(to userText: String) -> String? {
        switch self.source {
        case .echo:
            return userText
        case .base64:
            var compact = userText.filter { !$0.isWhitespace }
            compact += String(repeating: "=", count: (4 - compact.utf8.count % 4) % 4)
            guard let data = Data(base64Encoded: compact) else { return nil }
            return String(validating: data, as: UTF8.self)
        }
    }

    /// `text` cut into pieces of at most `maxBytes` UTF-8 bytes, never inside a character (a
    /// character longer than `maxBytes` is a piece of its own).
    static func pieces(of text: String, maxBytes: Int) -> [String] {
        var pieces: [String] = []
        var current = String.UnicodeScalarView()
        var currentBytes = 0
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            if currentBytes > 0, currentBytes + size > maxBytes {
                pieces.append(String(current))
                current = String.UnicodeScalarView()
                currentBytes = 0
            }
            current.append(scalar)
            currentBytes += size
        }
        if currentBytes > 0 { pieces.append(String(current)) }
        return pieces
    }
}

/// The three LLM APIs the leak models answer.
enum LeakAPI {
    case chat, responses, messages
}

extension MockScript {
    /// Long leak streams go out in at most this many groups of whole events (each group still
    /// cut in two mid-way) with at most `leakPauses` pauses, so that a private key cut into
    /// one-byte deltas still streams in a fraction of a second from a debug build.
    private static let leakGroups = 128
    private static let leakPauses = 32

    func leak(_ leak: LeakBehaviour, api: LeakAPI, model: String, request: [String: Any], stream: Bool, tools: [[String: Any]]) -> MockReply {
        let userText = Self.lastUserText(api: api, request: request)
        guard let text = leak.answer(to: userText) else {
            let message = "mock upstream: \(model) wants the last user message to be standard base64 of UTF-8 text"
            return api == .messages
                ? .json(400, ["type": "error", "error": ["type": "invalid_request_error", "message": message]])
                : .json(400, ["error": ["message": message, "type": "invalid_request_error", "param": NSNull(), "code": NSNull()]])
        }
        if leak.asToolCall {
            let tool = Self.toolName(tools) ?? "run_command"
            let arguments = Self.jsonText(["command": text])
            let pieces = LeakBehaviour.pieces(of: arguments, maxBytes: leak.deltaBytes)
            switch api {
            case .chat: return self.chatLeakTool(model: model, tool: tool, arguments: arguments, pieces: pieces, stream: stream, request: request)
            case .responses: return self.responsesLeakTool(model: model, tool: tool, arguments: arguments, pieces: pieces, stream: stream)
            case .messages: return self.messagesLeakTool(model: model, tool: tool, command: text, pieces: pieces, stream: stream)
            }
        }
        let pieces = LeakBehaviour.pieces(of: text, maxBytes: leak.deltaBytes)
        switch api {
        case .chat: return self.chatLeakText(model: model, text: text, pieces: pieces, stream: stream, request: request)
        case .responses: return self.responsesLeakText(model: model, text: text, pieces: pieces, stream: stream)
        case .messages: return self.messagesLeakText(model: model, text: text, pieces: pieces, stream: stream)
        }
    }

    private func leakStream(_ events: [String], model: String) -> MockReply {
        let perGroup = (events.count + Self.leakGroups - 1) / Self.leakGroups
        let groups = stride(from: 0, to: events.count, by: max(1, perGroup)).map {
            events[$0..<min($0 + perGroup, events.count)].joined()
        }
        let pauseEvery = (groups.count + Self.leakPauses - 1) / Self.leakPauses
        return self.eventStream(groups, model: model, pauseEvery: pauseEvery)
    }

    // MARK: the user's text

    /// The text of the last user message (the last message when none is the user's): a string
    /// content, or the text parts of a content list joined without separator.
    static func lastUserText(api: LeakAPI, request: [String: Any]) -> String {
        switch api {
        case .chat, .messages:
            let messages = request["messages"] as? [[String: Any]] ?? []
            let message = messages.last { $0["role"] as? String == "user" } ?? messages.last
            return Self.text(of: message?["content"])
        case .responses:
            if let input = request["input"] as? String { return input }
            let items = request["input"] as? [[String: Any]] ?? []
            guard let item = items.last(where: { $0["role"] as? String == "user" }) ?? items.last else { return "" }
            if let content = item["content"] { return Self.text(of: content) }
            return item["output"] as? String ?? ""  // a function_call_output item
        }
    }

    private static func text(of content: Any?) -> String {
        if let text = content as? String { return text }
        let parts = content as? [[String: Any]] ?? []
        let textTypes: Set<String> = ["text", "input_text", "output_text"]
        return parts.compactMap { part in
            guard textTypes.contains(part["type"] as? String ?? "text") else { return nil }
            return part["text"] as? String
        }.joined()
    }

    // MARK: OpenAI chat completions

    private func chatLeakText(model: String, text: String, pieces: [String], stream: Bool, request: [String: Any]) -> MockReply {
        guard stream else { return self.chatCompletion(model: model, message: ["role": "assistant", "content": text], finish: "stop") }
        let deltas = pieces.map { ["content": $0] as [String: Any] }
        return self.leakStream(self.chatStreamEvents(model: model, deltas: deltas, finish: "stop", request: request), model: model)
    }

    private func chatLeakTool(model: String, tool: String, arguments: String, pieces: [String], stream: Bool, request: [String: Any]) -> MockReply {
        guard stream else {
            let call: [String: Any] = ["id": "call_leak_1", "type": "function", "function": ["name": tool, "arguments": arguments]]
            return self.chatCompletion(model: model, message: ["role": "assistant", "content": NSNull(), "tool_calls": [call]], finish: "tool_calls")
        }
        var deltas: [[String: Any]] = [["tool_calls": [["index": 0, "id": "call_leak_1", "type": "function", "function": ["name": tool, "arguments": ""]]]]]
        for piece in pieces {
            deltas.append(["tool_calls": [["index": 0, "function": ["arguments": piece]]]])
        }
        return self.leakStream(self.chatStreamEvents(model: model, deltas: deltas, finish: "tool_calls", request: request), model: model)
    }

    // MARK: OpenAI Responses API

    private func responsesLeakText(model: String, text: String, pieces: [String], stream: Bool) -> MockReply {
        let part: [String: Any] = ["type": "output_text", "text": text, "annotations": [Any]()]
        let item: [String: Any] = ["type": "message", "id": "msg_leak_1", "status": "completed", "role": "assistant", "content": [part]]
        guard stream else { return .json(200, self.responseEnvelope(model: model, output: [item], status: "completed")) }
        // The full sequence the real API sends, so the SDK's stream helper can follow it.
        var added = item
        added["status"] = "in_progress"
        added["content"] = [Any]()
        var emptyPart = part
        emptyPart["text"] = ""
        let position: [String: Any] = ["item_id": "msg_leak_1", "output_index": 0, "content_index": 0]
        var events: [[String: Any]] = [
            ["type": "response.output_item.added", "output_index": 0, "item": added],
            position.merging(["type": "response.content_part.added", "part": emptyPart]) { $1 },
        ]
        for piece in pieces {
            events.append(position.merging(["type": "response.output_text.delta", "delta": piece, "logprobs": [Any]()]) { $1 })
        }
        events.append(position.merging(["type": "response.output_text.done", "text": text, "logprobs": [Any]()]) { $1 })
        events.append(position.merging(["type": "response.content_part.done", "part": part]) { $1 })
        events.append(["type": "response.output_item.done", "output_index": 0, "item": item])
        return self.responsesLeakStream(model: model, events: events, output: [item])
    }

    private func responsesLeakTool(model: String, tool: String, arguments: String, pieces: [String], stream: Bool) -> MockReply {
        let item: [String: Any] = ["type": "function_call", "id": "fc_leak_1", "call_id": "call_leak_2", "name": tool, "arguments": arguments, "status": "completed"]
        guard stream else { return .json(200, self.responseEnvelope(model: model, output: [item], status: "completed")) }
        var added = item
        added["status"] = "in_progress"
        added["arguments"] = ""
        var events: [[String: Any]] = [["type": "response.output_item.added", "output_index": 0, "item": added]]
        for piece in pieces {
            events.append(["type": "response.function_call_arguments.delta", "item_id": "fc_leak_1", "output_index": 0, "delta": piece])
        }
        events.append(["type": "response.function_call_arguments.done", "item_id": "fc_leak_1", "output_index": 0, "name": tool, "arguments": arguments])
        events.append(["type": "response.output_item.done", "output_index": 0, "item": item])
        return self.responsesLeakStream(model: model, events: events, output: [item])
    }

    /// `response.created` and `response.in_progress`, the item's events, `response.completed`
    /// carrying the whole output; numbered in order.
    private func responsesLeakStream(model: String, events: [[String: Any]], output: [[String: Any]]) -> MockReply {
        let inProgress = self.responseEnvelope(model: model, output: [], status: "in_progress")
        var all: [[String: Any]] = [
            ["type": "response.created", "response": inProgress],
            ["type": "response.in_progress", "response": inProgress],
        ]
        all.append(contentsOf: events)
        all.append(["type": "response.completed", "response": self.responseEnvelope(model: model, output: output, status: "completed")])
        let lines = all.enumerated().map { index, event in
            var event = event
            event["sequence_number"] = index
            return "event: \(event["type"] as? String ?? "")\ndata: \(Self.jsonText(event))\n\n"
        }
        return self.leakStream(lines, model: model)
    }

    // MARK: Anthropic messages

    private func messagesLeakText(model: String, text: String, pieces: [String], stream: Bool) -> MockReply {
        guard stream else { return .json(200, self.messageEnvelope(model: model, content: [["type": "text", "text": text]], stop: "end_turn")) }
        let deltas = pieces.map { ["type": "text_delta", "text": $0] }
        return self.leakStream(self.messagesStreamEvents(model: model, block: ["type": "text", "text": ""], deltas: deltas, stop: "end_turn"), model: model)
    }

    private func messagesLeakTool(model: String, tool: String, command: String, pieces: [String], stream: Bool) -> MockReply {
        guard stream else {
            let block: [String: Any] = ["type": "tool_use", "id": "toolu_leak_1", "name": tool, "input": ["command": command]]
            return .json(200, self.messageEnvelope(model: model, content: [block], stop: "tool_use"))
        }
        let block: [String: Any] = ["type": "tool_use", "id": "toolu_leak_1", "name": tool, "input": [String: Any]()]
        let deltas = pieces.map { ["type": "input_json_delta", "partial_json": $0] }
        return self.leakStream(self.messagesStreamEvents(model: model, block: block, deltas: deltas, stop: "tool_use"), model: model)
    }
}
