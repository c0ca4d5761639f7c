import AsyncHTTPClient
import ChaperoneCore
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Tells people that a request waits for them: one POST per new approval to the configured
/// webhook, as Chaperone's JSON or as a Slack incoming-webhook message, with the commands (and
/// link) to decide it. Sent beside the request path, retried a few times; a webhook that stays
/// down is logged and counted, and never holds up or fails the approval.
final class ApprovalNotifier: Sendable {
    let settings: CollectorConfiguration.Notifications
    private let client: HTTPClient
    private let metrics: CollectorMetrics
    private let logger: Logger
    /// Attempts per notification, and the pause before each retry.
    static let retryPauses: [Duration] = [.seconds(1), .seconds(4), .seconds(15)]

    init(settings: CollectorConfiguration.Notifications, metrics: CollectorMetrics, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(5))))
    }

    func shutdown() async {
        try? await self.client.shutdown()
    }

    /// Sends the notification for a new approval in the background.
    func announce(_ approval: Approval) {
        Task { await self.send(approval) }
    }

    private func send(_ approval: Approval) async {
        let body = ApprovalMessage(approval: approval, settings: self.settings)
        let payload = self.settings.format == .slack ? body.slack() : body.json()
        var lastError = ""
        for (attempt, pause) in ([Duration.zero] + Self.retryPauses).enumerated() {
            if attempt > 0 { try? await Task.sleep(for: pause) }
            do {
                let url = try self.webhookURL()
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.headers.add(name: "user-agent", value: "chaperone-collector/\(ChaperoneCollectorVersion.current)")
                request.body = .bytes(ByteBuffer(bytes: payload))
                let response = try await self.client.execute(request, timeout: .milliseconds(self.settings.timeout.milliseconds))
                let answer = try await response.body.collect(upTo: 64 << 10)
                if (200..<300).contains(response.status.code) {
                    self.metrics.notification(result: "sent")
                    self.logger.info("approval.notified", metadata: ["approval.id": "\(approval.id)", "attempt": "\(attempt + 1)"])
                    return
                }
                lastError = "HTTP \(response.status.code): \(String(buffer: answer).prefix(200))"
                // A 4xx other than 429 will not change on retry.
                if response.status.code < 500, response.status.code != 429 { break }
            } catch {
                lastError = "\(error)"
            }
        }
        self.metrics.notification(result: "failed")
        self.logger.error("approval.notify_failed", metadata: ["approval.id": "\(approval.id)", "error": "\(lastError)"])
    }

    /// Read at every send, so a rotated Secret is picked up. The URL is never logged.
    private func webhookURL() throws -> String {
        if let url = self.settings.webhookURL { return url }
        let file = self.settings.webhookURLFile ?? ""
        let url = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !url.isEmpty else { throw ConfigError(field: "approvals.notifications.webhook_url_file", message: "\(file) is empty") }
        return url
    }
}

/// The words of a notification: who asks, what, why, and how to decide.
struct ApprovalMessage {
    var approval: Approval
    var settings: CollectorConfiguration.Notifications

    /// `chaperonectl` with the collector named, when approvers reach it at a known URL.
    private var ctl: String {
        self.settings.collectorURL.map { "chaperonectl --collector \($0)" } ?? "chaperonectl"
    }

    var commands: (show: String, approve: String, deny: String) {
        let id = self.approval.id
        return ("\(self.ctl) approvals show \(id)", "\(self.ctl) approvals approve \(id) --reason '...'", "\(self.ctl) approvals deny \(id) --reason '...'")
    }

    var link: String? { self.settings.link?.replacingOccurrences(of: "{id}", with: self.approval.id) }

    var who: String {
        let r = self.approval.requester
        var text = "\(r.namespace ?? "?")/\(r.pod ?? "?") (service account \(r.serviceAccount ?? "?"))"
        if let initiator = self.approval.request.initiator { text += ", started by \(initiator) (self-reported)" }
        return text
    }

    var why: String {
        let request = self.approval.request
        var text = "policy rule \(request.rules.joined(separator: ", "))"
        if let message = request.message { text += ": \(message)" }
        if !request.detectors.isEmpty { text += " (secrets found and masked: \(request.detectors.joined(separator: ", ")))" }
        return text
    }

    func json() -> [UInt8] {
        let commands = self.commands
        var w = CanonicalJSONWriter()
        w.object { w in
            w.key("approval") { w in w.raw(self.approval.json) }
            w.key("decide") { w in
                w.object { w in
                    w.key("approve") { $0.string(commands.approve) }
                    w.key("deny") { $0.string(commands.deny) }
                    if let link = self.link { w.key("link") { $0.string(link) } }
                    w.key("show") { $0.string(commands.show) }
                }
            }
            w.key("summary") { $0.string("\(self.who) asks for \(self.approval.request.model ?? "a model") on \(self.approval.request.upstream): \(self.why)") }
            w.key("type") { $0.string("approval.requested") }
        }
        return w.bytes
    }

    /// An incoming-webhook message: `text` for notifications and clients without blocks.
    func slack() -> [UInt8] {
        let request = self.approval.request
        let commands = self.commands
        let prompt = String(request.prompt.suffix(600))
        var w = CanonicalJSONWriter()
        w.object { w in
            w.key("blocks") { w in
                w.array(Array(0..<(self.link == nil ? 4 : 5))) { w, index in
                    switch index {
                    case 0:
                        Self.block(&w, type: "header", text: "Approval needed: \(request.rules.first ?? "policy")", markdown: false)
                    case 1:
                        Self.block(&w, type: "section", text: """
                            *Who:* \(Self.escape(self.who))
                            *What:* \(Self.escape(request.model ?? "?")) via \(Self.escape(request.upstream)) \(Self.escape(request.path))
                            *Why:* \(Self.escape(self.why))
                            *Decide by:* \(self.approval.expires) · approval `\(self.approval.id)`
                            """, markdown: true)
                    case 2:
                        Self.block(&w, type: "section", text: "```\(Self.escape(prompt))```", markdown: true)
                    case 3:
                        w.object { w in
                            w.key("elements") { w in
                                w.array([commands.approve, commands.deny]) { w, command in
                                    w.object { w in
                                        w.key("text") { $0.string("`\(Self.escape(command))`") }
                                        w.key("type") { $0.string("mrkdwn") }
                                    }
                                }
                            }
                            w.key("type") { $0.string("context") }
                        }
                    default:
                        w.object { w in
                            w.key("elements") { w in
                                w.array([self.link ?? ""]) { w, link in
                                    w.object { w in
                                        w.key("text") { w in
                                            w.object { w in
                                                w.key("text") { $0.string("Review") }
                                                w.key("type") { $0.string("plain_text") }
                                            }
                                        }
                                        w.key("type") { $0.string("button") }
                                        w.key("url") { $0.string(link) }
                                    }
                                }
                            }
                            w.key("type") { $0.string("actions") }
                        }
                    }
                }
            }
            w.key("text") { $0.string("Approval needed for \(self.who): \(self.why). \(commands.approve)") }
        }
        return w.bytes
    }

    private static func block(_ w: inout CanonicalJSONWriter, type: String, text: String, markdown: Bool) {
        w.object { w in
            w.key("text") { w in
                w.object { w in
                    w.key("text") { $0.string(text) }
                    w.key("type") { $0.string(markdown ? "mrkdwn" : "plain_text") }
                }
            }
            w.key("type") { $0.string(type) }
        }
    }

    /// Slack's three control characters in message text.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
