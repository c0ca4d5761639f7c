public import ChaperoneCore
import Crypto
import Foundation

/// An event as the collector stores it: the sender's exact line (so the stream's hash chain can
/// be checked byte for byte), the stamp with the identity the collector verified, and its
/// position in the Merkle log. The leaf (`LogRecord`) hashes the line's hash and the stamp, so
/// the log still verifies after retention has dropped the line itself.
public struct StoredRecord: Sendable, Equatable {
    public var leafIndex: Int64
    public var eventID: String
    public var streamID: String
    public var seq: Int64
    public var prevHash: String
    public var lineHash: String
    public var timeMicros: Int64
    public var receivedMicros: Int64
    public var kind: String
    public var sessionID: String
    public var exchangeID: String?
    public var identity: PodIdentity
    /// Canonical JSON of the verified identity and arrival time.
    public var stamp: [UInt8]
    /// The record's leaf in the Merkle log (RFC 6962 hash of the line's hash and the stamp).
    public var leafHash: [UInt8]
    public var line: [UInt8]
    public var index: IndexFields

    /// What queries filter on, read from the event when it is stored.
    public struct IndexFields: Sendable, Equatable {
        public var model: String?
        public var outcome: String?
        public var action: String?
        public var status: Int?
        public var findings: [AuditEvent.Finding] = []
        /// Masked prompt and answer text, for free-text search.
        public var text: String = ""
        /// What the live tail shows: the last prompt message, the answer, or the finding.
        public var preview: String = ""
    }

    static func stamp(identity: PodIdentity, receivedMicros: Int64) -> [UInt8] {
        var w = CanonicalJSONWriter()
        w.object { w in
            w.key("authenticated_by") { $0.string(identity.authenticatedBy) }
            if let v = identity.cluster { w.key("cluster") { $0.string(v) } }
            w.key("namespace") { $0.string(identity.namespace) }
            if let v = identity.node { w.key("node") { $0.string(v) } }
            if let v = identity.pod { w.key("pod") { $0.string(v) } }
            if let v = identity.podUID { w.key("pod_uid") { $0.string(v) } }
            w.key("received_at") { $0.string(WallClock.rfc3339(microseconds: receivedMicros)) }
            w.key("service_account") { $0.string(identity.serviceAccount) }
        }
        return w.bytes
    }

}

extension StoredRecord.IndexFields {
    init(_ event: AuditEvent) {
        self.model = event.genAI?.request.model ?? event.genAI?.response?.model
        self.outcome = event.outcome?.rawValue
        self.action = event.decision?.action
        self.status = event.http?.status
        self.findings = event.findings
        var text: [String] = []
        if let content = event.content {
            for message in content.messages { text.append(message.content) }
            if let answer = content.responseText { text.append(answer) }
            for call in content.toolCalls { text.append("\(call.name) \(call.arguments)") }
        }
        if let message = event.integrity?.message { text.append(message) }
        self.text = text.joined(separator: "\n")
        self.preview = event.integrity?.message ?? event.content?.responseText ?? event.content?.messages.last?.content ?? event.error?.message ?? ""
    }
}
