@testable import ChaperoneCollector
import CChaperoneZlib
import ChaperoneGzip
import ChaperoneCore
import Crypto
import Foundation
import Testing

/// Builds chained events the way a sidecar does.
struct SidecarStream {
    var streamID = UUIDv7().description
    var seq: UInt64 = 0
    var previous = LedgerPlanner.zeroHash
    var source = AuditEvent.Source(namespace: "agents", pod: "agent-1", selfReported: true)

    mutating func next(session: String = "s1", text: String = "hello", findings: [AuditEvent.Finding] = []) -> ReceivedEvent {
        self.seq += 1
        var event = AuditEvent(
            kind: .llmRequest, sessionID: session, source: self.source,
            genAI: .init(operation: .init(name: "chat"), provider: .init(name: "openai"), request: .init(model: "gpt-4o-mini")),
            content: .init(messages: [.init(role: "user", content: text)], toolCalls: []), findings: findings)
        event.eventID = UUIDv7().description
        event.streamID = self.streamID
        event.seq = self.seq
        event.prevHash = self.previous
        event.time = WallClock.rfc3339(nanoseconds: WallClock.nowNanoseconds())
        let line = event.canonicalJSON()
        let hash = Array(SHA256.hash(data: line))
        self.previous = hash.hexString
        return ReceivedEvent(line: line, lineHash: hash, event: event, timeMicros: WallClock.microseconds(rfc3339: event.time)!)
    }
}

let agentIdentity = PodIdentity(namespace: "agents", serviceAccount: "coder", pod: "agent-1", podUID: "uid-1", node: "node-a", authenticatedBy: "jwks")
let collectorIdentity = PodIdentity(namespace: "chaperone-system", serviceAccount: "chaperone-collector", pod: "collector-0", authenticatedBy: "collector")

@Suite struct LedgerPlannerTests {
    let planner = LedgerPlanner(streamID: "collector-stream", identity: collectorIdentity)

    func batch(_ events: [ReceivedEvent], identity: PodIdentity = agentIdentity) -> IngestBatch {
        IngestBatch(events: events, identity: identity, receivedMicros: 1_800_000_000_000_000)
    }

    func empty(next: Int64 = 0) -> LedgerState {
        LedgerState(nextLeafIndex: next, streams: [:], storedLineHashes: [:])
    }

    @Test func aCleanBatchGetsConsecutiveLeavesAndNoFindings() {
        var stream = SidecarStream()
        let events = (0..<4).map { _ in stream.next() }
        let plan = self.planner.plan(self.batch(events), state: self.empty(next: 10))
        #expect(plan.accepted == events.map(\.event.eventID))
        #expect(plan.records.map(\.leafIndex) == [10, 11, 12, 13])
        #expect(plan.findings.isEmpty)
        #expect(plan.streamHeads[stream.streamID]?.lastSeq == 4)
        #expect(plan.streamHeads[stream.streamID]?.lastLineHash == stream.previous)
        #expect(plan.records.allSatisfy { $0.identity == agentIdentity })
    }

    @Test func duplicatesAreAcknowledgedNotStoredAndConflictsAreFlagged() {
        var stream = SidecarStream()
        let events = (0..<3).map { _ in stream.next() }
        var state = self.empty()
        state.storedLineHashes[events[0].event.eventID] = events[0].lineHash.hexString
        state.storedLineHashes[events[1].event.eventID] = String(repeating: "a", count: 64)
        state.streams[stream.streamID] = StreamHead(lastSeq: 2, lastLineHash: events[1].lineHash.hexString, podUID: "uid-1")
        let plan = self.planner.plan(self.batch(events + [events[2]]), state: state)
        #expect(plan.duplicates == [events[0].event.eventID, events[1].event.eventID, events[2].event.eventID])
        #expect(plan.accepted == [events[2].event.eventID])
        #expect(plan.findings.map(\.kind) == [.integrityDuplicateConflict])
    }

    @Test func gapsBreaksAndReorderingBecomeChainedIntegrityEvents() {
        var stream = SidecarStream()
        let events = (0..<6).map { _ in stream.next() }
        var forged = events[5].event
        forged.prevHash = String(repeating: "f", count: 64)
        let tampered = ReceivedEvent(line: events[5].line, lineHash: events[5].lineHash, event: forged, timeMicros: events[5].timeMicros)
        var state = self.empty()
        state.streams[stream.streamID] = StreamHead(lastSeq: 1, lastLineHash: events[0].lineHash.hexString, podUID: "uid-1")
        state.streams["collector-stream"] = StreamHead(lastSeq: 7, lastLineHash: String(repeating: "c", count: 64))
        // seq 2 ok, 4 (gap of 3), 3 (late), 6 with a wrong prev_hash after 5 is missing... send 2, 4, 3, then tampered 6 after 5.
        let plan = self.planner.plan(self.batch([events[1], events[3], events[2], events[4], tampered]), state: state)
        #expect(plan.findings.map(\.kind) == [.integrityGap, .integrityOutOfOrder, .integrityChainBreak])
        let gap = plan.findings[0].integrity!
        #expect(gap.missingFrom == 3 && gap.missingTo == 3)
        // The collector's own events continue its chain after seq 7.
        let own = plan.records.filter { $0.streamID == "collector-stream" }
        #expect(own.map(\.seq) == [8, 9, 10])
        #expect(own[0].prevHash == String(repeating: "c", count: 64))
        #expect(own[1].prevHash == own[0].lineHash && own[2].prevHash == own[1].lineHash)
        #expect(own.allSatisfy { CanonicalJSON.sha256Hex($0.line) == $0.lineHash })
        #expect(plan.records.map(\.leafIndex) == Array(0..<8))
    }

    @Test func aNewStreamMustStartAtOneWithZeroHash() {
        var stream = SidecarStream()
        _ = stream.next()
        let second = stream.next()
        let plan = self.planner.plan(self.batch([second]), state: self.empty())
        #expect(plan.findings.map(\.kind) == [.integrityGap])
        #expect(plan.findings[0].integrity?.missingFrom == 1)
    }

    @Test func selfReportedIdentityThatContradictsTheTokenIsRecordedOncePerStream() {
        var stream = SidecarStream(source: .init(namespace: "kube-system", pod: "agent-1", selfReported: true))
        let plan = self.planner.plan(self.batch([stream.next(), stream.next()]), state: self.empty())
        #expect(plan.findings.map(\.kind) == [.integrityIdentityMismatch])
        #expect(plan.findings[0].integrity?.fields == ["namespace"])
        #expect(plan.records.first?.identity.namespace == "agents")
    }

    @Test func aStreamThatMovesToAnotherPodIsFlagged() {
        var stream = SidecarStream()
        let first = stream.next()
        var state = self.empty()
        state.streams[stream.streamID] = StreamHead(lastSeq: 1, lastLineHash: first.lineHash.hexString, podUID: "uid-other")
        let plan = self.planner.plan(self.batch([stream.next()]), state: state)
        #expect(plan.findings.map(\.kind) == [.integrityIdentityMismatch])
        #expect(plan.findings[0].integrity?.fields == ["pod_uid"])
    }

    @Test func recordHashesBindTheLineAndTheVerifiedIdentity() {
        var stream = SidecarStream()
        let plan = self.planner.plan(self.batch([stream.next()]), state: self.empty())
        let record = plan.records[0]
        let lineHash = [UInt8](hex: record.lineHash) ?? []
        #expect(record.leafHash == LogRecord.leafHash(lineHash: lineHash, stamp: record.stamp))
        let otherStamp = StoredRecord.stamp(identity: collectorIdentity, receivedMicros: record.receivedMicros)
        #expect(LogRecord.leafHash(lineHash: lineHash, stamp: otherStamp) != record.leafHash)
    }
}

@Suite struct EventBatchParserTests {
    @Test func timesParseToMicroseconds() {
        #expect(WallClock.microseconds(rfc3339: "1970-01-01T00:00:00Z") == 0)
        #expect(WallClock.microseconds(rfc3339: "2026-11-22T01:30:02.145861Z") == 1_795_311_002_145_861)
        #expect(WallClock.microseconds(rfc3339: "2000-02-29T12:00:00.5+00:00") == 951_825_600_500_000)
        #expect(WallClock.microseconds(rfc3339: "2026-13-01T00:00:00Z") == nil)
        #expect(WallClock.microseconds(rfc3339: "2026-11-22 01:30:02Z") == nil)
        #expect(WallClock.microseconds(rfc3339: "2026-11-22T01:30:02+01:00") == nil)
    }

    @Test func badLinesAreRefusedOneByOne() throws {
        var stream = SidecarStream()
        let good = stream.next().line
        var body = good + [0x0a] + Array("{\"event_id\":1}\n".utf8) + Array(repeating: 0x20, count: 3) + [0x0a]
        body += Array("not json\r\n".utf8) + good
        let parsed = try EventBatchParser.parse(body, maxEvents: 10, maxEventBytes: 1 << 20)
        #expect(parsed.events.count == 2)
        #expect(parsed.rejections.map(\.line) == [2, 4])
        #expect(parsed.rejections[0].error.contains("missing field"))
        let tooBig = try EventBatchParser.parse(good, maxEvents: 10, maxEventBytes: 16)
        #expect(tooBig.events.isEmpty && tooBig.rejections[0].error.contains("limit is 16"))
        #expect(throws: EventBatchParser.Failure.tooManyEvents(1)) { try EventBatchParser.parse(good + [0x0a] + good, maxEvents: 1, maxEventBytes: 1 << 20) }
        #expect(throws: EventBatchParser.Failure.empty) { try EventBatchParser.parse(Array("\n \n".utf8), maxEvents: 1, maxEventBytes: 10) }
    }

    @Test func compressedBodiesInflateWithinTheLimitOnly() throws {
        let plain = [UInt8](repeating: 0x61, count: 1 << 20)
        var compressed = [UInt8](repeating: 0, count: 1 << 16)
        var length = uLongf(compressed.count)
        #expect(compress2(&compressed, &length, plain, uLong(plain.count), 9) == Z_OK)
        compressed = Array(compressed.prefix(Int(length)))
        #expect(try Gzip.inflate(compressed, limit: 1 << 20) == plain)
        // A small body that expands past the limit (a "zip bomb") stops there.
        #expect(throws: Gzip.Failure.tooLarge) { try Gzip.inflate(compressed, limit: 4096) }
        #expect(throws: Gzip.Failure.self) { try Gzip.inflate(Array(compressed.prefix(compressed.count / 2)), limit: 1 << 20) }
        #expect(throws: Gzip.Failure.self) { try Gzip.inflate([0x1f, 0x8b, 0x08, 0x00, 0x01], limit: 100) }
    }
}

extension ReceivedEvent {
    /// The same event as if its clock had said `micros`.
    func at(micros: Int64) -> ReceivedEvent {
        ReceivedEvent(line: self.line, lineHash: self.lineHash, event: self.event, timeMicros: micros)
    }
}
