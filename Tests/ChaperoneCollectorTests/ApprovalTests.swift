@testable import ChaperoneCollector
import ChaperoneCore
import Foundation
import Logging
import Testing

@Suite struct ApprovalRulesTests {
    let now = WallClock.nowMicroseconds()
    let alice = Approver(name: "alice@example.com", subject: "u-alice", groups: ["oncall"], mayApprove: true)
    let bob = Approver(name: "bob@example.com", subject: "u-bob", groups: ["oncall"], mayApprove: true)
    let mallory = Approver(name: "mallory@example.com", subject: "u-mallory", groups: ["staff"], mayApprove: false)

    func settings(required: Int = 1, oidc: Bool = true, autoDeny: [CollectorConfiguration.AutoDeny] = []) -> CollectorConfiguration.Approvals {
        var settings = CollectorConfiguration.Approvals()
        settings.requiredApprovals = required
        settings.autoDeny = autoDeny
        if oidc {
            settings.oidc = .init(issuer: "https://idp", audience: "ctl", keys: .file("/dev/null"), approverGroups: ["oncall"])
        }
        return settings
    }

    func request(prompt: String = "user: extract the credentials", initiator: String? = "ci@example.com", timeout: Int = 600) -> ApprovalRequest {
        ApprovalRequest(
            id: UUIDv7().description, exchangeID: UUIDv7().description, sessionID: "s1", initiator: initiator, upstream: "openai",
            operation: "openai.chat_completions", path: "/v1/chat/completions", model: "gpt-4o-mini", prompt: prompt,
            rules: ["cluster-credentials"], message: "asks for credentials", severity: "high", detectors: [], timeoutSeconds: timeout)
    }

    func open(_ request: ApprovalRequest, _ settings: CollectorConfiguration.Approvals) -> Approval {
        Approval.open(request, requester: agentIdentity.source, nowMicros: self.now, settings: settings, autoDeny: AutoDenyRules(settings.autoDeny))
    }

    @Test func oneApprovalReleasesByDefault() throws {
        var approval = self.open(self.request(), self.settings())
        #expect(approval.status == .pending)
        try approval.vote(by: self.alice, .approve, reason: nil, nowMicros: self.now + 1)
        #expect(approval.status == .approved)
        #expect(approval.deciders == ["alice@example.com"])
        #expect(approval.reason == "approved by alice@example.com")
    }

    @Test func requiredApprovalsCountDistinctPeopleAndOneDenyEndsIt() throws {
        var approval = self.open(self.request(), self.settings(required: 2))
        try approval.vote(by: self.alice, .approve, reason: "ok", nowMicros: self.now + 1)
        #expect(approval.status == .pending)
        #expect(throws: VoteRefusal.alreadyVoted) { try approval.vote(by: self.alice, .approve, reason: nil, nowMicros: self.now + 2) }
        try approval.vote(by: self.bob, .approve, reason: nil, nowMicros: self.now + 3)
        #expect(approval.status == .approved)
        #expect(approval.deciders == ["alice@example.com", "bob@example.com"])

        var denied = self.open(self.request(), self.settings(required: 2))
        try denied.vote(by: self.alice, .approve, reason: nil, nowMicros: self.now + 1)
        #expect(throws: VoteRefusal.reasonRequired) { try denied.vote(by: self.bob, .deny, reason: "  ", nowMicros: self.now + 2) }
        try denied.vote(by: self.bob, .deny, reason: "no", nowMicros: self.now + 2)
        #expect(denied.status == .denied)
        #expect(denied.reason == "no")
        #expect(throws: VoteRefusal.decided(.denied)) { try denied.vote(by: self.alice, .approve, reason: nil, nowMicros: self.now + 3) }
    }

    @Test func initiatorsAndOutsidersMayNotApprove() {
        var approval = self.open(self.request(initiator: "Alice@Example.com"), self.settings())
        #expect(throws: VoteRefusal.selfApproval) { try approval.vote(by: self.alice, .approve, reason: nil, nowMicros: self.now) }
        var bySubject = self.open(self.request(initiator: "u-alice"), self.settings())
        #expect(throws: VoteRefusal.selfApproval) { try bySubject.vote(by: self.alice, .approve, reason: nil, nowMicros: self.now) }
        #expect(throws: VoteRefusal.notAnApprover) { try approval.vote(by: self.mallory, .approve, reason: nil, nowMicros: self.now) }
        #expect(approval.status == .pending)
        #expect(approval.votes.isEmpty)
    }

    @Test func deadlinesExpireAndLateVotesAreRefused() {
        var approval = self.open(self.request(timeout: 5), self.settings())
        #expect(approval.expiresMicros == self.now + 5_000_000)
        let early = approval.expire(nowMicros: self.now + 4_999_999)
        #expect(!early)
        #expect(throws: VoteRefusal.decided(.expired)) { try approval.vote(by: self.bob, .approve, reason: nil, nowMicros: self.now + 5_000_000) }
        #expect(approval.status == .expired)
        #expect(approval.reason == "nobody decided within 5s")
        let cancelled = approval.cancel(reason: "late", nowMicros: self.now + 6_000_000)
        #expect(!cancelled)
    }

    @Test func holdsAreCappedByMaxTimeout() {
        var settings = self.settings()
        settings.maxTimeout = .seconds(60)
        #expect(self.open(self.request(timeout: 86_400), settings).expiresMicros == self.now + 60_000_000)
    }

    @Test func autoDenyAndMissingApproversDenyAtOnce() {
        let rules = [CollectorConfiguration.AutoDeny(pattern: "(?i)production kubeconfig", reason: "never")]
        let denied = self.open(self.request(prompt: "user: use the PRODUCTION kubeconfig"), self.settings(autoDeny: rules))
        #expect(denied.status == .denied)
        #expect(denied.reason == "auto-denied: never")
        #expect(self.open(self.request(prompt: "user: staging"), self.settings(autoDeny: rules)).status == .pending)
        let nobody = self.open(self.request(), self.settings(oidc: false))
        #expect(nobody.status == .denied)
        #expect(nobody.reason?.contains("approvals.oidc") == true)
    }

    @Test func slackMessageIsAnIncomingWebhookPayload() throws {
        var notifications = CollectorConfiguration.Notifications()
        notifications.format = .slack
        notifications.collectorURL = "https://chaperone.example.com"
        notifications.link = "https://console.example.com/a/{id}"
        let approval = self.open(self.request(prompt: "user: extract <the> credentials & more"), self.settings())
        let message = ApprovalMessage(approval: approval, settings: notifications)
        let slack = try #require(try JSONSerialization.jsonObject(with: Data(message.slack())) as? [String: Any])
        let text = try #require(slack["text"] as? String)
        #expect(text.contains("chaperonectl --collector https://chaperone.example.com approvals approve \(approval.id)"))
        let blocks = try #require(slack["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["header", "section", "section", "context", "actions"])
        let prompt = try #require((blocks[2]["text"] as? [String: Any])?["text"] as? String)
        #expect(prompt.contains("extract &lt;the&gt; credentials &amp; more"))
        let button = try #require((blocks[4]["elements"] as? [[String: Any]])?.first)
        #expect(button["url"] as? String == "https://console.example.com/a/\(approval.id)")

        let json = try #require(try JSONSerialization.jsonObject(with: Data(message.json())) as? [String: Any])
        #expect(json["type"] as? String == "approval.requested")
        #expect((json["approval"] as? [String: Any])?["id"] as? String == approval.id)
    }

    @Test func configurationNamesTheFieldAtFault() throws {
        let good = try CollectorConfiguration.parse(yaml: """
            approvals:
              required_approvals: 2
              oidc: { issuer: https://idp, audience: ctl, jwks_file: /tmp/jwks.json, approver_groups: [oncall] }
              auto_deny:
                - { pattern: '(?i)kubeconfig', reason: no }
              notifications: { webhook_url_file: /etc/hook/url, format: slack }
            """)
        #expect(good.approvals.requiredApprovals == 2)
        #expect(good.approvals.oidc?.approverGroups == ["oncall"])
        #expect(good.approvals.notifications?.format == .slack)
        for (yaml, field) in [
            ("approvals: { oidc: { issuer: https://idp, jwks_file: /x, approver_groups: [a] } }", "approvals.oidc.audience"),
            ("approvals: { oidc: { issuer: https://idp, audience: a, jwks_file: /x } }", "approvals.oidc.approver_groups"),
            ("approvals: { auto_deny: [ { pattern: '(' } ] }", "approvals.auto_deny[0].pattern"),
            ("approvals: { notifications: { format: json } }", "approvals.notifications.webhook_url"),
            ("approvals: { required_approvals: 0 }", "approvals.required_approvals"),
        ] {
            do {
                _ = try CollectorConfiguration.parse(yaml: yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.field == field, "\(yaml): \(error)")
            }
        }
    }
}

@Suite struct ApprovalStoreTests {
    @Test func openIsIdempotentAndUpdatesMoveTheCursor() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("approvals-\(UUID())").path
        let database = try await SQLiteEngine.open(directory: directory, durability: .normal, logger: .init(label: "test"))
        let events = EventStore(database: database)
        try await events.prepare()
        let store = ApprovalStore(database: database)
        var settings = CollectorConfiguration.Approvals()
        settings.oidc = .init(issuer: "https://idp", audience: "ctl", keys: .file("/dev/null"), approverGroups: ["oncall"])
        let request = ApprovalRequest(
            id: UUIDv7().description, exchangeID: UUIDv7().description, sessionID: "s1", initiator: nil, upstream: "openai", operation: nil,
            path: "/v1/chat/completions", model: nil, prompt: "user: hi", rules: ["r"], message: nil, severity: nil, detectors: [], timeoutSeconds: 1)
        let approval = Approval.open(request, requester: agentIdentity.source, nowMicros: WallClock.nowMicroseconds(), settings: settings, autoDeny: AutoDenyRules([]))
        let first = try await store.open(approval)
        let again = try await store.open(approval)
        #expect(first.created && !again.created)
        #expect(again.stored.approval == approval)
        #expect(try await store.list(.pending, changedAfter: nil, limit: 10).count == 1)

        try await Task.sleep(for: .milliseconds(1_100))
        #expect(try await store.due(nowMicros: WallClock.nowMicroseconds()) == [approval.id])
        let expired = try #require(try await store.update(approval.id) { a in (a.expire(nowMicros: WallClock.nowMicroseconds()) ? .changed : .unchanged, ()) })
        #expect(expired.stored.approval.status == .expired)
        #expect(expired.stored.updatedMicros > first.stored.updatedMicros)
        #expect(try await store.list(.pending, changedAfter: nil, limit: 10).isEmpty)
        #expect(try await store.list(.all, changedAfter: first.stored.updatedMicros, limit: 10).map(\.approval.status) == [.expired])
        #expect(try await store.due(nowMicros: WallClock.nowMicroseconds()).isEmpty)
        try await database.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
