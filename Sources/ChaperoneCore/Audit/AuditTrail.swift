import Foundation
public import Logging

/// The sidecar's audit stream: numbers every event (`seq`), chains it to the previous one
/// (`prev_hash`), stamps id and time, and hands it to every sink in order.
///
/// One trail per process; its `streamID` is fixed at boot, so a restarted sidecar starts a new
/// stream (the spool issue, P4, continues a stream across restarts).
public actor AuditTrail {
    /// `prev_hash` of the first event in a stream.
    public static let genesisHash = String(repeating: "0", count: 64)

    public nonisolated let streamID: String
    private var nextSeq: UInt64 = 1
    private var previousHash: String = AuditTrail.genesisHash
    private let sinks: [any AuditSink]
    private let logger: Logger

    public init(streamID: String = UUIDv7().description, sinks: [any AuditSink], logger: Logger) {
        self.streamID = streamID
        self.sinks = sinks
        self.logger = logger
    }

    /// Seals `event` into the stream and writes it to every sink, in `seq` order. Returns the
    /// sealed record. Nothing in here suspends, so records cannot overtake one another.
    @discardableResult
    public func record(_ event: AuditEvent) -> AuditRecord {
        var event = event
        let now = WallClock.nowNanoseconds()
        event.eventID = UUIDv7(unixMilliseconds: now / 1_000_000).description
        event.streamID = self.streamID
        event.seq = self.nextSeq
        event.prevHash = self.previousHash
        event.time = WallClock.rfc3339(nanoseconds: now)
        let record = AuditRecord(event: event, canonicalJSON: Data(event.canonicalJSON()))
        self.nextSeq += 1
        self.previousHash = CanonicalJSON.sha256Hex(record.canonicalJSON)
        for sink in self.sinks {
            do {
                try sink.write(record)
            } catch {
                self.logger.error(
                    "audit.sink_write_failed",
                    metadata: ["audit.kind": "\(event.kind)", "audit.seq": "\(event.seq)", "error": "\(error)"]
                )
            }
        }
        return record
    }

    public func close() {
        for sink in self.sinks {
            try? sink.close()
        }
    }
}
