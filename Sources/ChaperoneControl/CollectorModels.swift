import ArgumentParser
import ChaperoneCore
import Foundation

/// The collector's answers, as chaperonectl reads them.
struct Stamp: Decodable, Sendable {
    var namespace: String
    var pod: String?
    var serviceAccount: String
    var node: String?
    var receivedAt: String

    enum CodingKeys: String, CodingKey {
        case namespace, pod, node
        case serviceAccount = "service_account"
        case receivedAt = "received_at"
    }

    var who: String { "\(self.namespace)/\(self.pod ?? "?")" }
}

struct EventEnvelope: Decodable, Sendable {
    var event: AuditEvent?
    var identity: Stamp
    var leafIndex: Int64

    enum CodingKeys: String, CodingKey {
        case event, identity
        case leafIndex = "leaf_index"
    }
}

struct EventsPage: Decodable, Sendable {
    var events: [EventEnvelope]
    var next: String?
}

struct SessionRow: Decodable, Sendable {
    var sessionID: String
    var first: String
    var last: String
    var events: Int
    var requests: Int
    var namespace: String?
    var pod: String?
    var serviceAccount: String?
    var models: [String]

    enum CodingKeys: String, CodingKey {
        case first, last, events, requests, namespace, pod, models
        case sessionID = "session_id"
        case serviceAccount = "service_account"
    }
}

struct SessionsPage: Decodable, Sendable {
    var sessions: [SessionRow]
}

struct CheckpointRow: Decodable, Sendable {
    var note: String
    var rootHash: String
    var time: String
    var treeSize: Int

    enum CodingKeys: String, CodingKey {
        case note, time
        case rootHash = "root_hash"
        case treeSize = "tree_size"
    }
}

struct CheckpointsPage: Decodable, Sendable {
    var checkpoints: [CheckpointRow]
    var verifierKey: String

    enum CodingKeys: String, CodingKey {
        case checkpoints
        case verifierKey = "verifier_key"
    }
}

struct LeafRow: Decodable, Sendable {
    var index: Int64
    var hash: String
    var eventID: String

    enum CodingKeys: String, CodingKey {
        case index, hash
        case eventID = "event_id"
    }
}

struct LeavesPage: Decodable, Sendable {
    var leaves: [LeafRow]
}

struct RecordRow: Decodable, Sendable {
    var leafIndex: Int64
    var eventID: String
    var streamID: String
    var seq: Int64
    var prevHash: String
    var lineHash: String
    var kind: String
    var stamp: String
    var line: String?

    enum CodingKeys: String, CodingKey {
        case seq, kind, stamp, line
        case leafIndex = "leaf_index"
        case eventID = "event_id"
        case streamID = "stream_id"
        case prevHash = "prev_hash"
        case lineHash = "line_hash"
    }
}

struct RecordsPage: Decodable, Sendable {
    var records: [RecordRow]
}

/// The event filters of `events` and `tail` (the collector's `/v1/events` parameters). Identity
/// filters match what the collector verified from the pod's token.
struct EventFilters: ParsableArguments {
    @Option(help: "Namespace of the pod (verified).") var namespace: String?
    @Option(help: "Pod name (verified).") var pod: String?
    @Option(help: "Service account (verified).") var serviceAccount: String?
    @Option(help: "Session id.") var session: String?
    @Option(help: "Requested model.") var model: String?
    @Option(help: "Event kind, or a prefix such as 'integrity.*'.") var kind: String?
    @Option(help: "Events with a finding of this detector (e.g. aws_access_key).") var detector: String?
    @Option(help: "Policy action taken (mask, deny, require_approval, ...).") var action: String?
    @Option(help: "Outcome (completed, rejected, upstream_error, timeout, client_disconnected).") var outcome: String?
    @Option(name: [.customShort("q"), .long], help: "Words in the masked prompt or answer.") var text: String?

    var parameters: [(String, String?)] {
        [
            ("namespace", self.namespace), ("pod", self.pod), ("service_account", self.serviceAccount), ("session", self.session),
            ("model", self.model), ("kind", self.kind), ("detector", self.detector), ("action", self.action), ("outcome", self.outcome),
            ("q", self.text),
        ]
    }
}

/// One row of the human-readable event listing.
enum EventTable {
    static let header = pad("TIME", 27) + pad("WHO", 28) + pad("SESSION", 20) + pad("KIND", 24) + pad("MODEL", 18) + pad("STATUS", 7) + pad("FINDINGS", 18) + "TEXT"

    static func row(_ envelope: EventEnvelope, width: Int = 80) -> String {
        guard let event = envelope.event else {
            return pad("(content removed by retention)", 27) + pad(envelope.identity.who, 28) + "leaf \(envelope.leafIndex)"
        }
        let detectors = Array(Set(event.findings.map(\.detector))).sorted().joined(separator: ",")
        let text = event.integrity?.message ?? event.content?.responseText ?? event.content?.messages.last?.content ?? event.error?.message ?? ""
        return pad(event.time, 27) + pad(envelope.identity.who, 28) + pad(event.sessionID, 20) + pad(event.kind.rawValue, 24)
            + pad(event.genAI?.request.model ?? "", 18) + pad(event.http?.status.map(String.init) ?? "", 7) + pad(detectors.isEmpty ? "-" : detectors, 18)
            + shorten(text, width)
    }

    static func pad(_ text: String, _ width: Int) -> String {
        let clipped = text.count >= width ? String(text.prefix(width - 2)) + "…" : text
        return clipped + String(repeating: " ", count: max(1, width - clipped.count))
    }

    static func shorten(_ text: String, _ width: Int) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > width ? String(flat.prefix(width)) + "…" : flat
    }
}
