import Foundation
import ChaperoneCore
import ChaperoneLLM
import NIOHTTP1

/// The facts of one exchange as they are learnt, and the audit events made from them.
struct ExchangeRecord {
    let exchangeID = UUIDv7().description
    let started = ContinuousClock.now
    let method: String
    let sessionID: String
    let source: AuditEvent.Source
    var upstream: String?
    var provider: ProxyConfiguration.Provider = .generic
    var operation: LLMOperation?
    /// Path below the upstream, query removed (queries can carry keys).
    var path: String

    var request: RequestSummary?
    var requestBytes = 0
    var requestSHA256: String?

    var status: Int?
    var responseContentType: String?
    var responseHeadAt: ContinuousClock.Instant?
    var responseBytes = 0
    var responseSHA256: String?
    var response: ResponseSummary?
    var outcome: AuditEvent.Outcome = .completed
    /// Secrets masked in the request and in the response (never the secrets themselves).
    var requestFindings: [AuditEvent.Finding] = []
    var responseFindings: [AuditEvent.Finding] = []
    /// What the policy decided about the request.
    var decision = AuditEvent.Decision(action: "allow")
    var error: AuditEvent.ErrorInfo?

    init(method: String, path: String, sessionID: String, source: AuditEvent.Source) {
        self.method = method
        self.path = path
        self.sessionID = sessionID
        self.source = source
    }

    var elapsed: Duration { ContinuousClock.now - self.started }
    var timeToFirstByte: Duration? { self.responseHeadAt.map { $0 - self.started } }

    mutating func fail(_ error: ProxyError) {
        self.outcome = error.outcome
        self.status = Int(error.status.code)
        self.error = .init(type: error.code, message: error.message)
    }

    /// `llm.request`: what the agent asked, before anything goes upstream.
    func requestEvent(limits: ContentLimiter) -> AuditEvent {
        var limiter = limits
        let messages = (self.request?.messages ?? []).map { limiter.message($0) }
        return AuditEvent(
            kind: .llmRequest,
            sessionID: self.sessionID,
            exchangeID: self.exchangeID,
            source: self.source,
            http: .init(
                method: self.method, upstream: self.upstream, path: self.path,
                bytesIn: self.requestBytes, requestSHA256: self.requestSHA256
            ),
            genAI: self.genAI(includeResponse: false),
            content: .init(messages: messages, inputCount: self.request?.inputCount, truncated: limiter.truncated),
            findings: self.requestFindings,
            decision: self.decision
        )
    }

    /// What an approver is shown: who, what (the masked prompt, newest text last) and why.
    func approvalRequest(id: String, rules: [String], message: String?, timeout: ConfigDuration) -> ApprovalRequest {
        var prompt = (self.request?.messages ?? []).map { "\($0.role): \($0.content)" }.joined(separator: "\n\n")
        if prompt.count > ApprovalRequest.maxPromptCharacters {
            prompt = "…" + prompt.suffix(ApprovalRequest.maxPromptCharacters - 1)
        }
        return ApprovalRequest(
            id: id, exchangeID: self.exchangeID, sessionID: self.sessionID, initiator: self.source.initiator, upstream: self.upstream ?? "",
            operation: self.operation?.rawValue, path: self.path, model: self.request?.model, prompt: prompt, rules: rules, message: message,
            severity: self.decision.severity, detectors: Array(Set(self.requestFindings.map(\.detector))).sorted(),
            timeoutSeconds: Int(max(1, timeout.milliseconds / 1000)))
    }

    /// `approval.*`: a step of a held request.
    func approvalEvent(_ kind: AuditEvent.Kind, id: String, outcome: String, reason: String?, approvers: [String]?) -> AuditEvent {
        var decision = self.decision
        decision.approvalID = id
        decision.approvalOutcome = outcome
        decision.approvalReason = reason
        decision.approvers = approvers
        return AuditEvent(
            kind: kind, sessionID: self.sessionID, exchangeID: self.exchangeID, source: self.source,
            genAI: self.genAI(includeResponse: false), decision: decision)
    }

    /// `llm.response` for LLM operations, `http.egress` for everything else: how it ended.
    func completionEvent(limits: ContentLimiter) -> AuditEvent {
        var limiter = limits
        var content: AuditEvent.Content?
        if self.operation != nil, let response = self.response {
            content = .init(
                responseText: response.text.isEmpty ? nil : limiter.text(response.text),
                toolCalls: response.toolCalls.map { limiter.toolCall($0) },
                truncated: limiter.truncated
            )
        }
        return AuditEvent(
            kind: self.operation == nil ? .httpEgress : .llmResponse,
            sessionID: self.sessionID,
            exchangeID: self.exchangeID,
            source: self.source,
            http: .init(
                method: self.method, upstream: self.upstream, path: self.path, status: self.status,
                bytesIn: self.requestBytes, bytesOut: self.responseBytes,
                durationMicros: Self.micros(self.elapsed), ttfbMicros: self.timeToFirstByte.map(Self.micros),
                requestSHA256: self.requestSHA256, responseSHA256: self.responseSHA256,
                responseContentType: self.responseContentType
            ),
            genAI: self.genAI(includeResponse: true),
            content: content,
            findings: self.responseFindings,
            decision: self.operation != nil && self.decision.action != "allow" ? self.decision : nil,
            outcome: self.outcome,
            error: self.error ?? self.response?.error
        )
    }

    private func genAI(includeResponse: Bool) -> AuditEvent.GenAI? {
        guard let operation = self.operation else { return nil }
        var genAI = AuditEvent.GenAI(
            operation: .init(name: operation.otelName),
            provider: .init(name: self.providerName),
            request: .init(model: self.request?.model, stream: self.request?.stream, maxTokens: self.request?.maxTokens)
        )
        if includeResponse, let response = self.response {
            genAI.response = .init(model: response.model, id: response.id, finishReasons: response.finishReasons)
            if response.inputTokens != nil || response.outputTokens != nil {
                genAI.usage = .init(inputTokens: response.inputTokens, outputTokens: response.outputTokens)
            }
        }
        return genAI
    }

    private var providerName: String {
        switch self.provider {
        case .openai: "openai"
        case .azureOpenAI: "azure.ai.openai"
        case .anthropic: "anthropic"
        case .generic: self.upstream ?? "unknown"
        }
    }

    static func micros(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}

/// Cuts every text that goes into an event to the configured length and remembers whether it did.
struct ContentLimiter {
    let maxCharacters: Int
    private(set) var truncated = false

    init(maxCharacters: Int) { self.maxCharacters = maxCharacters }

    mutating func text(_ text: String) -> String {
        // A text has at least as many UTF-8 bytes as characters, and counting bytes is O(1):
        // long prompts are walked grapheme by grapheme only when they may be over the limit.
        guard text.utf8.count > self.maxCharacters, text.count > self.maxCharacters else { return text }
        self.truncated = true
        return String(text.prefix(self.maxCharacters))
    }

    mutating func toolCall(_ call: AuditEvent.ToolCall) -> AuditEvent.ToolCall {
        var call = call
        call.arguments = self.text(call.arguments)
        return call
    }

    mutating func message(_ message: AuditEvent.Message) -> AuditEvent.Message {
        var message = message
        message.content = self.text(message.content)
        message.toolCalls = message.toolCalls.map { calls in calls.map { self.toolCall($0) } }
        return message
    }
}
