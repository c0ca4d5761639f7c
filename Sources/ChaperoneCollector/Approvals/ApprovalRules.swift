import ChaperoneCore
import Foundation

/// Why a vote was refused; each maps to its own API error.
enum VoteRefusal: Error, Equatable {
    /// The approval is no longer pending.
    case decided(ApprovalStatus)
    /// The approver is the initiator the request names.
    case selfApproval
    case alreadyVoted
    case notAnApprover
    case reasonRequired
}

/// The auto-deny patterns, compiled once. `NSRegularExpression` is immutable and safe to share.
struct AutoDenyRules: @unchecked Sendable {
    private let rules: [(expression: NSRegularExpression, rule: CollectorConfiguration.AutoDeny)]

    init(_ rules: [CollectorConfiguration.AutoDeny]) {
        // Patterns were compiled once already when the configuration was read.
        self.rules = rules.compactMap { rule in (try? NSRegularExpression(pattern: rule.pattern)).map { ($0, rule) } }
    }

    /// The first rule whose pattern occurs in the (masked) prompt.
    func match(_ prompt: String) -> CollectorConfiguration.AutoDeny? {
        let range = NSRange(prompt.startIndex..., in: prompt)
        return self.rules.first { $0.expression.firstMatch(in: prompt, range: range) != nil }?.rule
    }
}

/// How an approval moves: opened (pending, or denied at once), voted on, expired, cancelled.
/// Pure, so it is tested without a database; `ApprovalService` loads, applies and stores.
extension Approval {
    static func open(
        _ request: ApprovalRequest, requester: AuditEvent.Source, nowMicros: Int64, settings: CollectorConfiguration.Approvals,
        autoDeny: AutoDenyRules
    ) -> Approval {
        let hold = min(Int64(max(request.timeoutSeconds, 1)) * 1000, settings.maxTimeout.milliseconds)
        var approval = Approval(
            id: request.id, status: .pending, created: WallClock.rfc3339(microseconds: nowMicros),
            expires: WallClock.rfc3339(microseconds: nowMicros + hold * 1000), requiredApprovals: settings.requiredApprovals,
            requester: requester, request: request)
        if settings.oidc == nil {
            approval.end(.denied, reason: "no approvers are configured on the collector (approvals.oidc), so nobody can approve", at: nowMicros)
        } else if let rule = autoDeny.match(request.prompt) {
            approval.end(.denied, reason: "auto-denied: \(rule.reason)", at: nowMicros)
        }
        return approval
    }

    var expiresMicros: Int64 { WallClock.microseconds(rfc3339: self.expires) ?? 0 }

    /// Records a vote. A deny ends the approval; enough distinct approvals release it.
    mutating func vote(by approver: Approver, _ decision: Vote.Decision, reason: String?, nowMicros: Int64) throws(VoteRefusal) {
        guard approver.mayApprove else { throw .notAnApprover }
        if self.status == .pending, nowMicros >= self.expiresMicros { _ = self.expire(nowMicros: nowMicros) }
        guard self.status == .pending else { throw .decided(self.status) }
        guard !approver.initiated(self.request.initiator ?? self.requester.initiator) else { throw .selfApproval }
        guard !self.votes.contains(where: { $0.approver.lowercased() == approver.name.lowercased() }) else { throw .alreadyVoted }
        let reason = reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        if decision == .deny, reason?.isEmpty ?? true { throw .reasonRequired }
        self.votes.append(Vote(approver: approver.name, decision: decision, reason: reason, time: WallClock.rfc3339(microseconds: nowMicros)))
        switch decision {
        case .deny:
            self.end(.denied, reason: reason, at: nowMicros)
        case .approve:
            let approvers = self.votes.filter { $0.decision == .approve }.map(\.approver)
            if approvers.count >= self.requiredApprovals {
                self.end(.approved, reason: reason?.isEmpty == false ? reason : "approved by \(approvers.joined(separator: ", "))", at: nowMicros)
            }
        }
    }

    /// Ends a pending approval whose deadline passed; false if there was nothing to do.
    mutating func expire(nowMicros: Int64) -> Bool {
        guard self.status == .pending, nowMicros >= self.expiresMicros else { return false }
        let waited = (self.expiresMicros - (WallClock.microseconds(rfc3339: self.created) ?? self.expiresMicros)) / 1_000_000
        let approvals = self.votes.filter { $0.decision == .approve }.count
        let votes = approvals > 0 ? " (\(approvals) of \(self.requiredApprovals) approvals)" : ""
        self.end(.expired, reason: "nobody decided within \(waited)s\(votes)", at: nowMicros)
        return true
    }

    /// Ends a pending approval because the requester gave up; false if it was already decided.
    mutating func cancel(reason: String, nowMicros: Int64) -> Bool {
        guard self.status == .pending else { return false }
        self.end(.cancelled, reason: reason, at: nowMicros)
        return true
    }

    private mutating func end(_ status: ApprovalStatus, reason: String?, at micros: Int64) {
        self.status = status
        self.reason = reason
        self.decided = WallClock.rfc3339(microseconds: micros)
    }
}
