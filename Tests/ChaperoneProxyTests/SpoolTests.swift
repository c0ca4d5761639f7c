import ChaperoneCore
import ChaperoneGzip
import Foundation
import Logging
import Testing

@testable import ChaperoneProxy

/// The spool on a real directory: what goes in comes out in order, acknowledged segments go,
/// a restart finds the stream and its open exchanges, and overflow does what its policy says.
@Suite struct SpoolTests {
    let directory: String
    let logger = Logger(label: "spool-test")

    init() throws {
        self.directory = NSTemporaryDirectory() + "chaperone-spool-" + UUID().uuidString
    }

    func settings(maxBytes: Int = 1 << 20, segmentBytes: Int = 4096, overflow: Spool.Settings.Overflow = .failClosed) -> Spool.Settings {
        var settings = Spool.Settings()
        settings.directory = self.directory
        settings.maxBytes = maxBytes
        settings.segmentBytes = segmentBytes
        settings.overflow = overflow
        return settings
    }

    func event(_ kind: AuditEvent.Kind = .httpEgress, exchange: String? = nil, outcome: AuditEvent.Outcome? = .completed, padding: Int = 200) -> AuditEvent {
        AuditEvent(kind: kind, sessionID: String(repeating: "s", count: padding), exchangeID: exchange, source: .init(), outcome: outcome)
    }

    func segmentFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: self.directory).filter { $0.hasPrefix("segment-") }.sorted()
    }

    @Test func eventsComeOutInOrderAndAcknowledgedSegmentsAreDeleted() async throws {
        let spool = try Spool(settings: self.settings(), logger: self.logger)
        #expect(try spool.recover().position == nil)
        let trail = AuditTrail(sinks: [spool], logger: self.logger)
        var records: [AuditRecord] = []
        for _ in 0..<60 { records.append(await trail.record(self.event())) }
        #expect(try self.segmentFiles().count > 3, "60 events of ~500 bytes span several 4 KiB segments")
        #expect(spool.depth.events == 60)

        var shipped: [[UInt8]] = []
        while let claim = spool.claim(maxEvents: 25, maxBytes: 1 << 20) {
            #expect(claim.firstSeq == UInt64(shipped.count + 1))
            shipped += claim.lines.map(Array.init)
            spool.acknowledge(through: claim.lastSeq)
        }
        #expect(shipped == records.map { [UInt8]($0.canonicalJSON) }, "the shipper reads exactly the canonical lines, in seq order")
        #expect(spool.depth.events == 0)
        #expect(try self.segmentFiles().count == 1, "only the newest segment stays")
        #expect(spool.claim(maxEvents: 10, maxBytes: 1 << 20) == nil)
    }

    @Test func aRestartContinuesTheStreamAndFindsTheExchangesLeftOpen() async throws {
        let position: AuditTrail.StreamPosition
        do {
            let spool = try Spool(settings: self.settings(), logger: self.logger)
            _ = try spool.recover()
            let trail = AuditTrail(sinks: [spool], logger: self.logger)
            await trail.record(self.event(.llmRequest, exchange: "done", outcome: nil))
            await trail.record(self.event(.llmResponse, exchange: "done", outcome: .completed))
            await trail.record(self.event(.llmRequest, exchange: "cut", outcome: nil))
            let last = await trail.record(self.event())
            position = .init(streamID: trail.streamID, nextSeq: last.event.seq + 1, previousHash: CanonicalJSON.sha256Hex(last.canonicalJSON))
            spool.acknowledge(through: 1)
            try spool.close()
        }
        // The proxy died while writing a fifth line.
        let newest = self.directory + "/" + (try self.segmentFiles().last!)
        let handle = try #require(FileHandle(forWritingAtPath: newest))
        handle.seekToEndOfFile()
        handle.write(Data("{\"event_id\":\"half-writ".utf8))
        try handle.close()

        let spool = try Spool(settings: self.settings(), logger: self.logger)
        let recovery = try spool.recover()
        #expect(recovery.position == position)
        #expect(recovery.openExchanges.map(\.exchangeID) == ["cut"])
        #expect(recovery.tornBytes == 22)
        #expect(recovery.events == 4 && recovery.unacknowledged == 3)
        // Shipping resumes after what was acknowledged.
        #expect(spool.claim(maxEvents: 100, maxBytes: 1 << 20)?.firstSeq == 2)
        // The next event continues the chain.
        let trail = AuditTrail(position: position, sinks: [spool], logger: self.logger)
        let next = await trail.record(ProxyApplication.interruptedExchange(recovery.openExchanges[0]))
        #expect(next.event.seq == 5 && next.event.prevHash == position.previousHash)
        #expect(next.event.outcome == .incomplete && next.event.exchangeID == "cut")
    }

    @Test func dropOldestSaysExactlyWhatWentEvenWhenItsReportsGoToo() async throws {
        let spool = try Spool(settings: self.settings(maxBytes: 16 * 1024, overflow: .dropOldest), logger: self.logger)
        _ = try spool.recover()
        let trail = AuditTrail(sinks: [spool], logger: self.logger)
        var last: AuditRecord?
        for _ in 0..<300 { last = await trail.record(self.event()) }
        #expect(spool.depth.bytes <= 16 * 1024 + 4096)
        #expect(spool.admitsNewExchanges, "drop-oldest never closes the gate")

        // What is left, as the shipper sees it, plus what the surviving gap reports declare,
        // is every seq of the stream exactly once.
        var remaining: [AuditEvent] = []
        while let claim = spool.claim(maxEvents: 1000, maxBytes: 1 << 20) {
            remaining += try claim.lines.map { try AuditEvent.decode(jsonLine: Array($0)) }
            spool.acknowledge(through: claim.lastSeq)
        }
        var declared = Set<UInt64>()
        for gap in remaining where gap.kind == .integrityGap {
            declared.formUnion(gap.integrity!.missingFrom!...gap.integrity!.missingTo!)
        }
        let seqs = Set(remaining.map(\.seq))
        #expect(seqs.isDisjoint(with: declared))
        #expect(seqs.union(declared) == Set(1...last!.event.seq))
        #expect(declared.min() == 1)
        #expect(spool.depth.events == 0)
    }

    @Test func failClosedShutsTheGateWhenFullAndOpensItOnceAcknowledged() async throws {
        let spool = try Spool(settings: self.settings(maxBytes: 8 * 1024), logger: self.logger)
        _ = try spool.recover()
        let trail = AuditTrail(sinks: [spool], logger: self.logger)
        var written = 0
        while spool.admitsNewExchanges {
            await trail.record(self.event())
            written += 1
        }
        #expect(written > 10 && spool.depth.aboveHighWater)
        // Events still go in (an exchange under way must be recorded), and none are dropped.
        for _ in 0..<5 { await trail.record(self.event()) }
        #expect(spool.depth.events == written + 5)
        #expect(spool.takeLosses().isEmpty)
        while let claim = spool.claim(maxEvents: 1000, maxBytes: 1 << 20) { spool.acknowledge(through: claim.lastSeq) }
        #expect(spool.admitsNewExchanges && !spool.depth.aboveHighWater)
    }

    @Test func aSecondProxyCannotOpenTheSameSpool() throws {
        let first = try Spool(settings: self.settings(), logger: self.logger)
        #expect(throws: Spool.Failure.self) { try Spool(settings: self.settings(), logger: self.logger) }
        _ = first
    }

    @Test func gzipRoundTrips() throws {
        let text = Array(String(repeating: "{\"kind\":\"llm.request\"}\n", count: 1000).utf8)
        let compressed = try Gzip.deflate(text)
        #expect(compressed.count < text.count / 10 && compressed.prefix(2) == [0x1f, 0x8b])
        #expect(try Gzip.inflate(compressed, limit: 1 << 20) == text)
    }
}
