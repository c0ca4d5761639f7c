import ChaperoneCore

/// OpenAI Responses API (`POST …/responses`).
enum OpenAIResponses {
    struct Request: Decodable {
        var model: String?
        var input: JSONValue?
        var instructions: String?
        var stream: Bool?
        var maxOutputTokens: Int?
        enum CodingKeys: String, CodingKey {
            case model, input, instructions, stream
            case maxOutputTokens = "max_output_tokens"
        }
    }

    struct Response: Decodable {
        var id: String?
        var model: String?
        var status: String?
        var output: [JSONValue]?
        var usage: TokenUsage?
        var error: ProviderError?
        var incompleteDetails: IncompleteDetails?
        struct IncompleteDetails: Decodable { var reason: String? }
        enum CodingKeys: String, CodingKey {
            case id, model, status, output, usage, error
            case incompleteDetails = "incomplete_details"
        }
    }

    /// Streaming events: `response.*` with either a `response` object or a `delta`.
    struct StreamEvent: Decodable {
        var type: String?
        var response: Response?
        var delta: String?
        var item: JSONValue?
        var message: String?
        var code: String?
    }

    static func summarizeRequest(_ body: [UInt8]) -> RequestSummary {
        guard let request = ProviderJSON.decode(Request.self, from: body) else { return RequestSummary() }
        var messages: [AuditEvent.Message] = []
        if let instructions = request.instructions {
            messages.append(.init(role: "system", content: instructions))
        }
        switch request.input {
        case .string(let text):
            messages.append(.init(role: "user", content: text))
        case .array(let items):
            for item in items {
                messages.append(Self.message(from: item))
            }
        default: break
        }
        return RequestSummary(model: request.model, stream: request.stream ?? false, maxTokens: request.maxOutputTokens, messages: messages)
    }

    /// An input item: a message (`role` + `content`), a function call, or a function call's output.
    static func message(from item: JSONValue) -> AuditEvent.Message {
        switch item["type"]?.stringValue {
        case "function_call":
            return .init(role: "assistant", content: "", toolCalls: [Self.functionCall(from: item)])
        case "function_call_output":
            let output = item["output"].map { $0.stringValue ?? $0.jsonText } ?? ""
            return .init(role: "tool", content: output, toolCallID: item["call_id"]?.stringValue)
        default:
            return .init(role: item["role"]?.stringValue ?? "user", content: OpenAIContent.text(of: item["content"]))
        }
    }

    /// A `function_call` item, in a request's input or a response's output.
    static func functionCall(from item: JSONValue) -> AuditEvent.ToolCall {
        AuditEvent.ToolCall(
            id: item["call_id"]?.stringValue ?? item["id"]?.stringValue,
            name: item["name"]?.stringValue ?? "",
            arguments: item["arguments"]?.stringValue ?? ""
        )
    }

    static func summarizeResponse(_ body: [UInt8]) -> ResponseSummary {
        guard let response = ProviderJSON.decode(Response.self, from: body) else { return ResponseSummary() }
        return Self.summary(of: response)
    }

    static func summary(of response: Response) -> ResponseSummary {
        var summary = ResponseSummary()
        if let error = response.error {
            summary.error = error.info
        }
        summary.id = response.id
        summary.model = response.model
        summary.inputTokens = response.usage?.inputTokens
        summary.outputTokens = response.usage?.outputTokens
        if let status = response.status {
            summary.finishReasons = [response.incompleteDetails?.reason ?? status]
        }
        var texts: [String] = []
        for item in response.output ?? [] {
            switch item["type"]?.stringValue {
            case "message":
                if case .array(let parts) = item["content"] {
                    texts.append(contentsOf: parts.compactMap { $0["text"]?.stringValue ?? $0["refusal"]?.stringValue })
                }
            case "function_call":
                summary.toolCalls.append(Self.functionCall(from: item))
            default: break
            }
        }
        summary.text = texts.joined()
        return summary
    }

    /// Keeps text deltas as they come (so a cut stream still shows what was said) and takes the
    /// authoritative summary from `response.completed` / `response.incomplete` / `response.failed`.
    struct StreamState: Sendable {
        private(set) var summary = ResponseSummary()
        private var finished = false

        mutating func consume(_ event: SSEEvent) {
            guard let payload = ProviderJSON.decode(StreamEvent.self, from: event.data) else { return }
            let type = payload.type ?? event.type
            switch type {
            case "response.created", "response.in_progress":
                if let response = payload.response {
                    self.summary.id = response.id
                    self.summary.model = response.model
                }
            case "response.output_text.delta":
                if !self.finished { self.summary.text += payload.delta ?? "" }
            case "response.output_item.done":
                if !self.finished, let item = payload.item, item["type"]?.stringValue == "function_call" {
                    self.summary.toolCalls.append(OpenAIResponses.functionCall(from: item))
                }
            case "response.completed", "response.incomplete", "response.failed":
                if let response = payload.response {
                    self.summary = OpenAIResponses.summary(of: response)
                    self.finished = true
                }
            case "error":
                self.summary.error = .init(type: payload.code ?? "error", message: payload.message ?? "")
            default: break
            }
        }
    }
}
