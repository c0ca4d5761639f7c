extension AuditEvent {
    /// OpenTelemetry GenAI attributes, nested by their dotted names
    /// (`gen_ai.request.model` is `{"gen_ai": {"request": {"model": …}}}`).
    public struct GenAI: Codable, Sendable, Equatable {
        public var operation: Operation
        public var provider: Provider
        public var request: Request
        public var response: Response?
        public var usage: Usage?

        public init(operation: Operation, provider: Provider, request: Request, response: Response? = nil, usage: Usage? = nil) {
            self.operation = operation
            self.provider = provider
            self.request = request
            self.response = response
            self.usage = usage
        }

        public struct Operation: Codable, Sendable, Equatable {
            /// `chat`, `generate_content` (Responses API), `embeddings`.
            public var name: String
            public init(name: String) { self.name = name }
        }

        public struct Provider: Codable, Sendable, Equatable {
            /// `openai`, `anthropic`, or the configured name of an OpenAI-compatible upstream's provider.
            public var name: String
            public init(name: String) { self.name = name }
        }

        public struct Request: Codable, Sendable, Equatable {
            public var model: String?
            public var stream: Bool?
            public var maxTokens: Int?
            public init(model: String?, stream: Bool? = nil, maxTokens: Int? = nil) {
                self.model = model
                self.stream = stream
                self.maxTokens = maxTokens
            }
            enum CodingKeys: String, CodingKey {
                case model, stream
                case maxTokens = "max_tokens"
            }
        }

        public struct Response: Codable, Sendable, Equatable {
            public var model: String?
            public var id: String?
            public var finishReasons: [String]
            public init(model: String? = nil, id: String? = nil, finishReasons: [String] = []) {
                self.model = model
                self.id = id
                self.finishReasons = finishReasons
            }
            enum CodingKeys: String, CodingKey {
                case model, id
                case finishReasons = "finish_reasons"
            }
        }

        public struct Usage: Codable, Sendable, Equatable {
            public var inputTokens: Int?
            public var outputTokens: Int?
            public init(inputTokens: Int? = nil, outputTokens: Int? = nil) {
                self.inputTokens = inputTokens
                self.outputTokens = outputTokens
            }
            enum CodingKeys: String, CodingKey {
                case inputTokens = "input_tokens"
                case outputTokens = "output_tokens"
            }
        }
    }

    /// What was said: the prompt and the answer, after masking (masking arrives with issue P2;
    /// until then this is the text as sent), cut to the configured length.
    public struct Content: Codable, Sendable, Equatable {
        public var messages: [Message]
        public var responseText: String?
        public var toolCalls: [ToolCall]
        /// Number of embedding inputs, for embeddings requests.
        public var inputCount: Int?
        /// True when any text above was shortened to the configured limit.
        public var truncated: Bool

        public init(messages: [Message] = [], responseText: String? = nil, toolCalls: [ToolCall] = [], inputCount: Int? = nil, truncated: Bool = false) {
            self.messages = messages
            self.responseText = responseText
            self.toolCalls = toolCalls
            self.inputCount = inputCount
            self.truncated = truncated
        }

        enum CodingKeys: String, CodingKey {
            case messages
            case responseText = "response_text"
            case toolCalls = "tool_calls"
            case inputCount = "input_count"
            case truncated
        }
    }

    public struct Message: Codable, Sendable, Equatable {
        /// `system`, `developer`, `user`, `assistant` or `tool`.
        public var role: String
        public var content: String
        public var name: String?
        public var toolCallID: String?
        public var toolCalls: [ToolCall]?

        public init(role: String, content: String, name: String? = nil, toolCallID: String? = nil, toolCalls: [ToolCall]? = nil) {
            self.role = role
            self.content = content
            self.name = name
            self.toolCallID = toolCallID
            self.toolCalls = toolCalls
        }

        enum CodingKeys: String, CodingKey {
            case role, content, name
            case toolCallID = "tool_call_id"
            case toolCalls = "tool_calls"
        }
    }

    public struct ToolCall: Codable, Sendable, Equatable {
        public var id: String?
        public var name: String
        /// The arguments as the model produced them (a JSON text for both providers).
        public var arguments: String

        public init(id: String?, name: String, arguments: String) {
            self.id = id
            self.name = name
            self.arguments = arguments
        }
    }
}
