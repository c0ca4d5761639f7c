/// A request held until people decide it (docs/approvals.md): what the sidecar sends to open
/// it, and the approval as the collector's API answers for it. The same types are read by the
/// proxy, the collector and chaperonectl.
public enum ApprovalStatus: String, Codable, Sendable, CaseIterable {
    case pending
    case approved
    case denied
    /// Nobody decided before the hold's deadline.
    case expired
    /// The agent gave up waiting, or the sidecar stopped.
    case cancelled

    public var isDecided: Bool { self != .pending }
}

/// Who, what and why, as the sidecar reports it. The prompt is the masked copy: no raw secret
/// leaves the pod for an approval either.
public struct ApprovalRequest: Codable, Sendable, Equatable {
    /// Chosen by the sidecar (a UUIDv7), so that opening again after a lost answer is harmless.
    public var id: String
    public var exchangeID: String
    public var sessionID: String
    /// Who started the agent run, as the workload claims (`X-Chaperone-Initiator`); an approver
    /// with this name may not approve.
    public var initiator: String?
    public var upstream: String
    public var operation: String?
    public var path: String
    public var model: String?
    /// The masked prompt, cut to `maxPromptCharacters`.
    public var prompt: String
    /// The matched policy rules, the deciding rule's message and the highest severity.
    public var rules: [String]
    public var message: String?
    public var severity: String?
    /// Detectors that found secrets in the prompt (the secrets themselves are masked).
    public var detectors: [String]
    /// How long the sidecar holds the request.
    public var timeoutSeconds: Int

    public static let maxPromptCharacters = 8_000

    public init(
        id: String, exchangeID: String, sessionID: String, initiator: String?, upstream: String, operation: String?, path: String,
        model: String?, prompt: String, rules: [String], message: String?, severity: String?, detectors: [String], timeoutSeconds: Int
    ) {
        self.id = id
        self.exchangeID = exchangeID
        self.sessionID = sessionID
        self.initiator = initiator
        self.upstream = upstream
        self.operation = operation
        self.path = path
        self.model = model
        self.prompt = prompt
        self.rules = rules
        self.message = message
        self.severity = severity
        self.detectors = detectors
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey {
        case id
        case exchangeID = "exchange_id"
        case sessionID = "session_id"
        case initiator, upstream, operation, path, model, prompt, rules, message, severity, detectors
        case timeoutSeconds = "timeout_seconds"
    }
}

/// An approval as the collector holds it.
public struct Approval: Codable, Sendable, Equatable {
    public var id: String
    public var status: ApprovalStatus
    /// RFC 3339 times.
    public var created: String
    public var expires: String
    public var decided: String?
    /// Why it ended as it did: the deciding approver's reason, the auto-deny rule, the deadline.
    public var reason: String?
    public var requiredApprovals: Int
    public var votes: [Vote]
    /// The sidecar's pod as the collector verified it from its token, with the self-reported initiator.
    public var requester: AuditEvent.Source
    public var request: ApprovalRequest

    public struct Vote: Codable, Sendable, Equatable {
        public enum Decision: String, Codable, Sendable {
            case approve
            case deny
        }

        /// The approver's name from the ID token (`username_claim`).
        public var approver: String
        public var decision: Decision
        public var reason: String?
        public var time: String

        public init(approver: String, decision: Decision, reason: String?, time: String) {
            self.approver = approver
            self.decision = decision
            self.reason = reason
            self.time = time
        }
    }

    public init(
        id: String, status: ApprovalStatus, created: String, expires: String, decided: String? = nil, reason: String? = nil,
        requiredApprovals: Int, votes: [Vote] = [], requester: AuditEvent.Source, request: ApprovalRequest
    ) {
        self.id = id
        self.status = status
        self.created = created
        self.expires = expires
        self.decided = decided
        self.reason = reason
        self.requiredApprovals = requiredApprovals
        self.votes = votes
        self.requester = requester
        self.request = request
    }

    /// The approvers whose vote decided it, in order (the deny, or the approvals).
    public var deciders: [String] {
        switch self.status {
        case .approved: self.votes.filter { $0.decision == .approve }.map(\.approver)
        case .denied: self.votes.filter { $0.decision == .deny }.map(\.approver)
        default: []
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, status, created, expires, decided, reason
        case requiredApprovals = "required_approvals"
        case votes, requester, request
    }
}
