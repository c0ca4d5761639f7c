@testable import ChaperoneCollector
import ChaperoneCore
import Crypto
import Foundation
import NIOConcurrencyHelpers
import Testing

/// A real engine with two faults to inject: after `holdNextWrite()`, the next transaction waits
/// until the test lets it go (so batches queue up behind it); an insert of the event id `poison`
/// fails.
final class HeldDatabase: SQLDatabase {
    let base: any SQLDatabase
    private let held = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
    private let holdNext = NIOLockedValueBox(false)
    private let entered = NIOLockedValueBox(false)

    init(_ base: any SQLDatabase) { self.base = base }
    var dialect: SQLDialect { self.base.dialect }
    var writerExecutor: (any TaskExecutor)? { self.base.writerExecutor }

    /// True once the first transaction is waiting to be let go.
    var isHolding: Bool { self.entered.withLockedValue { $0 } }

    func holdNextWrite() { self.holdNext.withLockedValue { $0 = true } }

    func release() {
        self.held.withLockedValue { $0?.resume(); $0 = nil }
    }

    func writing<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        if self.holdNext.withLockedValue({ hold in defer { hold = false }; return hold }) {
            await withCheckedContinuation { continuation in
                self.held.withLockedValue { $0 = continuation }
                self.entered.withLockedValue { $0 = true }
            }
        }
        return try await self.base.writing { try await body(PoisonSession(base: $0)) }
    }

    func reading<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T { try await self.base.reading(body) }
    func besideWriter<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T { try await self.base.besideWriter(body) }
    func storageBytes() async throws -> Int64 { try await self.base.storageBytes() }
    func close() async throws { try await self.base.close() }

    struct PoisonSession: SQLSession {
        let base: any SQLSession
        struct Poisoned: Error {}
        func run(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] { try await self.base.run(sql, binds) }
        func insert(_ insert: SQLInsert, rows: [[SQLValue]]) async throws {
            if insert.table == "events", rows.contains(where: { $0[1] == .text("poison") }) { throw Poisoned() }
            try await self.base.insert(insert, rows: rows)
        }
    }
}

@Suite struct GroupCommitTests {
    let planner = LedgerPlanner(streamID: "collector-stream", identity: collectorIdentity)

    func batch(_ stream: inout SidecarStream, count: Int, poison: Bool = false) -> IngestBatch {
        var events = (0..<count).map { _ in stream.next() }
        if poison {
            var event = events[0].event
            event.eventID = "poison"
            let line = event.canonicalJSON()
            events[0] = ReceivedEvent(line: line, lineHash: Array(SHA256.hash(data: line)), event: event, timeMicros: events[0].timeMicros)
        }
        return IngestBatch(events: events, identity: agentIdentity, receivedMicros: 1_800_000_000_000_000)
    }

    /// Runs `first` (held in its transaction) and then `queued` behind it, and returns each
    /// append's result in order, with the sizes of the transactions that committed.
    func run(_ backend: Backend, first: IngestBatch, queued: [IngestBatch]) async throws -> (results: [Result<LedgerPlan, any Error>], groups: [Int], leaves: Int64) {
        let store = try await backend.open()
        let database = HeldDatabase(store.database)
        let heldStore = EventStore(database: database)
        try await heldStore.prepare()
        database.holdNextWrite()
        let groups = NIOLockedValueBox<[Int]>([])
        let commits = GroupCommit(store: heldStore, planner: self.planner, groupSizes: { size in groups.withLockedValue { $0.append(size) } })
        var results: [Result<LedgerPlan, any Error>] = []
        try await withThrowingTaskGroup(of: (Int, Result<LedgerPlan, any Error>).self) { group in
            group.addTask { (0, await outcome { try await commits.append(first) }) }
            while !database.isHolding { try await Task.sleep(for: .milliseconds(5)) }
            for (i, batch) in queued.enumerated() {
                group.addTask { (i + 1, await outcome { try await commits.append(batch) }) }
                while commits.waitingCount < i + 1 { try await Task.sleep(for: .milliseconds(5)) }
            }
            database.release()
            var byIndex: [Int: Result<LedgerPlan, any Error>] = [:]
            for try await (i, result) in group { byIndex[i] = result }
            results = (0...queued.count).map { byIndex[$0]! }
        }
        let leaves = try await heldStore.leafCount()
        try await heldStore.database.close()
        return (results, groups.withLockedValue { $0 }, leaves)
    }

    @Test(arguments: Backend.allCases)
    func batchesThatQueueShareOneTransaction(_ backend: Backend) async throws {
        var a = SidecarStream(), b = SidecarStream()
        let first = self.batch(&a, count: 3)
        let queued = [self.batch(&a, count: 2), self.batch(&b, count: 4), self.batch(&a, count: 1)]
        let (results, groups, leaves) = try await self.run(backend, first: first, queued: queued)
        #expect(groups == [1, 3])
        let plans = try results.map { try $0.get() }
        #expect(plans.map(\.accepted.count) == [3, 2, 4, 1])
        let clean = plans.allSatisfy(\.findings.isEmpty)
        #expect(clean, "each batch saw the ones before it in its group: no gaps")
        let indexes = plans.flatMap { $0.records.map(\.leafIndex) }
        #expect(indexes == Array(0..<10))
        #expect(leaves == 10)
    }

    @Test(arguments: Backend.allCases)
    func aFailingBatchDoesNotFailItsGroup(_ backend: Backend) async throws {
        var a = SidecarStream(), b = SidecarStream(), c = SidecarStream()
        let first = self.batch(&a, count: 2)
        let queued = [self.batch(&b, count: 2), self.batch(&c, count: 2, poison: true), self.batch(&a, count: 2)]
        let (results, groups, leaves) = try await self.run(backend, first: first, queued: queued)
        #expect(groups == [1, 1, 1], "the group failed, then its batches went one by one")
        #expect((try? results[0].get())?.accepted.count == 2)
        #expect((try? results[1].get())?.accepted.count == 2)
        #expect((try? results[2].get()) == nil)
        #expect((try? results[3].get())?.accepted.count == 2)
        #expect(leaves == 6)
    }
}

private func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

@Suite struct LiveTailTests {
    @Test func textIsCutToTheLimitOnOneLine() {
        let tail = LiveTail(maxContentChars: 5)
        #expect(tail.shorten("abc") == "abc")
        #expect(tail.shorten("abcde") == "abcde")
        #expect(tail.shorten("abcdef") == "abcde…")
        #expect(LiveTail(maxContentChars: 6).shorten("a\nb\r\nc") == "a b  c")
        #expect(tail.shorten("日本語のテキスト") == "日本語のテ…")
        #expect(LiveTail(maxContentChars: 0).shorten("x") == "…")
    }
}
