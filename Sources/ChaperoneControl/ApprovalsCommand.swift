import ArgumentParser
import ChaperoneCore
import Foundation

/// `chaperonectl approvals`: see and decide the requests policy holds for a person's approval.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, show, approve, deny and watch requests held for a person's approval.",
        discussion: """
            Approvers authenticate with an OIDC ID token from the organisation's identity provider (the one \
            the collector's approvals.oidc names); pass it with --token-file or CHAPERONE_TOKEN. Reader tokens \
            may list and show, not decide. You may not approve a request whose initiator is you.

            Examples:
              chaperonectl approvals list
              chaperonectl approvals show 0193...
              chaperonectl approvals approve 0193... --reason "reviewed: read-only kubectl"
              chaperonectl approvals deny 0193... --reason "no production credentials in prompts"
              chaperonectl approvals watch
            """,
        subcommands: [List.self, Show.self, Approve.self, Deny.self, Watch.self])

    struct Answer: Decodable {
        var approval: Approval
    }

    struct Page: Decodable {
        var approvals: [Approval]
        var cursor: String
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approvals, newest first (pending ones by default).")

        @OptionGroup var collector: CollectorOptions
        @Option(help: "pending, decided or all.") var status: String = "pending"
        @Option(help: "At most this many.") var limit: Int = 50
        @Option(help: "table or json (one JSON object per line).") var output: OutputFormat = .table

        func run() async throws {
            guard ["pending", "decided", "all"].contains(self.status) else { throw ValidationError("--status must be pending, decided or all") }
            try await CollectorClient.with(self.collector) { client in
                let parameters = [("status", Optional(self.status)), ("limit", String(self.limit))]
                switch self.output {
                case .json:
                    try printJSONLines(try await client.raw("/v1/approvals", parameters), key: "approvals")
                case .table:
                    let page: Page = try await client.get("/v1/approvals", parameters)
                    print(ApprovalText.header)
                    for approval in page.approvals { print(ApprovalText.row(approval)) }
                    if page.approvals.isEmpty { print("(no \(self.status == "all" ? "" : "\(self.status) ")approvals)") }
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One approval in full: who asks, the masked prompt, the rules, the votes.")

        @OptionGroup var collector: CollectorOptions
        @Argument(help: "The approval id.") var id: String
        @Option(help: "table or json.") var output: OutputFormat = .table

        func run() async throws {
            try await CollectorClient.with(self.collector) { client in
                switch self.output {
                case .json:
                    print(String(decoding: try await client.raw("/v1/approvals/\(self.id)"), as: UTF8.self))
                case .table:
                    let answer: Answer = try await client.get("/v1/approvals/\(self.id)")
                    print(ApprovalText.details(answer.approval))
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a held request (it is forwarded once enough approvers agree).")

        @OptionGroup var collector: CollectorOptions
        @Argument(help: "The approval id.") var id: String
        @Option(help: "Why (recorded, and shown to the agent's operator).") var reason: String?

        func run() async throws {
            try await ApprovalsCommand.decide(self.collector, id: self.id, "approve", reason: self.reason)
        }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a held request; the agent gets an error with your reason.")

        @OptionGroup var collector: CollectorOptions
        @Argument(help: "The approval id.") var id: String
        @Option(help: "Why (required: the agent is told).") var reason: String

        func run() async throws {
            try await ApprovalsCommand.decide(self.collector, id: self.id, "deny", reason: self.reason)
        }
    }

    static func decide(_ options: CollectorOptions, id: String, _ verb: String, reason: String?) async throws {
        try await CollectorClient.with(options) { client in
            let answer: Answer = try await client.post("/v1/approvals/\(id)/\(verb)", json: reason.map { ["reason": $0] } ?? [:])
            let approval = answer.approval
            let tally = approval.votes.filter { $0.decision == .approve }.count
            switch approval.status {
            case .pending: print("\(approval.id): your \(verb) is recorded; \(tally) of \(approval.requiredApprovals) approvals so far, still pending")
            default: print("\(approval.id): \(approval.status.rawValue)\(approval.reason.map { " (\($0))" } ?? "")")
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow approvals as they are opened and decided, until interrupted.",
            discussion: "Prints one line per change; pending ones include the commands to decide them.")

        @OptionGroup var collector: CollectorOptions
        @Option(help: "pending, decided or all.") var status: String = "all"
        @Flag(help: "Also print the approvals that are pending now, before following.") var backlog = false
        @Option(help: "table or json (one JSON object per line).") var output: OutputFormat = .table

        func run() async throws {
            guard ["pending", "decided", "all"].contains(self.status) else { throw ValidationError("--status must be pending, decided or all") }
            try await CollectorClient.with(self.collector) { client in
                let start: Page = try await client.get("/v1/approvals", [("status", "pending"), ("limit", "1000")])
                if self.backlog { for approval in start.approvals.reversed() { self.emit(approval) } }
                var cursor = start.cursor
                while !Task.isCancelled {
                    let page: Page
                    do {
                        page = try await client.get(
                            "/v1/approvals", [("status", self.status), ("after", cursor), ("wait", "30"), ("limit", "1000")], timeout: 45)
                    } catch {
                        FileHandle.standardError.write(Data("chaperonectl: \(error); retrying\n".utf8))
                        try await Task.sleep(for: .seconds(2))
                        continue
                    }
                    for approval in page.approvals { self.emit(approval) }
                    cursor = page.cursor
                }
            }
        }

        private func emit(_ approval: Approval) {
            switch self.output {
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                Self.write(String(decoding: (try? encoder.encode(approval)) ?? Data(), as: UTF8.self))
            case .table:
                var line = ApprovalText.row(approval)
                if approval.status == .pending { line += "\n    decide: chaperonectl approvals approve|deny \(approval.id) --reason '...'" }
                Self.write(line)
            }
        }

        /// Unbuffered, so a pipe sees each change as it happens.
        private static func write(_ line: String) {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}

/// How approvals read in a terminal.
enum ApprovalText {
    static let header = pad("ID", 36) + "  " + pad("STATUS", 9) + "  " + pad("CREATED", 20) + "  " + pad("POD", 32) + "  " + pad("INITIATOR", 20) + "  RULE / PROMPT"

    static func row(_ a: Approval) -> String {
        let pod = "\(a.requester.namespace ?? "?")/\(a.requester.pod ?? "?")"
        let prompt = a.request.prompt.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        return pad(a.id, 36) + "  " + pad(a.status.rawValue, 9) + "  " + pad(String(a.created.prefix(19)) + "Z", 20) + "  " + pad(pod, 32) + "  "
            + pad(a.request.initiator ?? "-", 20) + "  " + (a.request.rules.first ?? "") + ": " + String(prompt.prefix(60))
    }

    static func details(_ a: Approval) -> String {
        let r = a.requester
        var lines = [
            "approval  \(a.id)",
            "status    \(a.status.rawValue)\(a.reason.map { " (\($0))" } ?? "")",
            "created   \(a.created)   expires \(a.expires)\(a.decided.map { "   decided \($0)" } ?? "")",
            "who       \(r.namespace ?? "?")/\(r.pod ?? "?") · service account \(r.serviceAccount ?? "?") · node \(r.node ?? "?") (verified)",
            "initiator \(a.request.initiator ?? "-") (self-reported)",
            "what      \(a.request.model ?? "?") via \(a.request.upstream) \(a.request.path) · session \(a.request.sessionID) · exchange \(a.request.exchangeID)",
            "why       rules \(a.request.rules.joined(separator: ", "))\(a.request.message.map { ": \($0)" } ?? "")\(a.request.severity.map { " [\($0)]" } ?? "")",
        ]
        if !a.request.detectors.isEmpty { lines.append("secrets   masked before leaving the pod: \(a.request.detectors.joined(separator: ", "))") }
        lines.append("votes     \(a.votes.filter { $0.decision == .approve }.count) of \(a.requiredApprovals) approvals")
        for vote in a.votes { lines.append("          \(vote.time) \(vote.approver) \(vote.decision.rawValue)\(vote.reason.map { ": \($0)" } ?? "")") }
        lines.append("prompt (masked):")
        lines.append(contentsOf: a.request.prompt.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 })
        return lines.joined(separator: "\n")
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
    }
}
