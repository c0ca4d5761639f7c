import ChaperoneCore

/// OpenAI Chat Completions (`POST …/chat/completions`), also spoken by Azure OpenAI, vLLM,
/// Ollama and most gateways.
enum OpenAIChat {
    struct Request: Decodable {
        var model: String?
        var messages: [Message]?
        var stream: Bool?
        var maxTokens: Int?
        var maxCompletionTokens: Int?

        enum CodingKeys: String, CodingKey {
            case model, messages, stream
            case maxTokens = "max_tokens"
            case maxCompletionTokens = "max_completion_tokens"
        }
    }

    struct Message: Decodable {
        var role: String?
        var content: JSONValue?
        var name: String?
        var toolCallID: String?
        var toolCalls: [ToolCall]?

        enum CodingKeys: String, CodingKey {
            case role, content, name
            case toolCallID = "tool_call_id"
            case toolCalls = "tool_calls"
        }
    }

    struct ToolCall: Decodable {
        var index: Int?
        var id: String?
        var function: Function?
        struct Function: Decodable {
            var name: String?
            var arguments: String?
        }
    }

    struct Response: Decodable {
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
        var error: ProviderError?
    }

    struct Choice: Decodable {
        var index: Int?
        var message: Message?
        var delta: Message?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case index, message, delta
            case finishReason = "finish_reason"
        }
    }

    struct Usage: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?
        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }

    static func summarizeRequest(_ body: [UInt8]) -> RequestSummary {
        guard let request = ProviderJSON.decode(Request.self, from: body) else { return RequestSummary() }
        let messages = (request.messages ?? []).map { message in
            AuditEvent.Message(
                role: message.role ?? "user",
                content: OpenAIContent.text(of: message.content),
                name: message.name,
                toolCallID: message.toolCallID,
                toolCalls: message.toolCalls.map { calls in
                    calls.map { AuditEvent.ToolCall(id: $0.id, name: $0.function?.name ?? "", arguments: $0.function?.arguments ?? "") }
                }
            )
        }
        return RequestSummary(
            model: request.model,
            stream: request.stream ?? false,
            maxTokens: request.maxCompletionTokens ?? request.maxTokens,
            messages: messages
        )
    }

    static func summarizeResponse(_ body: [UInt8]) -> ResponseSummary {
        var summary = ResponseSummary()
        guard let response = ProviderJSON.decode(Response.self, from: body) else { return summary }
        if let error = response.error {
            summary.error = error.info
            return summary
        }
        summary.id = response.id
        summary.model = response.model
        summary.inputTokens = response.usage?.promptTokens
        summary.outputTokens = response.usage?.completionTokens
        for choice in response.choices ?? [] {
            if let reason = choice.finishReason { summary.finishReasons.append(reason) }
            // Only the first choice's text is the answer; n > 1 is rare for agents.
            if choice.index ?? 0 == 0, let message = choice.message {
                summary.text = OpenAIContent.text(of: message.content)
            }
            for call in choice.message?.toolCalls ?? [] {
                summary.toolCalls.append(.init(id: call.id, name: call.function?.name ?? "", arguments: call.function?.arguments ?? ""))
            }
        }
        return summary
    }

    /// Accumulates `chat.completion.chunk` events; tool-call deltas are joined by their index.
    struct StreamState: Sendable {
        private(set) var summary = ResponseSummary()
        private var toolCallSlots: [Int: Int] = [:]

        mutating func consume(_ event: SSEEvent) {
            if event.data == "[DONE]" { return }
            guard let chunk = ProviderJSON.decode(Response.self, from: event.data) else { return }
            if let error = chunk.error {
                self.summary.error = error.info
                return
            }
            if self.summary.id == nil { self.summary.id = chunk.id }
            if let model = chunk.model { self.summary.model = model }
            if let usage = chunk.usage {
                self.summary.inputTokens = usage.promptTokens ?? self.summary.inputTokens
                self.summary.outputTokens = usage.completionTokens ?? self.summary.outputTokens
            }
            for choice in chunk.choices ?? [] {
                if let reason = choice.finishReason { self.summary.finishReasons.append(reason) }
                guard choice.index ?? 0 == 0, let delta = choice.delta else { continue }
                if case .string(let text) = delta.content { self.summary.text += text }
                for call in delta.toolCalls ?? [] {
                    let key = call.index ?? self.summary.toolCalls.count
                    if let slot = self.toolCallSlots[key] {
                        if let id = call.id { self.summary.toolCalls[slot].id = id }
                        if let name = call.function?.name { self.summary.toolCalls[slot].name += name }
                        self.summary.toolCalls[slot].arguments += call.function?.arguments ?? ""
                    } else {
                        self.toolCallSlots[key] = self.summary.toolCalls.count
                        self.summary.toolCalls.append(
                            .init(id: call.id, name: call.function?.name ?? "", arguments: call.function?.arguments ?? "")
                        )
                    }
                }
            }
        }
    }
}

/// OpenAI's `{"error": {"message", "type", "code"}}`.
struct ProviderError: Decodable {
    var message: String?
    var type: String?
    var code: JSONValue?

    var info: AuditEvent.ErrorInfo {
        AuditEvent.ErrorInfo(type: self.type ?? self.code?.stringValue ?? "error", message: self.message ?? "")
    }
}

enum OpenAIContent {
    /// The text of a message's `content`: a string, or the text parts of an array of parts
    /// (`text`, `input_text`, `output_text`), joined by newlines. Non-text parts become a marker
    /// such as `[image_url]` so the record shows that something was attached.
    static func text(of content: JSONValue?) -> String {
        switch content {
        case .string(let text): return text
        case .array(let parts):
            return parts.compactMap { part -> String? in
                if case .string(let text) = part { return text }
                if let text = part["text"]?.stringValue { return text }
                if let refusal = part["refusal"]?.stringValue { return refusal }
                if let type = part["type"]?.stringValue { return "[\(type)]" }
                return nil
            }.joined(separator: "\n")
        default: return ""
        }
    }
}
