import Foundation

/// What a binary's `/readyz` reports: its listener is up, its start-up work is done and it is
/// not shutting down.
public final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var isListening = false
    private var isDraining = false
    private var isStarted: Bool

    /// `waitsForStart`: not ready until `started()` too (start-up work such as opening storage).
    public init(waitsForStart: Bool = false) {
        self.isStarted = !waitsForStart
    }

    public var isReady: Bool { self.lock.withLock { self.isListening && self.isStarted && !self.isDraining } }
    public func started() { self.lock.withLock { self.isStarted = true } }
    public func listening() { self.lock.withLock { self.isListening = true } }
    public func draining() { self.lock.withLock { self.isDraining = true } }
}
