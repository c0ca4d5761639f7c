import AsyncHTTPClient
import ChaperoneCore
import ChaperoneLLM
import ChaperoneMasking
import Logging
import NIOCore
import NIOHTTP1

/// Handles one request in base-URL mode: route it, read the prompt of LLM operations, inject the
/// credential, forward it, stream the answer back while observing it, and record the exchange.
final class ProxyExchangeHandler: HTTPExchangeHandler {
    private let upstreams: [String: Upstream]
    private let limits: ProxyConfiguration.Limits
    private let timeouts: ProxyConfiguration.Timeouts
    private let auditConfig: ProxyConfiguration.Audit
    private let trail: AuditTrail
    private let spool: Spool?
    private let metrics: ProxyMetrics
    private let source: AuditEvent.Source
    private let logger: Logger
    private let policy: PolicyEngine
    private let restorePlaceholders: Bool
    /// Where `require_approval` holds go; nil without a collector (they are refused).
    private let approvals: ApprovalGate?

    init(
        upstreams: [String: Upstream], configuration: ProxyConfiguration, trail: AuditTrail, spool: Spool?,
        metrics: ProxyMetrics, source: AuditEvent.Source, policy: PolicyEngine, approvals: ApprovalGate?, logger: Logger
    ) {
        self.approvals = approvals
        self.spool = spool
        self.policy = policy
        self.restorePlaceholders = configuration.masking.restorePlaceholders
        self.upstreams = upstreams
        self.limits = configuration.limits
        self.timeouts = configuration.timeouts
        self.auditConfig = configuration.audit
        self.trail = trail
        self.metrics = metrics
        self.source = source
        self.logger = logger
    }

    private var contentLimiter: ContentLimiter { ContentLimiter(maxCharacters: self.auditConfig.maxContentCharacters) }

    func handle(head: HTTPRequestHead, parts: InboundParts, connection: ConnectionContext) async -> Bool {
        var source = self.source
        if let initiator = head.headers.first(name: "x-chaperone-initiator") { source.initiator = initiator }
        let session = head.headers.first(name: "x-chaperone-session")
            ?? self.auditConfig.defaultSessionID ?? self.trail.streamID
        let pathOnly = String(head.uri.prefix(while: { $0 != "?" && $0 != "#" }))
        var record = ExchangeRecord(method: head.method.rawValue, path: pathOnly, sessionID: session, source: source)
        let body = RequestBody(parts: parts, limit: self.limits.maxRequestBodyBytes)
        var logger = self.logger
        logger[metadataKey: "exchange.id"] = "\(record.exchangeID)"

        let keepAlive = await self.run(head: head, body: body, record: &record, connection: connection, logger: logger)

        let labels = (upstream: record.upstream ?? "none", operation: record.operation?.rawValue ?? "http")
        self.metrics.exchangeFinished(
            upstream: labels.upstream, operation: labels.operation, status: record.status ?? 0,
            outcome: record.outcome.rawValue, duration: record.elapsed, ttfb: record.timeToFirstByte,
            bytesIn: record.requestBytes, bytesOut: record.responseBytes
        )
        logger.debug("exchange.finished", metadata: [
            "http.method": "\(record.method)", "upstream": "\(labels.upstream)", "http.path": "\(record.path)",
            "http.status": "\(record.status ?? 0)", "outcome": "\(record.outcome.rawValue)",
            "duration_ms": "\(ExchangeRecord.micros(record.elapsed) / 1000)",
        ])
        return keepAlive && body.isComplete && !connection.isDraining
    }

    /// The exchange proper. Returns whether the connection may serve another request.
    private func run(
        head: HTTPRequestHead, body: RequestBody, record: inout ExchangeRecord,
        connection: ConnectionContext, logger: Logger
    ) async -> Bool {
        // Refusals before anything is forwarded.
        if let refusal = self.checkHeaderLimits(head.headers) {
            return await self.refuse(refusal, provider: .generic, body: body, record: &record, connection: connection)
        }
        let target: UpstreamTarget
        do {
            target = try UpstreamTarget.parse(uri: head.uri, knownUpstreams: self.upstreams.keys)
        } catch {
            let refusal: ProxyError = switch error {
            case .notBaseURLPath: .badPath("request path must be /<upstream>/<path> (base-URL mode), got \(pathOnlyForMessage(head.uri))")
            case .dotSegment: .badPath("'.' and '..' path segments are not forwarded")
            case .unknownUpstream(let name): .unknownUpstream(name, known: self.upstreams.keys.sorted())
            }
            return await self.refuse(refusal, provider: Self.providerGuess(uri: head.uri), body: body, record: &record, connection: connection)
        }
        guard let upstream = self.upstreams[target.name] else { return false }
        record.upstream = upstream.name
        record.provider = upstream.config.provider
        record.path = target.path
        record.operation = LLMOperation.classify(provider: upstream.config.provider, method: head.method.rawValue, path: target.path)

        // Nothing goes upstream that the spool could not record.
        if let spool = self.spool, !spool.admitsNewExchanges {
            self.metrics.backlogRefused()
            return await self.refuse(.auditBacklog(spool.depth, limit: spool.settings.maxBytes), provider: upstream.config.provider,
                                     body: body, record: &record, connection: connection)
        }

        let declaredLength = head.headers.first(name: "content-length").flatMap(Int.init)
        if let declaredLength, declaredLength > self.limits.maxRequestBodyBytes {
            return await self.refuse(.bodyTooLarge(limit: self.limits.maxRequestBodyBytes), provider: upstream.config.provider,
                                     body: body, record: &record, connection: connection)
        }

        // A client that asked to wait (`Expect: 100-continue`) is told to send its body now.
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            try? await connection.outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
        }

        // LLM operations are read whole (bounded by the body limit) so the prompt is recorded,
        // and later masked and checked by policy, before any byte goes upstream. Everything else
        // streams through.
        let requestBody: HTTPClientRequest.Body?
        var responseMasking: ResponseMaskingPlan?
        if let operation = record.operation {
            let whole: ByteBuffer
            do {
                whole = try await body.collect()
            } catch {
                return await self.refuse(Self.proxyError(forBodyFailure: error),
                                         provider: upstream.config.provider, body: body, record: &record, connection: connection)
            }
            record.requestBytes = body.byteCount
            record.requestSHA256 = body.sha256
            // Mask the prompt and let the policy decide before anything is recorded or sent.
            let raw = Array(whole.readableBytesView)
            var context = PolicyContext(
                direction: .request, model: JSONStringRewriter.members(of: raw)["model"].map(JSONStringRewriter.Site.unquoted),
                upstream: upstream.name, path: target.path, tools: self.policy.usesTools ? Self.toolNames(raw) : []
            )
            let masked = RequestMasking(engine: self.policy, keepOriginals: self.restorePlaceholders).apply(body: raw, context: context)
            record.request = operation.summarizeRequest(masked.body ?? raw)
            record.requestFindings = AuditEvent.Finding.distinct(masked.result.findings, direction: .request)
            self.metrics.findingsRecorded(masked.result.findings, direction: "request")
            let result = masked.result
            if !result.matchedRules.isEmpty {
                record.decision = AuditEvent.Decision(
                    action: result.action.rawValue, rules: result.rules,
                    severity: result.severity?.rawValue,
                    message: result.decidingRule?.message ?? result.matchedRules.first?.message
                )
                self.metrics.policyDecided(action: result.action.rawValue)
            }
            await self.recordEvent(record.requestEvent(limits: self.contentLimiter))
            if let rule = result.decidingRule, rule.action == .requireApproval, let gate = self.approvals {
                let request = record.approvalRequest(
                    id: UUIDv7().description, rules: [rule.id] + result.rules.filter { $0 != rule.id }, message: rule.message, timeout: gate.timeout)
                let snapshot = record
                let verdict = await gate.hold(request, connection: connection) { kind, id, outcome, reason, approvers in
                    await self.recordEvent(snapshot.approvalEvent(kind, id: id, outcome: outcome, reason: reason, approvers: approvers))
                }
                record.decision.approvalID = request.id
                switch verdict {
                case .approved(let approval):
                    record.decision.approvalOutcome = "approved"
                    record.decision.approvalReason = approval.reason
                    record.decision.approvers = approval.deciders
                case .refused(let refusal, let approval, let outcome):
                    record.decision.approvalOutcome = outcome
                    record.decision.approvalReason = approval?.reason ?? refusal.message
                    if let deciders = approval?.deciders, !deciders.isEmpty { record.decision.approvers = deciders }
                    return await self.refuse(refusal, provider: upstream.config.provider, body: body, record: &record, connection: connection)
                case .agentLeft:
                    record.decision.approvalOutcome = "cancelled"
                    record.outcome = .clientDisconnected
                    await self.recordEvent(record.completionEvent(limits: self.contentLimiter))
                    return false
                }
            } else if let rule = result.decidingRule, rule.action == .deny || rule.action == .requireApproval {
                logger.info("policy.refused", metadata: ["rule": "\(rule.id)", "action": "\(rule.action.rawValue)"])
                let refusal: ProxyError = rule.action == .deny
                    ? .policyDenied(rule: rule.id, message: rule.message)
                    : .approvalRequired(rule: rule.id, message: rule.message)
                return await self.refuse(refusal, provider: upstream.config.provider, body: body, record: &record, connection: connection)
            }
            context.direction = .response
            if operation != .openAIEmbeddings {
                responseMasking = ResponseMaskingPlan(
                    masker: self.policy.masker, selection: self.policy.selection(for: context), originals: result.originals
                )
            }
            requestBody = .bytes(masked.body.map { ByteBuffer(bytes: $0) } ?? whole)
        } else if declaredLength == 0 || (declaredLength == nil && !head.headers.contains(name: "transfer-encoding")) {
            _ = await body.drain()
            requestBody = nil
        } else {
            requestBody = .stream(body, length: declaredLength.map { .known(Int64($0)) } ?? .unknown)
        }

        let credentialValue: String?
        do {
            credentialValue = try upstream.credential?.headerValue()
        } catch {
            logger.error("credential.unavailable", metadata: ["upstream": "\(upstream.name)", "error": "\(error)"])
            return await self.refuse(.credentialUnavailable(upstream: upstream.name, error), provider: upstream.config.provider,
                                     body: body, record: &record, connection: connection)
        }

        var request = HTTPClientRequest(url: upstream.url(for: target))
        request.method = head.method
        request.headers = HeaderPolicy.upstreamRequestHeaders(from: head.headers)
        if let credential = upstream.credential, let credentialValue {
            request.headers.replaceOrAdd(name: credential.headerName, value: credentialValue)
        }
        request.body = requestBody

        let forwarding = UpstreamForwarding(
            upstream: upstream, request: request, body: body, connection: connection,
            captureLimit: self.limits.maxAuditedResponseBytes, metrics: self.metrics, logger: logger,
            masking: responseMasking
        )
        let state = await forwarding.run(total: self.timeouts.total, record: record) { finished in
            await self.recordEvent(finished.completionEvent(limits: self.contentLimiter))
        }
        record = state.record
        if let failure = state.failure {
            // Nothing reached the agent yet: answer with a provider-shaped error of our own.
            return await self.refuse(failure, provider: upstream.config.provider, body: body, record: &record, connection: connection)
        }
        return state.keepAlive && head.isKeepAlive
    }

    /// Answers with a proxy error, records the exchange, and says whether the connection can go on.
    private func refuse(
        _ error: ProxyError, provider: ProxyConfiguration.Provider, body: RequestBody,
        record: inout ExchangeRecord, connection: ConnectionContext
    ) async -> Bool {
        record.fail(error)
        record.requestBytes = max(record.requestBytes, body.byteCount)
        let payload = error.body(for: provider)
        record.responseBytes = payload.utf8.count
        record.responseContentType = "application/json"
        await self.recordEvent(record.completionEvent(limits: self.contentLimiter))
        // A body we refused unread is not drained: the connection closes after the answer.
        let reusable = body.isComplete
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: "\(payload.utf8.count)")
        headers.add(name: "x-chaperone-error", value: error.code)
        headers.add(name: "x-chaperone-exchange", value: record.exchangeID)
        if let seconds = error.retryAfterSeconds { headers.add(name: "retry-after", value: "\(seconds)") }
        if !reusable || connection.isDraining { headers.add(name: "connection", value: "close") }
        do {
            try await connection.outbound.write(.head(HTTPResponseHead(version: .http1_1, status: error.status, headers: headers)))
            try await connection.outbound.write(.body(.byteBuffer(ByteBuffer(string: payload))))
            try await connection.outbound.write(.end(nil))
        } catch {
            return false
        }
        return reusable
    }

    private func recordEvent(_ event: AuditEvent) async {
        await self.trail.record(event)
        self.metrics.auditEventRecorded(kind: event.kind.rawValue)
    }

    private func checkHeaderLimits(_ headers: HTTPHeaders) -> ProxyError? {
        if headers.count > self.limits.maxHeaderCount {
            return .headersTooLarge("\(headers.count) header fields exceed the limit of \(self.limits.maxHeaderCount) (limits.max_headers)")
        }
        let size = HeaderPolicy.byteCount(headers)
        if size > self.limits.maxHeaderBytes {
            return .headersTooLarge("\(size) bytes of headers exceed the limit of \(self.limits.maxHeaderBytes) (limits.max_header_bytes)")
        }
        return nil
    }

    static func proxyError(forBodyFailure error: any Error) -> ProxyError {
        switch error as? RequestBodyError {
        case .tooLarge(let limit): .bodyTooLarge(limit: limit)
        case .unexpectedPart: .clientBodyFailed("a new request began before the body ended")
        // The connection ended or broke mid-body (EOF, or the HTTP decoder's error for it).
        case .truncated, nil:
            ProxyError(code: "bad_request_body", status: .badRequest,
                       message: "chaperone-proxy: the connection ended before the request body did (\(error))",
                       outcome: .clientDisconnected)
        }
    }

    /// Tools the request offers or calls, for `match.tools` in policy rules.
    private static func toolNames(_ body: [UInt8]) -> [String] {
        // Filtered after the walk: a block's `type` may come after its `name`.
        let names = (try? JSONStringRewriter.strings(of: body) { $0.lastKey == "name" }) ?? []
        return Set(names.filter { site, _ in
            site.path.contains(.key("tools")) || site.path.contains(.key("tool_calls"))
                || ["tool_use", "function_call"].contains(site.field("type") ?? "")
        }.map(\.value)).sorted()
    }

    /// For requests that name no known upstream, answer in the shape their SDK most likely reads.
    private static func providerGuess(uri: String) -> ProxyConfiguration.Provider {
        uri.lowercased().contains("anthropic") || uri.hasSuffix("/v1/messages") ? .anthropic : .openai
    }
}

private func pathOnlyForMessage(_ uri: String) -> String {
    String(uri.prefix(while: { $0 != "?" }).prefix(200))
}
