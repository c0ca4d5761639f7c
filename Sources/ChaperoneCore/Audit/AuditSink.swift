public import Foundation

/// An event after the trail has numbered, chained and encoded it.
public struct AuditRecord: Sendable {
    public var event: AuditEvent
    /// The canonical JSON of `event`, without a trailing newline. The next event's `prev_hash`
    /// is the SHA-256 of exactly these bytes.
    public var canonicalJSON: Data

    public init(event: AuditEvent, canonicalJSON: Data) {
        self.event = event
        self.canonicalJSON = canonicalJSON
    }
}

/// Where audit records go: the on-disk spool the shipper delivers to the collector, the optional
/// local JSON-lines file, stdout.
///
/// `write` is synchronous on purpose: the trail calls it while it holds the stream's order, so a
/// sink sees records strictly in `seq` order, with no suspension in between where another record
/// could overtake (an `async` write would let the trail's actor interleave two records). It
/// returns once the record is as durable as the sink promises; the proxy releases the end of an
/// exchange to the agent only after the exchange's record has been written.
public protocol AuditSink: Sendable {
    func write(_ record: AuditRecord) throws
    func close() throws
    /// Events the sink had to give up since it was last asked (a full spool's drop-oldest). The
    /// trail records an `integrity.gap` event for each.
    func takeLosses() -> [AuditLoss]
}

extension AuditSink {
    public func takeLosses() -> [AuditLoss] { [] }
}

/// Events of this stream deleted before they were delivered.
public struct AuditLoss: Sendable, Equatable {
    public var seqs: ClosedRange<UInt64>
    public var bytes: Int
    public var reason: String

    public init(seqs: ClosedRange<UInt64>, bytes: Int, reason: String) {
        self.seqs = seqs
        self.bytes = bytes
        self.reason = reason
    }
}
