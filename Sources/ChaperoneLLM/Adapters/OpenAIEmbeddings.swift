import ChaperoneCore

/// OpenAI embeddings (`POST …/embeddings`): the inputs are the content; no text comes back.
enum OpenAIEmbeddings {
    struct Request: Decodable {
        var model: String?
        var input: JSONValue?
    }

    struct Response: Decodable {
        var model: String?
        var data: [JSONValue]?
        var usage: OpenAIChat.Usage?
        var error: ProviderError?
    }

    static func summarizeRequest(_ body: [UInt8]) -> RequestSummary {
        guard let request = ProviderJSON.decode(Request.self, from: body) else { return RequestSummary() }
        var messages: [AuditEvent.Message] = []
        var count = 0
        switch request.input {
        case .string(let text):
            messages = [.init(role: "input", content: text)]
            count = 1
        case .array(let items):
            count = items.count
            // An array of strings is several texts; an array of numbers is one pre-tokenized input.
            if items.allSatisfy({ if case .number = $0 { return true } else { return false } }) {
                messages = [.init(role: "input", content: "[\(items.count) tokens]")]
                count = 1
            } else {
                messages = items.map { item in
                    if case .string(let text) = item { return .init(role: "input", content: text) }
                    return .init(role: "input", content: "[tokens]")
                }
            }
        default: break
        }
        return RequestSummary(model: request.model, stream: false, messages: messages, inputCount: count)
    }

    static func summarizeResponse(_ body: [UInt8]) -> ResponseSummary {
        var summary = ResponseSummary()
        guard let response = ProviderJSON.decode(Response.self, from: body) else { return summary }
        if let error = response.error {
            summary.error = error.info
            return summary
        }
        summary.model = response.model
        summary.inputTokens = response.usage?.promptTokens
        summary.embeddingCount = response.data?.count
        return summary
    }
}
