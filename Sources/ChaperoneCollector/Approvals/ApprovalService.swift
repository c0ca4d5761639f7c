import ChaperoneCore
import Foundation
import Logging

/// Why an approvals call was refused, with the HTTP answer it becomes.
struct ApprovalFailure: Error {
    var status: Int
    var code: String
    var message: String

    static func notFound(_ id: String) -> ApprovalFailure {
        ApprovalFailure(status: 404, code: "not_found", message: "no approval \(id)")
    }
}

/// Approvals: opened by sidecars, waited on by them, decided by approvers, expired when nobody
/// decides in time, cancelled when the agent gives up. Each step is stored (`ApprovalStore`),
/// wakes the long-polls, and is written as an `approval.*` event in the collector's own
/// hash-chained stream, so decisions are part of the tamper-evident log. A new pending approval
/// is announced to the notification webhook.
final class ApprovalService: Sendable {
    let store: ApprovalStore
    let settings: CollectorConfiguration.Approvals
    let approvers: ApproverVerifier?
    private let autoDeny: AutoDenyRules
    private let commits: GroupCommit
    private let identity: PodIdentity
    private let notifier: ApprovalNotifier?
    private let tail: LiveTail?
    private let output: StandardOutput
    private let metrics: CollectorMetrics
    private let logger: Logger
    private let signal = ChangeSignal()

    /// How often a long-poll looks at the store even without a local change (other replicas).
    static let recheck: Duration = .seconds(1)
    static let maxWaitSeconds = 60

    init(
        store: ApprovalStore, settings: CollectorConfiguration.Approvals, approvers: ApproverVerifier?, commits: GroupCommit,
        identity: PodIdentity, notifier: ApprovalNotifier?, tail: LiveTail?, output: StandardOutput, metrics: CollectorMetrics, logger: Logger
    ) {
        self.store = store
        self.settings = settings
        self.approvers = approvers
        self.autoDeny = AutoDenyRules(settings.autoDeny)
        self.commits = commits
        self.identity = identity
        self.notifier = notifier
        self.tail = tail
        self.output = output
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: Sidecars

    /// Opens an approval for a sidecar's held request (or returns the one it opened before
    /// under the same id).
    func open(_ request: ApprovalRequest, by pod: PodIdentity) async throws -> ApprovalStore.Stored {
        try Self.validate(request)
        var requester = pod.source
        requester.initiator = request.initiator
        let approval = Approval.open(request, requester: requester, nowMicros: WallClock.nowMicroseconds(), settings: self.settings, autoDeny: self.autoDeny)
        let (stored, created) = try await self.store.open(approval)
        guard created else {
            guard Self.belongs(stored.approval, to: pod) else {
                throw ApprovalFailure(status: 409, code: "id_in_use", message: "approval id \(request.id) belongs to another pod")
            }
            return stored
        }
        self.metrics.approval("opened")
        self.logger.info("approval.opened", metadata: [
            "approval.id": "\(approval.id)", "status": "\(approval.status.rawValue)", "namespace": "\(pod.namespace)", "pod": "\(pod.pod ?? "")",
            "rules": "\(request.rules.joined(separator: ","))", "initiator": "\(request.initiator ?? "")", "expires": "\(approval.expires)",
        ])
        var events = [self.event(.approvalRequested, approval, outcome: "pending")]
        if approval.status == .denied {
            self.metrics.approval("denied")
            self.logger.info("approval.denied", metadata: ["approval.id": "\(approval.id)", "reason": "\(approval.reason ?? "")"])
            events.append(self.event(.approvalDenied, approval, outcome: "denied"))
        } else {
            self.notifier?.announce(approval)
        }
        await self.changed(events)
        return stored
    }

    /// The sidecar that opened an approval (its pod, by uid where the token names one).
    static func belongs(_ approval: Approval, to pod: PodIdentity) -> Bool {
        if let uid = approval.requester.podUID, let other = pod.podUID { return uid == other }
        return approval.requester.namespace == pod.namespace && approval.requester.pod == pod.pod
    }

    /// The requester gave up: its agent disconnected, or the sidecar is stopping.
    func cancel(_ id: String, by pod: PodIdentity, reason: String) async throws -> ApprovalStore.Stored {
        let reason = String(reason.prefix(500))
        guard let (stored, cancelled) = try await self.store.update(id, { approval in
            try Self.checkOwner(approval, pod)
            return approval.cancel(reason: reason, nowMicros: WallClock.nowMicroseconds()) ? (.changed, true) : (.unchanged, false)
        }) else { throw ApprovalFailure.notFound(id) }
        if cancelled {
            self.metrics.approval("cancelled")
            self.logger.info("approval.cancelled", metadata: ["approval.id": "\(id)", "reason": "\(reason)"])
            await self.changed([self.event(.approvalCancelled, stored.approval, outcome: "cancelled")])
        }
        return stored
    }

    private static func checkOwner(_ approval: Approval, _ pod: PodIdentity?) throws(ApprovalFailure) {
        guard let pod, !Self.belongs(approval, to: pod) else { return }
        throw ApprovalFailure(status: 403, code: "not_yours", message: "approval \(approval.id) was opened by another pod")
    }

    // MARK: Approvers

    func vote(_ id: String, by approver: Approver, _ decision: Approval.Vote.Decision, reason: String?) async throws -> ApprovalStore.Stored {
        let outcome: (stored: ApprovalStore.Stored, result: Result<ApprovalStatus, VoteRefusal>)?
        outcome = try await self.store.update(id) { approval in
            let before = approval
            do throws(VoteRefusal) {
                try approval.vote(by: approver, decision, reason: reason, nowMicros: WallClock.nowMicroseconds())
                return (.changed, .success(before.status))
            } catch {
                // A deadline that passed is stored even though the vote is refused.
                return (approval.status != before.status ? .changed : .unchanged, .failure(error))
            }
        }
        guard let outcome else { throw ApprovalFailure.notFound(id) }
        let approval = outcome.stored.approval
        switch outcome.result {
        case .failure(let refusal):
            self.logger.warning("approval.vote_refused", metadata: [
                "approval.id": "\(id)", "approver": "\(approver.name)", "decision": "\(decision.rawValue)", "refusal": "\(refusal)",
            ])
            if case .decided(.expired) = refusal, approval.status == .expired {
                await self.changed([self.event(.approvalTimedOut, approval, outcome: "timed_out")])
            }
            throw Self.failure(refusal, approval: approval, approver: approver)
        case .success:
            self.metrics.approval("voted")
            self.logger.info("approval.voted", metadata: [
                "approval.id": "\(id)", "approver": "\(approver.name)", "decision": "\(decision.rawValue)", "status": "\(approval.status.rawValue)",
            ])
            var events = [self.event(.approvalVoted, approval, outcome: approval.status == .pending ? "pending" : nil, voter: approver.name)]
            switch approval.status {
            case .approved:
                self.metrics.approval("approved")
                events.append(self.event(.approvalApproved, approval, outcome: "approved"))
            case .denied:
                self.metrics.approval("denied")
                events.append(self.event(.approvalDenied, approval, outcome: "denied"))
            default:
                break
            }
            await self.changed(events)
            return outcome.stored
        }
    }

    private static func failure(_ refusal: VoteRefusal, approval: Approval, approver: Approver) -> ApprovalFailure {
        switch refusal {
        case .notAnApprover:
            ApprovalFailure(status: 403, code: "not_an_approver", message: "\(approver.name) is in none of the approver groups (approvals.oidc.approver_groups)")
        case .selfApproval:
            ApprovalFailure(status: 403, code: "self_approval", message: "\(approver.name) started this agent run (initiator) and may not approve its requests; ask another approver")
        case .alreadyVoted:
            ApprovalFailure(status: 409, code: "already_voted", message: "\(approver.name) has already voted on approval \(approval.id)")
        case .reasonRequired:
            ApprovalFailure(status: 400, code: "reason_required", message: "a deny needs a reason: the agent is told it")
        case .decided(let status):
            ApprovalFailure(status: 409, code: "already_decided", message: "approval \(approval.id) is \(status.rawValue) already\(approval.reason.map { " (\($0))" } ?? "")")
        }
    }

    // MARK: Reading and waiting

    /// The approval; if pending, waits up to `seconds` for it to be decided. With `pod`, only
    /// the pod that opened it may read it.
    func get(_ id: String, wait seconds: Int, openedBy pod: PodIdentity? = nil) async throws -> ApprovalStore.Stored {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            guard var stored = try await self.store.get(id) else { throw ApprovalFailure.notFound(id) }
            try Self.checkOwner(stored.approval, pod)
            if stored.approval.status == .pending, WallClock.nowMicroseconds() >= stored.approval.expiresMicros {
                stored = try await self.expire(id) ?? stored
            }
            let remaining = deadline - ContinuousClock.now
            if stored.approval.status.isDecided || remaining <= .zero || Task.isCancelled { return stored }
            await self.signal.wait(upTo: min(remaining, Self.recheck))
        }
    }

    /// Approvals by status; with `changedAfter`, those written since that cursor, waiting up to
    /// `seconds` for one. Returns the rows and the cursor to follow on with.
    func list(_ filter: ApprovalStore.Filter, changedAfter: Int64?, wait seconds: Int, limit: Int) async throws -> (rows: [ApprovalStore.Stored], cursor: Int64) {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let rows = try await self.store.list(filter, changedAfter: changedAfter, limit: limit)
            let remaining = deadline - ContinuousClock.now
            if let changedAfter {
                if !rows.isEmpty || remaining <= .zero || Task.isCancelled { return (rows, rows.map(\.updatedMicros).max() ?? changedAfter) }
            } else {
                return (rows, try await self.store.latestCursor())
            }
            await self.signal.wait(upTo: min(remaining, Self.recheck))
        }
    }

    /// Ends pending approvals whose deadline passed (the background sweep).
    func expireDue() async throws {
        for id in try await self.store.due(nowMicros: WallClock.nowMicroseconds()) {
            _ = try await self.expire(id)
        }
    }

    private func expire(_ id: String) async throws -> ApprovalStore.Stored? {
        guard let (stored, expired) = try await self.store.update(id, { approval in
            approval.expire(nowMicros: WallClock.nowMicroseconds()) ? (.changed, true) : (.unchanged, false)
        }) else { return nil }
        if expired {
            self.metrics.approval("expired")
            self.logger.info("approval.expired", metadata: ["approval.id": "\(id)", "reason": "\(stored.approval.reason ?? "")"])
            await self.changed([self.event(.approvalTimedOut, stored.approval, outcome: "timed_out")])
        }
        return stored
    }

    // MARK: Steps

    /// Wakes the long-polls and writes the step's events to the log.
    private func changed(_ events: [AuditEvent]) async {
        self.signal.changed()
        guard !events.isEmpty else { return }
        do {
            let now = WallClock.nowMicroseconds()
            let plan = try await self.commits.append(IngestBatch(events: [], identity: self.identity, receivedMicros: now, ownEvents: events))
            if let tail = self.tail { self.output.write(lines: plan.records.map(tail.line(for:))) }
        } catch {
            // The approval itself is stored; only its record in the log is missing.
            self.logger.error("approval.log_failed", metadata: [
                "error": "\(error)", "kinds": "\(events.map(\.kind.rawValue).joined(separator: ","))",
                "approval.id": "\(events.first?.decision?.approvalID ?? "")",
            ])
        }
    }

    private func event(_ kind: AuditEvent.Kind, _ approval: Approval, outcome: String?, voter: String? = nil) -> AuditEvent {
        let request = approval.request
        var decision = AuditEvent.Decision(
            action: "require_approval", rules: request.rules, approvalID: approval.id, approvalOutcome: outcome ?? approval.status.rawValue,
            severity: request.severity, message: request.message)
        if let voter {
            let vote = approval.votes.last { $0.approver == voter }
            decision.approvers = [voter]
            decision.approvalReason = vote.map { "\($0.decision.rawValue)\($0.reason.map { ": \($0)" } ?? "")" }
        } else if approval.status.isDecided {
            decision.approvalReason = approval.reason
            let deciders = approval.deciders
            if !deciders.isEmpty { decision.approvers = deciders }
        }
        return AuditEvent(kind: kind, sessionID: request.sessionID, exchangeID: request.exchangeID, source: approval.requester, decision: decision)
    }

    private static func validate(_ request: ApprovalRequest) throws(ApprovalFailure) {
        func bad(_ message: String) -> ApprovalFailure { ApprovalFailure(status: 400, code: "bad_request", message: message) }
        guard UUID(uuidString: request.id) != nil else { throw bad("id must be a UUID") }
        guard !request.rules.isEmpty else { throw bad("rules must name the policy rules that require the approval") }
        guard request.prompt.count <= ApprovalRequest.maxPromptCharacters else {
            throw bad("prompt is longer than \(ApprovalRequest.maxPromptCharacters) characters; send the masked prompt cut to that")
        }
        guard request.timeoutSeconds >= 1 else { throw bad("timeout_seconds must be at least 1") }
        guard !request.sessionID.isEmpty, !request.exchangeID.isEmpty else { throw bad("session_id and exchange_id are required") }
    }
}
