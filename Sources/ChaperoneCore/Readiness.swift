import Foundation

/// What a binary's `/readyz` reports: its listener is up and it is not shutting down.
public final class Readiness: @unchecked Sendable {
    private let lock = NSLock()
    private var isListening = false
    private var isDraining = false

    public init() {}

    public var isReady: Bool { self.lock.withLock { self.isListening && !self.isDraining } }
    public func listening() { self.lock.withLock { self.isListening = true } }
    public func draining() { self.lock.withLock { self.isDraining = true } }
}
