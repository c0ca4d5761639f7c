import ChaperoneCore
import NIOCore
import NIOHTTP1

/// An error the proxy itself answers with, shaped like the provider's own errors so that the
/// agent's SDK raises its usual exception with our message in it.
struct ProxyError: Error, Sendable {
    /// Stable machine-readable code, also sent as `x-chaperone-error`.
    var code: String
    var status: HTTPResponseStatus
    var message: String
    var outcome: AuditEvent.Outcome
    /// Sent as `Retry-After`, which the official SDKs honour when they retry.
    var retryAfterSeconds: Int? = nil

    static func unknownUpstream(_ name: String, known: [String]) -> ProxyError {
        ProxyError(
            code: "unknown_upstream", status: .notFound,
            message: "chaperone-proxy: no upstream named '\(name)' is configured (configured: \(known.joined(separator: ", "))). "
                + "Point the SDK's base URL at http://127.0.0.1:15080/<upstream>/...",
            outcome: .rejected)
    }

    static func badPath(_ reason: String) -> ProxyError {
        ProxyError(code: "bad_request_path", status: .badRequest, message: "chaperone-proxy: \(reason)", outcome: .rejected)
    }

    static func bodyTooLarge(limit: Int) -> ProxyError {
        ProxyError(
            code: "request_too_large", status: .payloadTooLarge,
            message: "chaperone-proxy: request body exceeds the configured limit of \(limit) bytes (limits.max_request_body)",
            outcome: .rejected)
    }

    static func headersTooLarge(_ detail: String) -> ProxyError {
        ProxyError(code: "request_headers_too_large", status: .requestHeaderFieldsTooLarge,
                   message: "chaperone-proxy: \(detail)", outcome: .rejected)
    }

    static func credentialUnavailable(upstream: String, _ failure: CredentialStore.Failure) -> ProxyError {
        ProxyError(
            code: "credential_unavailable", status: .serviceUnavailable,
            message: "chaperone-proxy: the provider key for upstream '\(upstream)' is unavailable: \(failure)",
            outcome: .rejected)
    }

    static func upstreamUnreachable(upstream: String, _ detail: String) -> ProxyError {
        ProxyError(code: "upstream_unreachable", status: .badGateway,
                   message: "chaperone-proxy: upstream '\(upstream)' could not be reached: \(detail)", outcome: .upstreamError)
    }

    static func upstreamTimeout(upstream: String, _ detail: String) -> ProxyError {
        ProxyError(code: "upstream_timeout", status: .gatewayTimeout,
                   message: "chaperone-proxy: upstream '\(upstream)' timed out: \(detail)", outcome: .timeout)
    }

    static func clientBodyFailed(_ detail: String) -> ProxyError {
        ProxyError(code: "bad_request_body", status: .badRequest,
                   message: "chaperone-proxy: the request body could not be read: \(detail)", outcome: .rejected)
    }

    /// A policy rule denied the request.
    static func policyDenied(rule: String, message: String) -> ProxyError {
        ProxyError(code: "policy_denied", status: .forbidden,
                   message: "chaperone-proxy: request denied by policy rule \(rule): \(message)", outcome: .rejected)
    }

    /// A policy rule requires a person's approval, and this proxy has no collector to ask:
    /// the request is refused rather than sent unapproved.
    static func approvalRequired(rule: String, message: String) -> ProxyError {
        ProxyError(code: "approval_required", status: .forbidden,
                   message: "chaperone-proxy: policy rule \(rule) requires a human approval (\(message)), and no collector is configured for this proxy to ask; the request was not sent", outcome: .rejected)
    }

    /// Why the request was held, for the messages below.
    private static func why(_ request: ApprovalRequest) -> String {
        "policy rule \(request.rules.first ?? "?")" + (request.message.map { ": \($0)" } ?? "")
    }

    /// Denied by an approver (or at once, by an auto-deny rule).
    static func approvalDenied(_ approval: Approval) -> ProxyError {
        let by = approval.deciders.isEmpty ? "" : " by \(approval.deciders.joined(separator: ", "))"
        return ProxyError(
            code: "approval_denied", status: .forbidden,
            message: "chaperone-proxy: approval \(approval.id) was denied\(by): \(approval.reason ?? "no reason given"). "
                + "The request was held by \(Self.why(approval.request)) and was not sent.",
            outcome: .rejected)
    }

    /// Nobody decided before the hold's deadline. 403, not a 5xx or 408, so that SDKs do not
    /// retry into another long hold.
    static func approvalTimedOut(_ request: ApprovalRequest, id: String, after timeout: ConfigDuration) -> ProxyError {
        ProxyError(
            code: "approval_timed_out", status: .forbidden,
            message: "chaperone-proxy: approval \(id) was not decided within \(timeout) (\(Self.why(request))); the request was not sent. "
                + "Ask an approver to look at it (chaperonectl approvals show \(id)) and retry.",
            outcome: .rejected)
    }

    static func approvalCancelled(_ approval: Approval) -> ProxyError {
        ProxyError(
            code: "approval_cancelled", status: .forbidden,
            message: "chaperone-proxy: approval \(approval.id) was cancelled (\(approval.reason ?? "no reason given")); the request was not sent",
            outcome: .rejected)
    }

    /// The approval could not be opened or followed at the collector.
    static func approvalUnavailable(request: ApprovalRequest, detail: String) -> ProxyError {
        ProxyError(
            code: "approval_unavailable", status: .serviceUnavailable,
            message: "chaperone-proxy: \(Self.why(request)) requires a human approval, and approval \(request.id) could not be opened or followed at the collector (\(detail)); the request was not sent",
            outcome: .rejected, retryAfterSeconds: 5)
    }

    /// The audit spool cannot take more (full under `fail-closed`, or the disk refuses writes):
    /// nothing is sent that could not be recorded.
    static func auditBacklog(_ depth: Spool.Depth, limit: Int) -> ProxyError {
        let why = depth.heldEvents > 0
            ? "the disk holding the audit spool is full"
            : "the audit spool is full (\(depth.events) events, \(depth.bytes) of \(limit) bytes, waiting for the collector)"
        return ProxyError(
            code: "audit_backlog", status: .serviceUnavailable,
            message: "chaperone-proxy: \(why); new requests are refused until the audit events are delivered, so that nothing goes unrecorded. Retry shortly.",
            outcome: .rejected, retryAfterSeconds: 5)
    }

    static let shuttingDown = ProxyError(
        code: "shutting_down", status: .serviceUnavailable,
        message: "chaperone-proxy: the sidecar is shutting down", outcome: .rejected)

    /// The JSON body in the provider's error shape.
    func body(for provider: ProxyConfiguration.Provider) -> String {
        let message = JSONString.quote(self.message)
        switch provider {
        case .anthropic:
            return #"{"type":"error","error":{"type":"\#(self.anthropicType)","message":\#(message)}}"#
        case .openai, .azureOpenAI, .generic:
            return #"{"error":{"message":\#(message),"type":"\#(self.openAIType)","param":null,"code":"\#(self.code)"}}"#
        }
    }

    private var anthropicType: String {
        switch self.status.code {
        case 400: "invalid_request_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 431: "invalid_request_error"
        case 503: "overloaded_error"
        case 504: "timeout_error"
        default: "api_error"
        }
    }

    private var openAIType: String {
        self.status.code < 500 ? "invalid_request_error" : "chaperone_proxy_error"
    }
}
