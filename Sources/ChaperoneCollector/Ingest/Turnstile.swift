import NIOConcurrencyHelpers

/// Lets at most `permits` tasks at a time through, in arrival order: one for a connection (the
/// writer, or one reader), a few for CPU-bound work. (An actor alone would not do for a
/// connection: it lets another call in at every `await` inside a transaction.)
final class Turnstile: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: NIOLockedValueBox<State>

    init(permits: Int = 1) {
        precondition(permits > 0)
        self.state = NIOLockedValueBox(State(free: permits))
    }

    func run<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let enter = self.state.withLockedValue { state -> Bool in
                guard state.free > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if enter { continuation.resume() }
        }
        defer {
            let next = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard !state.waiters.isEmpty else {
                    state.free += 1
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
