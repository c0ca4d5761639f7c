import Foundation
import NIOConcurrencyHelpers

/// Wakes long-polls when an approval changes in this process. Waiters wake at least every
/// `wait(upTo:)` interval anyway and look again, which is how changes made by another replica
/// (PostgreSQL) are seen.
final class ChangeSignal: Sendable {
    private let waiters = NIOLockedValueBox<[UUID: CheckedContinuation<Void, Never>]>([:])

    /// Returns on the next change, after `timeout`, or when the task is cancelled.
    func wait(upTo timeout: Duration) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                self.waiters.withLockedValue { $0[id] = continuation }
                Task {
                    try? await Task.sleep(for: timeout)
                    self.resume(id)
                }
            }
        } onCancel: {
            self.resume(id)
        }
    }

    func changed() {
        let all = self.waiters.withLockedValue { waiters in
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        for continuation in all { continuation.resume() }
    }

    private func resume(_ id: UUID) {
        self.waiters.withLockedValue { $0.removeValue(forKey: id) }?.resume()
    }
}
