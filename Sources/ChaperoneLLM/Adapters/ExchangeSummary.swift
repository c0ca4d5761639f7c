public import ChaperoneCore

/// What the adapters read from a request body.
public struct RequestSummary: Sendable, Equatable {
    public var model: String?
    public var stream: Bool
    public var maxTokens: Int?
    public var messages: [AuditEvent.Message]
    public var inputCount: Int?

    public init(model: String? = nil, stream: Bool = false, maxTokens: Int? = nil, messages: [AuditEvent.Message] = [], inputCount: Int? = nil) {
        self.model = model
        self.stream = stream
        self.maxTokens = maxTokens
        self.messages = messages
        self.inputCount = inputCount
    }
}

/// What the adapters read from a response, streamed or not.
public struct ResponseSummary: Sendable, Equatable {
    public var model: String?
    public var id: String?
    public var text: String = ""
    public var toolCalls: [AuditEvent.ToolCall] = []
    public var finishReasons: [String] = []
    public var inputTokens: Int?
    public var outputTokens: Int?
    /// The provider's own error, when the body was an error object.
    public var error: AuditEvent.ErrorInfo?
    /// Number of embedding vectors returned.
    public var embeddingCount: Int?

    public init() {}
}

/// The LLM operations Chaperone understands; everything else is recorded as generic HTTP.
public enum LLMOperation: String, Sendable, Equatable, CaseIterable {
    case openAIChatCompletions = "openai.chat_completions"
    case openAIResponses = "openai.responses"
    case openAIEmbeddings = "openai.embeddings"
    case anthropicMessages = "anthropic.messages"

    /// The OpenTelemetry `gen_ai.operation.name`.
    public var otelName: String {
        switch self {
        case .openAIChatCompletions, .anthropicMessages: "chat"
        case .openAIResponses: "generate_content"
        case .openAIEmbeddings: "embeddings"
        }
    }

    /// Which operation a request is, from the provider family, the method and the path below the
    /// upstream (query excluded). Paths are matched by suffix so a base URL with a prefix
    /// (`/v1`, `/openai/deployments/x`) still matches.
    public static func classify(provider: ProxyConfiguration.Provider, method: String, path: String) -> LLMOperation? {
        guard method == "POST" else { return nil }
        var trimmed = Substring(path)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        switch provider {
        case .anthropic:
            return trimmed.hasSuffix("/v1/messages") ? .anthropicMessages : nil
        case .openai, .azureOpenAI:
            if trimmed.hasSuffix("/chat/completions") { return .openAIChatCompletions }
            if trimmed.hasSuffix("/responses") { return .openAIResponses }
            if trimmed.hasSuffix("/embeddings") { return .openAIEmbeddings }
            return nil
        case .generic:
            return nil
        }
    }

    /// Reads a request body.
    public func summarizeRequest(_ body: [UInt8]) -> RequestSummary {
        switch self {
        case .openAIChatCompletions: OpenAIChat.summarizeRequest(body)
        case .openAIResponses: OpenAIResponses.summarizeRequest(body)
        case .openAIEmbeddings: OpenAIEmbeddings.summarizeRequest(body)
        case .anthropicMessages: AnthropicMessages.summarizeRequest(body)
        }
    }

    /// Reads a complete (non-streamed) response body.
    public func summarizeResponse(_ body: [UInt8]) -> ResponseSummary {
        switch self {
        case .openAIChatCompletions: OpenAIChat.summarizeResponse(body)
        case .openAIResponses: OpenAIResponses.summarizeResponse(body)
        case .openAIEmbeddings: OpenAIEmbeddings.summarizeResponse(body)
        case .anthropicMessages: AnthropicMessages.summarizeResponse(body)
        }
    }

    /// A fresh accumulator for a streamed (SSE) response.
    public func makeStreamAccumulator() -> StreamAccumulator {
        StreamAccumulator(operation: self)
    }
}

/// Folds the SSE events of a streamed response into a `ResponseSummary`, event by event.
public struct StreamAccumulator: Sendable {
    public let operation: LLMOperation
    private var parser = SSEParser()
    private var chat = OpenAIChat.StreamState()
    private var responses = OpenAIResponses.StreamState()
    private var anthropic = AnthropicMessages.StreamState()
    public private(set) var eventCount = 0

    init(operation: LLMOperation) { self.operation = operation }

    /// Feeds raw response bytes as they arrive.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for event in self.parser.feed(bytes) {
            self.consume(event)
        }
    }

    public mutating func consume(_ event: SSEEvent) {
        self.eventCount += 1
        switch self.operation {
        case .openAIChatCompletions: self.chat.consume(event)
        case .openAIResponses: self.responses.consume(event)
        case .anthropicMessages: self.anthropic.consume(event)
        case .openAIEmbeddings: break
        }
    }

    public var summary: ResponseSummary {
        switch self.operation {
        case .openAIChatCompletions: self.chat.summary
        case .openAIResponses: self.responses.summary
        case .anthropicMessages: self.anthropic.summary
        case .openAIEmbeddings: ResponseSummary()
        }
    }
}
