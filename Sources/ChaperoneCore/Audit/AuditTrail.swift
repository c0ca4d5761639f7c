import Foundation
public import Logging

/// The sidecar's audit stream: numbers every event (`seq`), chains it to the previous one
/// (`prev_hash`), stamps id and time, and hands it to every sink in order.
///
/// One stream per spool: a sidecar restarted on a spool that still holds its stream continues it
/// (`StreamPosition`), otherwise it starts a new one.
public actor AuditTrail {
    /// `prev_hash` of the first event in a stream.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// Where a stream stands: the next event's `seq` and `prev_hash`.
    public struct StreamPosition: Sendable, Equatable {
        public var streamID: String
        public var nextSeq: UInt64
        public var previousHash: String

        public init(streamID: String, nextSeq: UInt64, previousHash: String) {
            self.streamID = streamID
            self.nextSeq = nextSeq
            self.previousHash = previousHash
        }

        /// A new stream, numbered from 1.
        public static func fresh() -> StreamPosition {
            StreamPosition(streamID: UUIDv7().description, nextSeq: 1, previousHash: AuditTrail.genesisHash)
        }
    }

    public nonisolated let streamID: String
    private var nextSeq: UInt64
    private var previousHash: String
    private let sinks: [any AuditSink]
    private let source: AuditEvent.Source
    private let logger: Logger

    /// `source` is who this sidecar says it is, put on the events the trail writes itself.
    public init(position: StreamPosition = .fresh(), sinks: [any AuditSink], source: AuditEvent.Source = .init(), logger: Logger) {
        self.streamID = position.streamID
        self.nextSeq = position.nextSeq
        self.previousHash = position.previousHash
        self.sinks = sinks
        self.source = source
        self.logger = logger
    }

    /// Seals `event` into the stream and writes it to every sink, in `seq` order. Returns the
    /// sealed record. Nothing in here suspends, so records cannot overtake one another. When a
    /// sink had to give up unshipped events to make room, an `integrity.gap` event follows.
    @discardableResult
    public func record(_ event: AuditEvent) -> AuditRecord {
        let record = self.seal(event)
        // Reporting a loss writes an event, which may itself make a sink give up more.
        var losses = self.takeLosses()
        while !losses.isEmpty {
            for loss in losses { self.seal(self.gapEvent(loss)) }
            losses = self.takeLosses()
        }
        return record
    }

    @discardableResult
    private func seal(_ event: AuditEvent) -> AuditRecord {
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

    private func takeLosses() -> [AuditLoss] {
        var losses: [AuditLoss] = []
        for sink in self.sinks { losses += sink.takeLosses() }
        return losses
    }

    private func gapEvent(_ loss: AuditLoss) -> AuditEvent {
        let count = loss.seqs.upperBound - loss.seqs.lowerBound + 1
        var detail = AuditEvent.Integrity(
            streamID: self.streamID,
            message: "events \(loss.seqs.lowerBound)...\(loss.seqs.upperBound) of this stream (\(count) events, \(loss.bytes) bytes) were deleted before delivery: \(loss.reason)")
        detail.missingFrom = loss.seqs.lowerBound
        detail.missingTo = loss.seqs.upperBound
        var event = AuditEvent(kind: .integrityGap, sessionID: "integrity", source: self.source)
        event.integrity = detail
        self.logger.error("audit.events_dropped", metadata: [
            "missing_from": "\(loss.seqs.lowerBound)", "missing_to": "\(loss.seqs.upperBound)", "bytes": "\(loss.bytes)", "reason": "\(loss.reason)",
        ])
        return event
    }

    public func close() {
        for sink in self.sinks {
            try? sink.close()
        }
    }
}
