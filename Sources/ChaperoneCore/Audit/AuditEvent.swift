/// One audit record: what happened in the data path, who did it and what was said.
///
/// The field names follow docs/audit-events.md and its JSON Schema
/// (docs/audit-event.schema.json); `gen_ai` nests the OpenTelemetry GenAI attribute names, so
/// `gen_ai.request.model` is the same path in JSON as in OpenTelemetry.
public struct AuditEvent: Codable, Sendable, Equatable {
    public static let schemaVersion = "1.0"

    public var schemaVersion: String
    public var eventID: String
    public var streamID: String
    public var seq: UInt64
    public var prevHash: String
    public var time: String
    public var kind: Kind
    public var sessionID: String
    /// Ties the events of one request/response exchange together.
    public var exchangeID: String?
    public var source: Source
    public var http: HTTPExchange?
    public var genAI: GenAI?
    public var content: Content?
    public var findings: [Finding]
    public var decision: Decision?
    public var outcome: Outcome?
    public var error: ErrorInfo?
    /// What an `integrity.*` event (written by the collector) found.
    public var integrity: Integrity?

    public init(
        kind: Kind,
        sessionID: String,
        exchangeID: String? = nil,
        source: Source,
        http: HTTPExchange? = nil,
        genAI: GenAI? = nil,
        content: Content? = nil,
        findings: [Finding] = [],
        decision: Decision? = nil,
        outcome: Outcome? = nil,
        error: ErrorInfo? = nil
    ) {
        self.schemaVersion = Self.schemaVersion
        self.eventID = ""
        self.streamID = ""
        self.seq = 0
        self.prevHash = ""
        self.time = ""
        self.kind = kind
        self.sessionID = sessionID
        self.exchangeID = exchangeID
        self.source = source
        self.http = http
        self.genAI = genAI
        self.content = content
        self.findings = findings
        self.decision = decision
        self.outcome = outcome
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case eventID = "event_id"
        case streamID = "stream_id"
        case seq
        case prevHash = "prev_hash"
        case time
        case kind
        case sessionID = "session_id"
        case exchangeID = "exchange_id"
        case source
        case http
        case genAI = "gen_ai"
        case content
        case findings
        case decision
        case outcome
        case error
        case integrity
    }
}

extension AuditEvent {
    public struct Kind: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(from decoder: any Decoder) throws {
            self.rawValue = try decoder.singleValueContainer().decode(String.self)
        }
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(self.rawValue)
        }
        public var description: String { self.rawValue }

        public static let llmRequest = Kind(rawValue: "llm.request")
        public static let llmResponse = Kind(rawValue: "llm.response")
        public static let httpEgress = Kind(rawValue: "http.egress")
        public static let sessionStart = Kind(rawValue: "session.start")
        public static let sessionEnd = Kind(rawValue: "session.end")
        public static let policyDecision = Kind(rawValue: "policy.decision")
        /// Events of a stream never arrived (sequence numbers skipped).
        public static let integrityGap = Kind(rawValue: "integrity.gap")
        /// An event's `prev_hash` is not the hash of the event before it.
        public static let integrityChainBreak = Kind(rawValue: "integrity.chain_break")
        /// An event arrived after later ones of its stream, or reused a sequence number.
        public static let integrityOutOfOrder = Kind(rawValue: "integrity.out_of_order")
        /// The sender's self-reported identity differs from its verified token.
        public static let integrityIdentityMismatch = Kind(rawValue: "integrity.identity_mismatch")
        /// An event id arrived again with different content.
        public static let integrityDuplicateConflict = Kind(rawValue: "integrity.duplicate_conflict")
        /// A request is held until a person approves it (docs/approvals.md).
        public static let approvalRequested = Kind(rawValue: "approval.requested")
        /// An approver voted (the collector's record; more votes may be required).
        public static let approvalVoted = Kind(rawValue: "approval.voted")
        /// The held request was approved and forwarded.
        public static let approvalApproved = Kind(rawValue: "approval.approved")
        public static let approvalDenied = Kind(rawValue: "approval.denied")
        /// Nobody decided in time.
        public static let approvalTimedOut = Kind(rawValue: "approval.timed_out")
        /// The agent gave up waiting (or the sidecar stopped) before a decision.
        public static let approvalCancelled = Kind(rawValue: "approval.cancelled")
    }

    /// How an exchange ended, from the proxy's point of view.
    public enum Outcome: String, Codable, Sendable {
        /// The upstream answered and the whole answer reached the agent.
        case completed
        /// The proxy refused the request before it reached an upstream (unknown upstream, too large…).
        case rejected
        /// The upstream could not be reached, or failed before or while answering.
        case upstreamError = "upstream_error"
        /// The exchange exceeded a configured timeout.
        case timeout
        /// The agent went away before the answer was complete.
        case clientDisconnected = "client_disconnected"
        /// The proxy stopped (crashed or was killed) while the exchange was open; recorded when it
        /// restarted on the same spool. How much of the answer reached the agent is unknown.
        case incomplete
    }

    /// Who made the request. In the sidecar every field is self-reported (taken from the pod's
    /// downward-API environment); the collector replaces them with the verified identity.
    public struct Source: Codable, Sendable, Equatable {
        public var cluster: String?
        public var namespace: String?
        public var pod: String?
        public var podUID: String?
        public var container: String?
        public var node: String?
        public var serviceAccount: String?
        /// Who started the agent run, as claimed by the workload (for example a CI job URL).
        public var initiator: String?
        /// True while the identity is what the workload says about itself.
        public var selfReported: Bool

        public init(
            cluster: String? = nil, namespace: String? = nil, pod: String? = nil, podUID: String? = nil,
            container: String? = nil, node: String? = nil, serviceAccount: String? = nil,
            initiator: String? = nil, selfReported: Bool = true
        ) {
            self.cluster = cluster
            self.namespace = namespace
            self.pod = pod
            self.podUID = podUID
            self.container = container
            self.node = node
            self.serviceAccount = serviceAccount
            self.initiator = initiator
            self.selfReported = selfReported
        }

        enum CodingKeys: String, CodingKey {
            case cluster, namespace, pod
            case podUID = "pod_uid"
            case container, node
            case serviceAccount = "service_account"
            case initiator
            case selfReported = "self_reported"
        }
    }

    public struct HTTPExchange: Codable, Sendable, Equatable {
        public var method: String
        public var upstream: String?
        public var path: String
        public var status: Int?
        public var bytesIn: Int
        public var bytesOut: Int
        /// Microseconds from the request head arriving to the exchange ending.
        public var durationMicros: Int64?
        /// Microseconds from the request head arriving to the first response byte from upstream.
        public var ttfbMicros: Int64?
        public var requestSHA256: String?
        public var responseSHA256: String?
        public var responseContentType: String?

        public init(
            method: String, upstream: String?, path: String, status: Int? = nil, bytesIn: Int = 0,
            bytesOut: Int = 0, durationMicros: Int64? = nil, ttfbMicros: Int64? = nil,
            requestSHA256: String? = nil, responseSHA256: String? = nil, responseContentType: String? = nil
        ) {
            self.method = method
            self.upstream = upstream
            self.path = path
            self.status = status
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.durationMicros = durationMicros
            self.ttfbMicros = ttfbMicros
            self.requestSHA256 = requestSHA256
            self.responseSHA256 = responseSHA256
            self.responseContentType = responseContentType
        }

        enum CodingKeys: String, CodingKey {
            case method, upstream, path, status
            case bytesIn = "bytes_in"
            case bytesOut = "bytes_out"
            case durationMicros = "duration_us"
            case ttfbMicros = "ttfb_us"
            case requestSHA256 = "request_sha256"
            case responseSHA256 = "response_sha256"
            case responseContentType = "response_content_type"
        }
    }

    public struct ErrorInfo: Codable, Sendable, Equatable {
        public var type: String
        public var message: String
        public init(type: String, message: String) {
            self.type = type
            self.message = message
        }
    }

    /// A secret or policy match. Never carries the secret itself (filled by the masking issue).
    public struct Finding: Codable, Sendable, Equatable {
        public var detector: String
        public var direction: String
        public var fingerprint: String
        /// `high`, `medium` or `low`.
        public var confidence: String?
        public init(detector: String, direction: String, fingerprint: String, confidence: String? = nil) {
            self.detector = detector
            self.direction = direction
            self.fingerprint = fingerprint
            self.confidence = confidence
        }
    }

    public struct Decision: Codable, Sendable, Equatable {
        public var action: String
        public var rules: [String]
        public var approvalID: String?
        /// `pending`, `approved`, `denied`, `timed_out`, `cancelled` or `unavailable`.
        public var approvalOutcome: String?
        /// Why the approval ended as it did (the approver's reason, an auto-deny rule, the timeout).
        public var approvalReason: String?
        /// Who decided (the approvers' verified names), in the order they voted.
        public var approvers: [String]?
        /// The highest severity among the matched rules.
        public var severity: String?
        /// The deciding rule's message.
        public var message: String?
        public init(
            action: String, rules: [String] = [], approvalID: String? = nil, approvalOutcome: String? = nil,
            severity: String? = nil, message: String? = nil
        ) {
            self.action = action
            self.rules = rules
            self.approvalID = approvalID
            self.approvalOutcome = approvalOutcome
            self.severity = severity
            self.message = message
        }
        enum CodingKeys: String, CodingKey {
            case action, rules, severity, message
            case approvalID = "approval_id"
            case approvalOutcome = "approval_outcome"
            case approvalReason = "approval_reason"
            case approvers
        }
    }

    /// The collector's account of a broken, gapped or mislabelled stream.
    public struct Integrity: Codable, Sendable, Equatable {
        /// The stream (and event) the finding is about.
        public var streamID: String
        public var eventID: String?
        public var expectedSeq: UInt64?
        public var receivedSeq: UInt64?
        /// The first and last sequence numbers that never arrived.
        public var missingFrom: UInt64?
        public var missingTo: UInt64?
        public var expectedPrevHash: String?
        public var receivedPrevHash: String?
        /// Identity fields that differ (`namespace`, `pod`, ...), with the claimed and verified values.
        public var fields: [String]?
        public var claimed: Source?
        public var verified: Source?
        public var message: String

        public init(streamID: String, eventID: String? = nil, message: String) {
            self.streamID = streamID
            self.eventID = eventID
            self.message = message
        }

        enum CodingKeys: String, CodingKey {
            case streamID = "stream_id"
            case eventID = "event_id"
            case expectedSeq = "expected_seq"
            case receivedSeq = "received_seq"
            case missingFrom = "missing_from"
            case missingTo = "missing_to"
            case expectedPrevHash = "expected_prev_hash"
            case receivedPrevHash = "received_prev_hash"
            case fields, claimed, verified, message
        }
    }
}
