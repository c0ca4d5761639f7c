import ChaperoneCore

/// Anthropic Messages API (`POST /v1/messages`).
enum AnthropicMessages {
    struct Request: Decodable {
        var model: String?
        var system: JSONValue?
        var messages: [Message]?
        var maxTokens: Int?
        var stream: Bool?
        enum CodingKeys: String, CodingKey {
            case model, system, messages, stream
            case maxTokens = "max_tokens"
        }
    }

    struct Message: Decodable {
        var role: String?
        var content: JSONValue?
    }

    struct Response: Decodable {
        var id: String?
        var type: String?
        var model: String?
        var content: [JSONValue]?
        var stopReason: String?
        var usage: TokenUsage?
        var error: ErrorBody?
        enum CodingKeys: String, CodingKey {
            case id, type, model, content, usage, error
            case stopReason = "stop_reason"
        }
    }

    /// `{"type": "error", "error": {"type": …, "message": …}}`
    struct ErrorBody: Decodable {
        var type: String?
        var message: String?
        var info: AuditEvent.ErrorInfo { .init(type: self.type ?? "error", message: self.message ?? "") }
    }

    struct StreamEvent: Decodable {
        var type: String?
        var message: Response?
        var index: Int?
        var contentBlock: JSONValue?
        var delta: Delta?
        var usage: TokenUsage?
        var error: ErrorBody?
        enum CodingKeys: String, CodingKey {
            case type, message, index, delta, usage, error
            case contentBlock = "content_block"
        }
        struct Delta: Decodable {
            var type: String?
            var text: String?
            var partialJSON: String?
            var stopReason: String?
            enum CodingKeys: String, CodingKey {
                case type, text
                case partialJSON = "partial_json"
                case stopReason = "stop_reason"
            }
        }
    }

    static func summarizeRequest(_ body: [UInt8]) -> RequestSummary {
        guard let request = ProviderJSON.decode(Request.self, from: body) else { return RequestSummary() }
        var messages: [AuditEvent.Message] = []
        if let system = request.system {
            messages.append(.init(role: "system", content: Self.text(of: system)))
        }
        for message in request.messages ?? [] {
            let role = message.role ?? "user"
            // Tool results travel inside user turns; record them as `tool` messages.
            if case .array(let blocks) = message.content {
                var text: [String] = []
                var calls: [AuditEvent.ToolCall] = []
                for block in blocks {
                    switch block["type"]?.stringValue {
                    case "tool_result":
                        messages.append(.init(
                            role: "tool",
                            content: Self.text(of: block["content"] ?? .null),
                            toolCallID: block["tool_use_id"]?.stringValue
                        ))
                    case "tool_use":
                        calls.append(Self.toolCall(from: block))
                    default:
                        text.append(Self.blockText(block))
                    }
                }
                if !text.isEmpty || !calls.isEmpty {
                    messages.append(.init(role: role, content: text.joined(separator: "\n"), toolCalls: calls.isEmpty ? nil : calls))
                }
            } else {
                messages.append(.init(role: role, content: Self.text(of: message.content ?? .null)))
            }
        }
        return RequestSummary(model: request.model, stream: request.stream ?? false, maxTokens: request.maxTokens, messages: messages)
    }

    static func summarizeResponse(_ body: [UInt8]) -> ResponseSummary {
        var summary = ResponseSummary()
        guard let response = ProviderJSON.decode(Response.self, from: body) else { return summary }
        if response.type == "error" || response.error != nil {
            summary.error = response.error?.info ?? .init(type: "error", message: "")
            return summary
        }
        summary.id = response.id
        summary.model = response.model
        summary.inputTokens = response.usage?.inputTokens
        summary.outputTokens = response.usage?.outputTokens
        if let reason = response.stopReason { summary.finishReasons = [reason] }
        for block in response.content ?? [] {
            switch block["type"]?.stringValue {
            case "text": summary.text += block["text"]?.stringValue ?? ""
            case "tool_use": summary.toolCalls.append(Self.toolCall(from: block))
            default: break
            }
        }
        return summary
    }

    static func toolCall(from block: JSONValue) -> AuditEvent.ToolCall {
        .init(id: block["id"]?.stringValue, name: block["name"]?.stringValue ?? "", arguments: block["input"]?.jsonText ?? "{}")
    }

    static func text(of content: JSONValue) -> String {
        switch content {
        case .string(let text): text
        case .array(let blocks): blocks.map(Self.blockText).joined(separator: "\n")
        default: ""
        }
    }

    static func blockText(_ block: JSONValue) -> String {
        if case .string(let text) = block { return text }
        if let text = block["text"]?.stringValue { return text }
        return "[\(block["type"]?.stringValue ?? "block")]"
    }

    /// Follows message_start → content_block_* → message_delta → message_stop. Tool-use input
    /// arrives as `input_json_delta` pieces joined per content block.
    struct StreamState: Sendable {
        private(set) var summary = ResponseSummary()
        private var blockKinds: [Int: String] = [:]
        private var toolSlots: [Int: Int] = [:]

        mutating func consume(_ event: SSEEvent) {
            guard let payload = ProviderJSON.decode(StreamEvent.self, from: event.data) else { return }
            switch payload.type ?? event.type {
            case "message_start":
                self.summary.id = payload.message?.id
                self.summary.model = payload.message?.model
                self.summary.inputTokens = payload.message?.usage?.inputTokens
                self.summary.outputTokens = payload.message?.usage?.outputTokens
            case "content_block_start":
                let index = payload.index ?? 0
                let block = payload.contentBlock ?? .null
                let kind = block["type"]?.stringValue ?? ""
                self.blockKinds[index] = kind
                if kind == "tool_use" {
                    self.toolSlots[index] = self.summary.toolCalls.count
                    // `input` starts as {} and is then streamed as partial JSON.
                    self.summary.toolCalls.append(.init(id: block["id"]?.stringValue, name: block["name"]?.stringValue ?? "", arguments: ""))
                } else if kind == "text" {
                    self.summary.text += block["text"]?.stringValue ?? ""
                }
            case "content_block_delta":
                let index = payload.index ?? 0
                switch payload.delta?.type {
                case "text_delta": self.summary.text += payload.delta?.text ?? ""
                case "input_json_delta":
                    if let slot = self.toolSlots[index] {
                        self.summary.toolCalls[slot].arguments += payload.delta?.partialJSON ?? ""
                    }
                default: break
                }
            case "content_block_stop":
                if let slot = self.toolSlots[payload.index ?? 0], self.summary.toolCalls[slot].arguments.isEmpty {
                    self.summary.toolCalls[slot].arguments = "{}"
                }
            case "message_delta":
                if let reason = payload.delta?.stopReason { self.summary.finishReasons = [reason] }
                if let output = payload.usage?.outputTokens { self.summary.outputTokens = output }
                if let input = payload.usage?.inputTokens { self.summary.inputTokens = input }
            case "error":
                self.summary.error = payload.error?.info ?? .init(type: "error", message: "")
            default: break
            }
        }
    }
}
