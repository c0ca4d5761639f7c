import NIOConcurrencyHelpers

/// Writes ingest batches to the store, several per transaction when they queue up.
///
/// The first batch to arrive while nothing is being written leads: it takes every batch waiting
/// (up to `maxEvents`) and stores them together in one transaction, so one commit and one sync to
/// disk serve them all. Batches that arrive meanwhile wait; when the leader is done it wakes each
/// of its group with its own answer and hands the lead to the oldest batch still waiting. Nothing
/// waits for company: an idle collector writes a lone batch at once, a busy one writes bigger
/// transactions instead of queueing more of them.
///
/// A group is all or nothing; if one fails, its batches are written again one by one, so one
/// bad batch never fails its neighbours.
final class GroupCommit: Sendable {
    private enum Turn {
        case done(Result<LedgerPlan, any Error>)
        case lead
    }

    private struct Waiter {
        var batch: IngestBatch
        var continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var leading = false
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
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let lead = self.state.withLockedValue { state -> Bool in
                if state.leading {
                    state.waiting.append(Waiter(batch: batch, continuation: continuation))
                    return false
                }
                state.leading = true
                return true
            }
            if lead { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .done(let result):
            return try result.get()
        case .lead:
            let followers = self.state.withLockedValue { state -> [Waiter] in
                var events = batch.events.count
                var taken = 0
                while taken < state.waiting.count, events + state.waiting[taken].batch.events.count <= self.maxEvents {
                    events += state.waiting[taken].batch.events.count
                    taken += 1
                }
                defer { state.waiting.removeFirst(taken) }
                return Array(state.waiting.prefix(taken))
            }
            let results = await self.write([batch] + followers.map(\.batch))
            for (follower, result) in zip(followers, results.dropFirst()) {
                follower.continuation.resume(returning: .done(result))
            }
            self.state.withLockedValue { state in
                if state.waiting.isEmpty {
                    state.leading = false
                } else {
                    state.waiting.removeFirst().continuation.resume(returning: .lead)
                }
            }
            return try results[0].get()
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
