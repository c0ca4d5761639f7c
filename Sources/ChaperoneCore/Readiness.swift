import Foundation

/// What a binary's `/readyz` reports: its listener is up, its start-up work is done, it is not
/// shutting down, and nothing is holding it back (a full audit spool, say).
public final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var isListening = false
    private var isDraining = false
    private var isStarted: Bool
    private var holds: Set<String> = []

    /// `waitsForStart`: not ready until `started()` too (start-up work such as opening storage).
    public init(waitsForStart: Bool = false) {
        self.isStarted = !waitsForStart
    }

    public var isReady: Bool { self.lock.withLock { self.isListening && self.isStarted && !self.isDraining && self.holds.isEmpty } }
    public func started() { self.lock.withLock { self.isStarted = true } }
    public func listening() { self.lock.withLock { self.isListening = true } }
    public func draining() { self.lock.withLock { self.isDraining = true } }

    /// Not ready while `reason` holds (`hold(reason, true)`), until it is released (`false`).
    public func hold(_ reason: String, _ holding: Bool) {
        self.lock.withLock {
            if holding { self.holds.insert(reason) } else { self.holds.remove(reason) }
        }
    }

    /// What keeps the binary from being ready, for the `/readyz` body.
    public var reasons: [String] {
        self.lock.withLock {
            var reasons = self.holds.sorted()
            if !self.isListening { reasons.append("not listening yet") }
            if !self.isStarted { reasons.append("starting") }
            if self.isDraining { reasons.append("draining") }
            return reasons
        }
    }
}
