import ArgumentParser
import ChaperoneCore
import Foundation

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}

/// Prints each element of `key` in a raw answer as one JSON line (keys sorted).
func printJSONLines(_ data: Data, key: String) throws {
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let items = object[key] as? [Any] else { return }
    for item in items {
        let line = try JSONSerialization.data(withJSONObject: item, options: [.sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: line, as: UTF8.self))
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Search stored audit events, newest first.",
        discussion: """
            Filters combine (AND). Identity filters match what the collector verified from the pod's token, \
            not what the workload claimed. --text searches the masked prompt and answer text (whole words, in order).

            Examples:
              chaperonectl events --namespace agents --since 2h
              chaperonectl events --detector aws_access_key --output json
              chaperonectl events --kind 'integrity.*'
            """)

    @OptionGroup var collector: CollectorOptions
    @OptionGroup var filters: EventFilters
    @Option(help: "From this time: RFC 3339, or a duration before now (15m, 2h, 7d).") var since: String?
    @Option(help: "Until this time (same forms as --since).") var until: String?
    @Option(help: "At most this many events.") var limit: Int = 50
    @Option(help: "table or json (one JSON object per line).") var output: OutputFormat = .table

    func run() async throws {
        guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit must be 1...10000") }
        let parameters = self.filters.parameters + [
            ("since", try TimeArgument.parse(self.since, option: "--since")), ("until", try TimeArgument.parse(self.until, option: "--until")),
            ("limit", String(self.limit)),
        ]
        try await CollectorClient.with(self.collector) { client in
            switch self.output {
            case .json:
                try printJSONLines(try await client.raw("/v1/events", parameters), key: "events")
            case .table:
                let page: EventsPage = try await client.get("/v1/events", parameters)
                print(EventTable.header)
                for envelope in page.events { print(EventTable.row(envelope)) }
                if page.events.isEmpty { print("(no events match)") }
            }
        }
    }
}

struct SessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List agent sessions, most recent first: who ran them, when, how many requests, which models.")

    @OptionGroup var collector: CollectorOptions
    @Option(help: "Namespace of the pod (verified).") var namespace: String?
    @Option(help: "Pod name (verified).") var pod: String?
    @Option(help: "Service account (verified).") var serviceAccount: String?
    @Option(help: "From this time: RFC 3339, or a duration before now (15m, 2h, 7d).") var since: String?
    @Option(help: "Until this time.") var until: String?
    @Option(help: "At most this many sessions.") var limit: Int = 50
    @Option(help: "table or json.") var output: OutputFormat = .table

    func run() async throws {
        let parameters: [(String, String?)] = [
            ("namespace", self.namespace), ("pod", self.pod), ("service_account", self.serviceAccount),
            ("since", try TimeArgument.parse(self.since, option: "--since")), ("until", try TimeArgument.parse(self.until, option: "--until")),
            ("limit", String(self.limit)),
        ]
        try await CollectorClient.with(self.collector) { client in
            switch self.output {
            case .json:
                try printJSONLines(try await client.raw("/v1/sessions", parameters), key: "sessions")
            case .table:
                let page: SessionsPage = try await client.get("/v1/sessions", parameters)
                print(EventTable.pad("SESSION", 38) + EventTable.pad("WHO", 30) + EventTable.pad("FIRST", 28) + EventTable.pad("LAST", 28)
                    + EventTable.pad("REQUESTS", 9) + "MODELS")
                for s in page.sessions {
                    print(EventTable.pad(s.sessionID, 38) + EventTable.pad("\(s.namespace ?? "?")/\(s.pod ?? "?")", 30) + EventTable.pad(s.first, 28)
                        + EventTable.pad(s.last, 28) + EventTable.pad(String(s.requests), 9) + s.models.joined(separator: ","))
                }
                if page.sessions.isEmpty { print("(no sessions match)") }
            }
        }
    }
}

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow audit events as the collector stores them.",
        discussion: "Starts at the newest event (or the first with --from-start) and waits for more until interrupted.")

    @OptionGroup var collector: CollectorOptions
    @OptionGroup var filters: EventFilters
    @Flag(help: "Replay stored events from the beginning first.") var fromStart = false
    @Option(help: "Stop after this many events (default: follow forever).") var count: Int?
    @Option(help: "table or json.") var output: OutputFormat = .table

    func run() async throws {
        let filters = self.filters
        try await CollectorClient.with(self.collector) { client in
            var after: Int64 = -1
            if !self.fromStart {
                let newest: EventsPage = try await client.get("/v1/events", [("limit", "1")])
                after = newest.events.first?.leafIndex ?? -1
            }
            if self.output == .table { print(EventTable.header) }
            var printed = 0
            while !Task.isCancelled {
                let parameters = filters.parameters + [("after", String(after)), ("wait", "25"), ("limit", "500")]
                let data = try await client.raw("/v1/events", parameters, timeout: 40)
                let page = try JSONDecoder().decode(EventsPage.self, from: data)
                switch self.output {
                case .json: try printJSONLines(data, key: "events")
                case .table: for envelope in page.events { print(EventTable.row(envelope)) }
                }
                printed += page.events.count
                fflush(nil)
                if let count = self.count, printed >= count { return }
                if let next = page.next, let leaf = Int64(next) { after = max(after, leaf) }
            }
        }
    }
}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Show a session turn by turn: prompts and answers (masked), timings, findings, policy decisions and approvals.")

    @OptionGroup var collector: CollectorOptions
    @Argument(help: "The session id (see `chaperonectl sessions`).") var session: String
    @Option(help: "Characters of each prompt and answer to show (0: all).") var width: Int = 2000
    @Option(help: "table (readable) or json (the events, oldest first).") var output: OutputFormat = .table

    func run() async throws {
        let parameters: [(String, String?)] = [("session", self.session), ("order", "oldest"), ("limit", "10000")]
        try await CollectorClient.with(self.collector) { client in
            if self.output == .json {
                try printJSONLines(try await client.raw("/v1/events", parameters), key: "events")
                return
            }
            let page: EventsPage = try await client.get("/v1/events", parameters)
            guard let first = page.events.first else { throw CollectorError(description: "no events for session \(self.session)") }
            print("Session \(self.session) — \(first.identity.who) (service account \(first.identity.serviceAccount)), \(page.events.count) events")
            let start = page.events.compactMap { $0.event.flatMap { WallClock.microseconds(rfc3339: $0.time) } }.min() ?? 0
            var turn = 0
            for envelope in page.events {
                guard let event = envelope.event else {
                    print("\n[leaf \(envelope.leafIndex)] content removed by retention")
                    continue
                }
                let offset = (WallClock.microseconds(rfc3339: event.time) ?? start) - start
                let stamp = "+\(String(format: "%.3f", Double(offset) / 1_000_000))s"
                switch event.kind {
                case .llmRequest:
                    turn += 1
                    let model = event.genAI?.request.model ?? "?"
                    print("\n── turn \(turn) · \(event.time) (\(stamp)) · \(event.genAI?.provider.name ?? "?") \(model)")
                    for message in event.content?.messages ?? [] {
                        print("  \(message.role): \(self.clip(message.content))")
                    }
                    self.printFindingsAndDecision(event)
                case .llmResponse:
                    let status = event.http?.status.map(String.init) ?? "-"
                    let timing = [event.http?.ttfbMicros.map { "first byte \($0 / 1000) ms" }, event.http?.durationMicros.map { "total \($0 / 1000) ms" }]
                        .compactMap { $0 }.joined(separator: ", ")
                    print("  ← \(event.outcome?.rawValue ?? "?") · HTTP \(status)\(timing.isEmpty ? "" : " · " + timing) (\(stamp))")
                    if let text = event.content?.responseText, !text.isEmpty { print("  assistant: \(self.clip(text))") }
                    for call in event.content?.toolCalls ?? [] { print("  tool call \(call.name)(\(self.clip(call.arguments)))") }
                    if let error = event.error { print("  error: \(error.type): \(error.message)") }
                    if let usage = event.genAI?.usage {
                        print("  tokens: \(usage.inputTokens.map(String.init) ?? "?") in, \(usage.outputTokens.map(String.init) ?? "?") out")
                    }
                    self.printFindingsAndDecision(event)
                default:
                    print("\n· \(event.kind) (\(stamp))\(event.integrity.map { ": " + $0.message } ?? "")")
                    self.printFindingsAndDecision(event)
                }
            }
        }
    }

    private func printFindingsAndDecision(_ event: AuditEvent) {
        for finding in event.findings {
            print("  finding: \(finding.detector) in the \(finding.direction) (fingerprint \(finding.fingerprint.prefix(12))…) — masked")
        }
        if let decision = event.decision, decision.action != "allow" || !decision.rules.isEmpty {
            var line = "  policy: \(decision.action)"
            if !decision.rules.isEmpty { line += " by \(decision.rules.joined(separator: ", "))" }
            if let id = decision.approvalID { line += " · approval \(id): \(decision.approvalOutcome ?? "pending")" }
            if let message = decision.message { line += " — \(message)" }
            print(line)
        }
    }

    private func clip(_ text: String) -> String {
        guard self.width > 0, text.count > self.width else { return text }
        return String(text.prefix(self.width)) + "… (\(text.count - self.width) more characters)"
    }
}
