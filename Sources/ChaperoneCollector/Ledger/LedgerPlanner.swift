public import ChaperoneCore
import Crypto

/// The last event the collector stored for a stream.
public struct StreamHead: Sendable, Equatable {
    public var lastSeq: Int64
    public var lastLineHash: String
    /// The pod the stream was first seen from; a stream does not change pods.
    public var podUID: String?
    public var namespace: String?
    public var pod: String?
}

/// What the store holds that a batch depends on, read inside the batch's transaction.
public struct LedgerState: Sendable {
    public var nextLeafIndex: Int64
    /// Heads of the streams in the batch (and of the collector's own stream), where known.
    public var streams: [String: StreamHead]
    /// Line hashes of the batch's event ids that are already stored.
    public var storedLineHashes: [String: String]
}

extension LedgerState {
    /// The state once `plan` is written, for the next batch planned in the same transaction.
    func advanced(by plan: LedgerPlan) -> LedgerState {
        var state = self
        state.nextLeafIndex += Int64(plan.records.count)
        state.streams.merge(plan.streamHeads) { _, new in new }
        for record in plan.records { state.storedLineHashes[record.eventID] = record.lineHash }
        return state
    }
}

/// A batch as it arrives: events and the verified identity of their sender, with the stamp its
/// events are stored under and each one's leaf in the log, computed here so the single writer
/// does not.
public struct IngestBatch: Sendable {
    public let events: [ReceivedEvent]
    public let identity: PodIdentity
    public let receivedMicros: Int64
    public let stamp: [UInt8]
    public let leafHashes: [[UInt8]]
    /// Events the collector itself writes with this batch (approval steps), chained in its own
    /// stream after any `integrity.*` findings.
    public let ownEvents: [AuditEvent]

    public init(events: [ReceivedEvent], identity: PodIdentity, receivedMicros: Int64, ownEvents: [AuditEvent] = []) {
        self.events = events
        self.ownEvents = ownEvents
        self.identity = identity
        self.receivedMicros = receivedMicros
        let stamp = StoredRecord.stamp(identity: identity, receivedMicros: receivedMicros)
        self.stamp = stamp
        self.leafHashes = events.map { LogRecord.leafHash(lineHash: $0.lineHash, stamp: stamp) }
    }
}

/// What to write for a batch, and what to answer.
public struct LedgerPlan: Sendable {
    public var records: [StoredRecord] = []
    public var streamHeads: [String: StreamHead] = [:]
    public var accepted: [String] = []
    public var duplicates: [String] = []
    /// The `integrity.*` events raised by this batch (also among `records`).
    public var findings: [AuditEvent] = []
}

/// Decides, for a batch and the stored state, which events are new, where they go in the log,
/// and what is wrong with their streams: gaps, broken chains, reordering, identity that
/// contradicts the token, an event id reused for different content. Each problem becomes an
/// `integrity.*` event in the collector's own hash-chained stream, stored alongside. Pure, so
/// both storage backends share it and it is tested without a database.
public struct LedgerPlanner: Sendable {
    /// The collector's own stream for the events it writes.
    public var streamID: String
    public var identity: PodIdentity

    public init(streamID: String, identity: PodIdentity) {
        self.streamID = streamID
        self.identity = identity
    }

    /// The `prev_hash` of a stream's first event.
    public static let zeroHash = AuditTrail.genesisHash

    public func plan(_ batch: IngestBatch, state: LedgerState) -> LedgerPlan {
        var plan = LedgerPlan()
        var heads = state.streams
        var next = state.nextLeafIndex
        var seenInBatch: [String: String] = [:]
        var reportedIdentity: Set<String> = []
        var integrityEvents: [AuditEvent] = []
        for (received, leafHash) in zip(batch.events, batch.leafHashes) {
            let lineHash = received.lineHashHex
            if let stored = state.storedLineHashes[received.event.eventID] ?? seenInBatch[received.event.eventID] {
                plan.duplicates.append(received.event.eventID)
                if stored != lineHash {
                    var detail = AuditEvent.Integrity(
                        streamID: received.event.streamID, eventID: received.event.eventID,
                        message: "event \(received.event.eventID) arrived again with different content; the first copy is kept")
                    detail.receivedSeq = UInt64(received.event.seq)
                    integrityEvents.append(self.finding(.integrityDuplicateConflict, detail))
                }
                continue
            }
            seenInBatch[received.event.eventID] = lineHash
            let seq = Int64(received.event.seq)

            // Identity: what the sender says about itself against what its token proves.
            if received.event.source.selfReported {
                let fields = batch.identity.contradictions(of: received.event.source)
                if !fields.isEmpty, reportedIdentity.insert(received.event.streamID).inserted {
                    var detail = AuditEvent.Integrity(
                        streamID: received.event.streamID, eventID: received.event.eventID,
                        message: "self-reported \(fields.joined(separator: ", ")) differ from the verified token; the verified identity is stored")
                    detail.fields = fields
                    detail.claimed = received.event.source
                    detail.verified = batch.identity.source
                    integrityEvents.append(self.finding(.integrityIdentityMismatch, detail))
                }
            }

            // The stream's chain.
            if let head = heads[received.event.streamID] {
                if let bound = head.podUID, let now = batch.identity.podUID, bound != now, reportedIdentity.insert(received.event.streamID).inserted {
                    var detail = AuditEvent.Integrity(
                        streamID: received.event.streamID, eventID: received.event.eventID,
                        message: "stream was first seen from pod uid \(bound) and now arrives from pod uid \(now)")
                    detail.fields = ["pod_uid"]
                    detail.verified = batch.identity.source
                    integrityEvents.append(self.finding(.integrityIdentityMismatch, detail))
                }
                if seq == head.lastSeq + 1 {
                    if received.event.prevHash != head.lastLineHash {
                        var detail = AuditEvent.Integrity(
                            streamID: received.event.streamID, eventID: received.event.eventID,
                            message: "prev_hash of seq \(seq) is not the hash of seq \(head.lastSeq): an event was altered, replaced or forged")
                        detail.receivedSeq = UInt64(seq)
                        detail.expectedPrevHash = head.lastLineHash
                        detail.receivedPrevHash = received.event.prevHash
                        integrityEvents.append(self.finding(.integrityChainBreak, detail))
                    }
                } else if seq > head.lastSeq + 1 {
                    var detail = AuditEvent.Integrity(
                        streamID: received.event.streamID, eventID: received.event.eventID,
                        message: "events \(head.lastSeq + 1)...\(seq - 1) of the stream never arrived")
                    detail.expectedSeq = UInt64(head.lastSeq + 1)
                    detail.receivedSeq = UInt64(seq)
                    detail.missingFrom = UInt64(head.lastSeq + 1)
                    detail.missingTo = UInt64(seq - 1)
                    integrityEvents.append(self.finding(.integrityGap, detail))
                } else {
                    var detail = AuditEvent.Integrity(
                        streamID: received.event.streamID, eventID: received.event.eventID,
                        message: "seq \(seq) arrived after seq \(head.lastSeq): late, or a sequence number used twice")
                    detail.expectedSeq = UInt64(head.lastSeq + 1)
                    detail.receivedSeq = UInt64(seq)
                    integrityEvents.append(self.finding(.integrityOutOfOrder, detail))
                }
            } else if seq != 1 {
                var detail = AuditEvent.Integrity(
                    streamID: received.event.streamID, eventID: received.event.eventID,
                    message: "stream first seen at seq \(seq): events 1...\(seq - 1) never arrived")
                detail.expectedSeq = 1
                detail.receivedSeq = UInt64(seq)
                detail.missingFrom = 1
                detail.missingTo = UInt64(seq - 1)
                integrityEvents.append(self.finding(.integrityGap, detail))
            } else if received.event.prevHash != Self.zeroHash {
                var detail = AuditEvent.Integrity(
                    streamID: received.event.streamID, eventID: received.event.eventID, message: "seq 1 of a stream must have a prev_hash of 64 zeros")
                detail.receivedSeq = 1
                detail.expectedPrevHash = Self.zeroHash
                detail.receivedPrevHash = received.event.prevHash
                integrityEvents.append(self.finding(.integrityChainBreak, detail))
            }
            if seq > heads[received.event.streamID]?.lastSeq ?? 0 {
                let previous = heads[received.event.streamID]
                heads[received.event.streamID] = StreamHead(
                    lastSeq: seq, lastLineHash: lineHash, podUID: previous?.podUID ?? batch.identity.podUID,
                    namespace: previous?.namespace ?? batch.identity.namespace, pod: previous?.pod ?? batch.identity.pod)
                plan.streamHeads[received.event.streamID] = heads[received.event.streamID]
            }

            plan.records.append(StoredRecord(
                leafIndex: next, eventID: received.event.eventID, streamID: received.event.streamID, seq: seq, prevHash: received.event.prevHash,
                lineHash: lineHash, timeMicros: received.timeMicros, receivedMicros: batch.receivedMicros,
                kind: received.event.kind.rawValue, sessionID: received.event.sessionID, exchangeID: received.event.exchangeID, identity: batch.identity,
                stamp: batch.stamp, leafHash: leafHash, line: received.line, index: received.index))
            plan.accepted.append(received.event.eventID)
            next += 1
        }

        // The collector's own events, chained in its stream after the batch's.
        let ownEvents = integrityEvents + batch.ownEvents
        if !ownEvents.isEmpty {
            let ownStamp = StoredRecord.stamp(identity: self.identity, receivedMicros: batch.receivedMicros)
            var head = heads[self.streamID] ?? StreamHead(lastSeq: 0, lastLineHash: Self.zeroHash, namespace: self.identity.namespace, pod: self.identity.pod)
            for (index, var event) in ownEvents.enumerated() {
                event.eventID = UUIDv7().description
                event.streamID = self.streamID
                event.seq = UInt64(head.lastSeq + 1)
                event.prevHash = head.lastLineHash
                event.time = WallClock.rfc3339(microseconds: batch.receivedMicros)
                let line = event.canonicalJSON()
                let lineHash = Array(SHA256.hash(data: line))
                head.lastSeq += 1
                head.lastLineHash = lineHash.hexString
                plan.records.append(StoredRecord(
                    leafIndex: next, eventID: event.eventID, streamID: self.streamID, seq: head.lastSeq, prevHash: event.prevHash,
                    lineHash: head.lastLineHash, timeMicros: batch.receivedMicros, receivedMicros: batch.receivedMicros,
                    kind: event.kind.rawValue, sessionID: event.sessionID, exchangeID: event.exchangeID, identity: self.identity,
                    stamp: ownStamp, leafHash: LogRecord.leafHash(lineHash: lineHash, stamp: ownStamp), line: line, index: .init(event)))
                if index < integrityEvents.count { plan.findings.append(event) }
                next += 1
            }
            plan.streamHeads[self.streamID] = head
        }
        return plan
    }

    private func finding(_ kind: AuditEvent.Kind, _ detail: AuditEvent.Integrity) -> AuditEvent {
        var event = AuditEvent(kind: kind, sessionID: "integrity", source: self.identity.source)
        event.integrity = detail
        return event
    }
}
