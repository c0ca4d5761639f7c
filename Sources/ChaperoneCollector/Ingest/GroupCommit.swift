import NIOConcurrencyHelpers

/// Writes ingest batches to the store, several per transaction when they queue up.
///
/// Batches join a queue. One writer task drains it: it takes every batch waiting (up to
/// `maxEvents`) and stores them together in one transaction, so one commit and one sync to disk
/// serve them all, answers each with its own result, and goes straight on with whatever queued
/// meanwhile. It runs on the store's writer thread where there is one, so the next transaction
/// never waits for a free thread in Swift's shared pool (busy parsing the next batches). Nothing
/// waits for company: an idle collector writes a lone batch at once, a busy one writes bigger
/// transactions instead of queueing more of them. The task ends when the queue is empty and the
/// next batch starts another.
///
/// A group is all or nothing; if one fails, its batches are written again one by one, so one
/// bad batch never fails its neighbours.
final class GroupCommit: Sendable {
    private struct Waiter {
        var batch: IngestBatch
        var continuation: CheckedContinuation<Result<LedgerPlan, any Error>, Never>
    }

    private struct State {
        var writing = false
        var waiting: [Waiter] = []
    }

    private let state = NIOLockedValueBox(State())
    private let store: EventStore
    private let planner: LedgerPlanner
    private let maxEvents: Int
    private let groupSizes: (@Sendable (Int) -> Void)?

    /// `groupSizes` hears how many batches each committed transaction carried.
    init(store: EventStore, planner: LedgerPlanner, maxEvents: Int = 10_000, groupSizes: (@Sendable (Int) -> Void)? = nil) {
        self.store = store
        self.planner = planner
        self.maxEvents = maxEvents
        self.groupSizes = groupSizes
    }

    /// Batches waiting for a transaction.
    var waitingCount: Int { self.state.withLockedValue { $0.waiting.count } }

    func append(_ batch: IngestBatch) async throws -> LedgerPlan {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<LedgerPlan, any Error>, Never>) in
            let startWriter = self.state.withLockedValue { state -> Bool in
                state.waiting.append(Waiter(batch: batch, continuation: continuation))
                defer { state.writing = true }
                return !state.writing
            }
            if startWriter {
                Task(executorPreference: self.store.database.writerExecutor) { await self.drain() }
            }
        }
        return try result.get()
    }

    private func drain() async {
        while let group = self.nextGroup() {
            let results = await self.write(group.map(\.batch))
            for (waiter, result) in zip(group, results) {
                waiter.continuation.resume(returning: result)
            }
        }
    }

    /// The oldest waiting batches, as many as fit in `maxEvents` (at least one); nil, and the
    /// writer stops, when none wait.
    private func nextGroup() -> [Waiter]? {
        self.state.withLockedValue { state -> [Waiter]? in
            guard !state.waiting.isEmpty else {
                state.writing = false
                return nil
            }
            var events = state.waiting[0].batch.events.count
            var taken = 1
            while taken < state.waiting.count, events + state.waiting[taken].batch.events.count <= self.maxEvents {
                events += state.waiting[taken].batch.events.count
                taken += 1
            }
            defer { state.waiting.removeFirst(taken) }
            return Array(state.waiting.prefix(taken))
        }
    }

    private func write(_ batches: [IngestBatch]) async -> [Result<LedgerPlan, any Error>] {
        do {
            let plans = try await self.store.append(batches, planner: self.planner)
            self.groupSizes?(batches.count)
            return plans.map { .success($0) }
        } catch {
            guard batches.count > 1 else { return [.failure(error)] }
        }
        var results: [Result<LedgerPlan, any Error>] = []
        for batch in batches {
            do {
                results.append(.success(try await self.store.append(batch, planner: self.planner)))
                self.groupSizes?(1)
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}
