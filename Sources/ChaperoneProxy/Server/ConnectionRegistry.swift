import NIOConcurrencyHelpers
import NIOCore

/// The open agent connections and whether each is between requests, so that shutdown can close
/// idle connections at once, let busy ones finish their exchange, and cut them after the grace
/// period; and so that keep-alive connections idle too long are closed.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: any Channel
        var busy: Bool
        var idleSince: ContinuousClock.Instant
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var draining = false
    }

    private let state = NIOLockedValueBox(State())

    var isDraining: Bool { self.state.withLockedValue { $0.draining } }
    var count: Int { self.state.withLockedValue { $0.entries.count } }

    /// Registers a connection; false when draining (the caller closes it at once).
    func opened(_ channel: any Channel) -> Bool {
        self.state.withLockedValue { state in
            guard !state.draining else { return false }
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel, busy: false, idleSince: .now)
            return true
        }
    }

    func closed(_ channel: any Channel) {
        self.state.withLockedValue { state in
            state.entries[ObjectIdentifier(channel)] = nil
        }
    }

    /// Marks the connection busy: a request head arrived, so draining lets it finish.
    func beganExchange(_ channel: any Channel) {
        self.state.withLockedValue { state in
            state.entries[ObjectIdentifier(channel)]?.busy = true
        }
    }

    /// Marks the connection idle again; returns false when it should close instead of waiting
    /// for another request.
    func endedExchange(_ channel: any Channel) -> Bool {
        self.state.withLockedValue { state in
            state.entries[ObjectIdentifier(channel)]?.busy = false
            state.entries[ObjectIdentifier(channel)]?.idleSince = .now
            return !state.draining
        }
    }

    /// Stops taking connections and closes those waiting between requests.
    func beginDraining() {
        let idle: [any Channel] = self.state.withLockedValue { state in
            state.draining = true
            return state.entries.values.filter { !$0.busy }.map(\.channel)
        }
        idle.forEach { $0.close(promise: nil) }
    }

    /// Closes connections that have waited longer than `limit` for their next request.
    func closeIdle(longerThan limit: Duration) {
        let now = ContinuousClock.now
        let stale: [any Channel] = self.state.withLockedValue { state in
            state.entries.values.filter { !$0.busy && now - $0.idleSince > limit }.map(\.channel)
        }
        stale.forEach { $0.close(promise: nil) }
    }

    /// Closes every connection, busy or not (the grace period is over).
    func closeAll() {
        let all = self.state.withLockedValue { $0.entries.values.map(\.channel) }
        all.forEach { $0.close(promise: nil) }
    }
}
