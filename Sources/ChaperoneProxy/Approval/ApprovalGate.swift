import ChaperoneCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Holds a request that policy marks `require_approval` until people decide it: opens an
/// approval at the collector (the masked prompt only), long-polls it, and says what to do.
/// Approved: forward. Denied, timed out, or not openable: answer the agent with the reason.
/// The agent hanging up cancels the approval. Each step is recorded by `record`.
struct ApprovalGate: Sendable {
    let client: ApprovalClient
    let timeout: ConfigDuration
    let logger: Logger

    /// Longest single long-poll; the sidecar re-checks its own state (agent gone, draining) between them.
    static let pollSeconds = 20
    /// How long opening may keep failing (collector unreachable) before the agent is told.
    static let openPatience: Duration = .seconds(30)

    enum Verdict {
        case approved(Approval)
        /// Answer the agent with this error; `approval` is what the collector last said, if
        /// anything; `outcome` is the `decision.approval_outcome` recorded.
        case refused(ProxyError, Approval?, outcome: String)
        /// The agent disconnected: nothing to answer.
        case agentLeft(Approval?)
    }

    /// A step to record: the event kind, the approval as last known, the outcome and its reason.
    typealias Recorder = @Sendable (AuditEvent.Kind, String, _ outcome: String, _ reason: String?, _ approvers: [String]?) async -> Void

    func hold(_ request: ApprovalRequest, connection: ConnectionContext, record: Recorder) async -> Verdict {
        let watch = DisconnectWatch(connection.closed)
        let started = ContinuousClock.now
        let deadline = started + self.timeout.duration
        var logger = self.logger
        logger[metadataKey: "approval.id"] = "\(request.id)"
        await record(.approvalRequested, request.id, "pending", request.message, nil)
        logger.info("approval.holding", metadata: ["rules": "\(request.rules.joined(separator: ","))", "timeout": "\(self.timeout)"])

        // Open it; the collector may be restarting, so transient failures are retried for a while.
        var approval: Approval
        var backoff: Duration = .milliseconds(200)
        let openBy = min(deadline, started + Self.openPatience)
        while true {
            if watch.agentLeft { return await self.leave(request.id, nil, watch: watch, record: record, logger: logger) }
            let attempt = await watch.run { () async throws(ApprovalClient.Failure) -> Approval in try await self.client.open(request) }
            switch attempt {
            case .success(let opened):
                approval = opened
            case .failure(let failure) where failure.isTransient && ContinuousClock.now + backoff < openBy:
                logger.warning("approval.open_retry", metadata: ["error": "\(failure)"])
                await watch.sleep(backoff)
                backoff = min(backoff * 2, .seconds(2))
                continue
            case .failure(let failure):
                if watch.agentLeft { return await self.leave(request.id, nil, watch: watch, record: record, logger: logger) }
                logger.error("approval.unavailable", metadata: ["error": "\(failure)"])
                return .refused(.approvalUnavailable(request: request, detail: failure.description), nil, outcome: "unavailable")
            }
            break
        }

        backoff = .milliseconds(200)
        while true {
            switch approval.status {
            case .approved:
                logger.info("approval.approved", metadata: ["approvers": "\(approval.deciders.joined(separator: ","))"])
                await record(.approvalApproved, approval.id, "approved", approval.reason, approval.deciders)
                return .approved(approval)
            case .denied:
                logger.info("approval.denied", metadata: ["approvers": "\(approval.deciders.joined(separator: ","))", "reason": "\(approval.reason ?? "")"])
                await record(.approvalDenied, approval.id, "denied", approval.reason, approval.deciders.isEmpty ? nil : approval.deciders)
                return .refused(.approvalDenied(approval), approval, outcome: "denied")
            case .expired:
                logger.info("approval.timed_out", metadata: ["reason": "\(approval.reason ?? "")"])
                await record(.approvalTimedOut, approval.id, "timed_out", approval.reason, nil)
                return .refused(.approvalTimedOut(approval.request, id: approval.id, after: self.timeout), approval, outcome: "timed_out")
            case .cancelled:
                await record(.approvalCancelled, approval.id, "cancelled", approval.reason, nil)
                return .refused(.approvalCancelled(approval), approval, outcome: "cancelled")
            case .pending:
                break
            }
            if watch.agentLeft { return await self.leave(approval.id, approval, watch: watch, record: record, logger: logger) }
            if connection.isDraining {
                await self.cancelQuietly(approval.id, reason: "the sidecar is shutting down", logger: logger)
                await record(.approvalCancelled, approval.id, "cancelled", "the sidecar is shutting down", nil)
                return .refused(.shuttingDown, approval, outcome: "cancelled")
            }
            let remaining = deadline - ContinuousClock.now
            // Past the deadline the collector has expired it (or does so on this read); a few
            // seconds more cover the two clocks.
            let late = remaining <= .zero
            if late, ContinuousClock.now > deadline + .seconds(5) {
                logger.info("approval.timed_out", metadata: ["reason": "no answer from the collector at the deadline"])
                await record(.approvalTimedOut, approval.id, "timed_out", "not decided within \(self.timeout) (the collector did not answer at the deadline)", nil)
                return .refused(.approvalTimedOut(approval.request, id: approval.id, after: self.timeout), approval, outcome: "timed_out")
            }
            let seconds = late ? 1 : max(1, min(Self.pollSeconds, Int((remaining / .seconds(1)).rounded(.up))))
            let id = approval.id
            switch await watch.run({ () async throws(ApprovalClient.Failure) -> Approval in try await self.client.wait(id, seconds: seconds) }) {
            case .success(let latest):
                approval = latest
                backoff = .milliseconds(200)
            case .failure(let failure) where failure.isTransient:
                if !watch.agentLeft {
                    logger.warning("approval.poll_retry", metadata: ["error": "\(failure)"])
                    await watch.sleep(backoff)
                    backoff = min(backoff * 2, .seconds(2))
                }
            case .failure(let failure):
                logger.error("approval.unavailable", metadata: ["error": "\(failure)"])
                await self.cancelQuietly(approval.id, reason: "the sidecar lost track of it: \(failure)", logger: logger)
                return .refused(.approvalUnavailable(request: request, detail: failure.description), approval, outcome: "unavailable")
            }
        }
    }

    /// The agent hung up: cancel the approval so nobody decides a request no one waits for.
    private func leave(_ id: String, _ approval: Approval?, watch: DisconnectWatch, record: Recorder, logger: Logger) async -> Verdict {
        let reason = "the agent disconnected while waiting"
        logger.info("approval.cancelled", metadata: ["reason": "\(reason)"])
        await self.cancelQuietly(id, reason: reason, logger: logger)
        await record(.approvalCancelled, id, "cancelled", reason, nil)
        return .agentLeft(approval)
    }

    private func cancelQuietly(_ id: String, reason: String, logger: Logger) async {
        for attempt in 0..<3 {
            do throws(ApprovalClient.Failure) {
                _ = try await self.client.cancel(id, reason: reason)
                return
            } catch {
                // Not opened yet (404) or already decided: nothing left to cancel.
                if case .refused = error { return }
                if attempt == 2 { logger.warning("approval.cancel_failed", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
    }
}

/// Whether the agent's connection closed while its request is held; a call under way when it
/// closes is cancelled.
final class DisconnectWatch: Sendable {
    private struct State {
        var gone = false
        var cancel: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    init(_ closed: EventLoopFuture<Void>) {
        closed.whenComplete { _ in
            let cancel = self.state.withLockedValue { state in
                state.gone = true
                return state.cancel
            }
            cancel?()
        }
    }

    var agentLeft: Bool { self.state.withLockedValue { $0.gone } }

    /// Runs `body`, cancelled if the agent leaves meanwhile.
    func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) async -> Result<T, E> {
        let task = Task { () async -> Result<T, E> in
            do throws(E) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        }
        let gone = self.state.withLockedValue { state -> Bool in
            state.cancel = { task.cancel() }
            return state.gone
        }
        if gone { task.cancel() }
        let result = await task.value
        self.state.withLockedValue { $0.cancel = nil }
        return result
    }

    func sleep(_ duration: Duration) async {
        _ = await self.run { () async throws(CancellationError) -> Void in
            do {
                try await Task.sleep(for: duration)
            } catch {
                throw CancellationError()
            }
        }
    }
}
