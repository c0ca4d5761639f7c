import Foundation
import AsyncHTTPClient
import ChaperoneCore
import ChaperoneLLM
import ChaperoneMasking
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Sends one request upstream and streams the answer to the agent chunk by chunk, each chunk
/// written (and flushed) as it arrives, never reading faster than the agent takes it. Enforces the
/// total timeout and classifies how the exchange ended.
struct UpstreamForwarding: Sendable {
    let upstream: Upstream
    let request: HTTPClientRequest
    let body: RequestBody
    let connection: ConnectionContext
    let captureLimit: Int
    let metrics: ProxyMetrics
    let logger: Logger
    /// How to mask the response of an LLM operation; nil for generic traffic.
    var masking: ResponseMaskingPlan?

    struct Result {
        var record: ExchangeRecord
        var keepAlive = true
        /// Set when the upstream gave no response: the caller answers the agent with this error
        /// and records the exchange itself.
        var failure: ProxyError?
    }

    /// Runs the exchange. Unless it ends with `failure`, `finish` records it once the response is
    /// complete or cut (or the agent left before its head), before the final chunk is released.
    func run(
        total: ConfigDuration, record: ExchangeRecord,
        finish: @escaping @Sendable (ExchangeRecord) async -> Void
    ) async -> Result {
        let box = ResultBox(Result(record: record))
        let timedOut = NIOLockedValueBox(false)
        // The total timeout is a timer on the connection's event loop, cancelled as soon as the
        // exchange ends. (A racing `Task.sleep` child would keep its timer, and the memory it
        // holds, until the full timeout elapsed even after being cancelled.)
        let work = Task {
            await self.forward(into: box, timedOut: { timedOut.withLockedValue { $0 } }, total: total, finish: finish)
        }
        let timer = self.connection.eventLoop.scheduleTask(in: .milliseconds(total.milliseconds)) {
            timedOut.withLockedValue { $0 = true }
            work.cancel()
        }
        await withTaskCancellationHandler {
            await work.value
        } onCancel: {
            work.cancel()
        }
        timer.cancel()
        return box.result
    }

    private func forward(
        into box: ResultBox, timedOut: @Sendable () -> Bool, total: ConfigDuration,
        finish: @Sendable (ExchangeRecord) async -> Void
    ) async {
        let name = self.upstream.name
        let response: HTTPClientResponse
        do {
            response = try await self.upstream.client.execute(
                self.request, deadline: .now() + .milliseconds(total.milliseconds), logger: self.logger
            )
        } catch {
            box.result.record.requestBytes = self.body.byteCount
            if let bodyFailure = error as? RequestBodyError {
                box.result.failure = ProxyExchangeHandler.proxyError(forBodyFailure: bodyFailure)
                return
            }
            let reason = Self.failureReason(error, timedOut: timedOut())
            let detail = Self.describe(error, timedOut: timedOut(), total: total)
            self.metrics.upstreamError(upstream: name, reason: reason)
            self.logger.warning("upstream.failed", metadata: ["upstream": "\(name)", "reason": "\(reason)", "error": "\(error)"])
            box.result.failure = reason == "timeout" ? .upstreamTimeout(upstream: name, detail) : .upstreamUnreachable(upstream: name, detail)
            return
        }

        var record = box.result.record
        record.responseHeadAt = .now
        record.status = Int(response.status.code)
        record.responseContentType = response.headers.first(name: "content-type")
        var observer = ResponseObserver(operation: record.operation, contentType: record.responseContentType, captureLimit: self.captureLimit)
        var headers = HeaderPolicy.agentResponseHeaders(from: response.headers)
        headers.add(name: "x-chaperone-exchange", value: record.exchangeID)
        if self.connection.isDraining {
            headers.add(name: "connection", value: "close")
            box.result.keepAlive = false
        }

        let isEventStream = record.responseContentType?.lowercased().hasPrefix("text/event-stream") ?? false
        if let plan = self.masking, !isEventStream {
            await self.forwardWhole(response, plan: plan, headers: headers, record: record, observer: observer, into: box, finish: finish)
            return
        }
        var streamMasking = self.masking.map {
            EventStreamMasking(operation: record.operation ?? .openAIChatCompletions, masker: $0.masker, selection: $0.selection, originals: $0.originals)
        }
        if streamMasking != nil { headers.remove(name: "content-length") }
        var delivered = 0

        self.metrics.streamStarted()
        defer { self.metrics.streamEnded() }
        // After the head has gone out, a failure can only cut the connection.
        var responseStarted = false
        do {
            try await self.connection.outbound.write(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)))
            responseStarted = true
            for try await chunk in response.body {
                var outgoing = chunk
                if streamMasking != nil {
                    observer.hash(chunk)
                    let masked = streamMasking!.feed(chunk.readableBytesView)
                    observer.read(masked.audit)
                    guard !masked.agent.isEmpty else { continue }
                    outgoing = ByteBuffer(bytes: masked.agent)
                } else {
                    observer.observe(chunk)
                }
                delivered += outgoing.readableBytes
                do {
                    try await self.connection.outbound.write(.body(.byteBuffer(outgoing)))
                } catch {
                    record.outcome = .clientDisconnected
                    break
                }
            }
            if streamMasking != nil, record.outcome == .completed {
                let tail = streamMasking!.finish()
                observer.read(tail.audit)
                if !tail.agent.isEmpty {
                    delivered += tail.agent.count
                    try await self.connection.outbound.write(.body(.byteBuffer(ByteBuffer(bytes: tail.agent))))
                }
            }
        } catch {
            if !responseStarted {
                record.outcome = .clientDisconnected
            } else {
                let reason = Self.failureReason(error, timedOut: timedOut())
                self.metrics.upstreamError(upstream: name, reason: reason)
                record.outcome = reason == "timeout" ? .timeout : .upstreamError
                record.error = .init(type: reason == "timeout" ? "upstream_timeout" : "upstream_reset",
                                     message: Self.describe(error, timedOut: timedOut(), total: total))
                self.logger.warning("upstream.stream_failed", metadata: ["upstream": "\(name)", "reason": "\(reason)", "error": "\(error)"])
            }
        }
        record.requestBytes = self.body.byteCount
        record.requestSHA256 = record.requestSHA256 ?? (self.body.isComplete ? self.body.sha256 : nil)
        record.responseBytes = streamMasking == nil ? observer.byteCount : delivered
        record.responseSHA256 = observer.sha256
        record.response = observer.summary
        if let streamMasking {
            record.responseFindings = AuditEvent.Finding.distinct(streamMasking.findings, direction: .response)
            self.metrics.findingsRecorded(streamMasking.findings, direction: "response")
        }
        if observer.captureOverflowed {
            record.error = record.error ?? .init(type: "audit_capture_overflow", message: "response larger than limits.max_audited_response; forwarded but not read")
        }
        await self.settle(record, into: box, finish: finish)
    }

    /// Records the exchange, then releases the end of the response — or, when it did not
    /// complete, leaves the agent a cut stream (no clean end) and the connection closed.
    private func settle(_ record: ExchangeRecord, into box: ResultBox, finish: @Sendable (ExchangeRecord) async -> Void) async {
        box.result.record = record
        await finish(record)
        if record.outcome == .completed {
            do {
                try await self.connection.outbound.write(.end(nil))
            } catch {
                box.result.keepAlive = false
            }
        } else {
            box.result.keepAlive = false
        }
    }

    /// A non-streamed LLM response: read it whole (bounded), mask it, then send it with its new
    /// length. Nothing reaches the agent before the whole answer has been inspected.
    private func forwardWhole(
        _ response: HTTPClientResponse, plan: ResponseMaskingPlan, headers: HTTPHeaders, record: ExchangeRecord,
        observer: ResponseObserver, into box: ResultBox, finish: @Sendable (ExchangeRecord) async -> Void
    ) async {
        var record = record
        var observer = observer
        var headers = headers
        var collected: [UInt8] = []
        do {
            for try await chunk in response.body {
                observer.hash(chunk)
                guard collected.count + chunk.readableBytes <= self.captureLimit else {
                    box.result.record = record
                    box.result.failure = ProxyError(
                        code: "response_too_large", status: .badGateway,
                        message: "chaperone-proxy: the upstream's answer is larger than limits.max_audited_response (\(self.captureLimit) bytes), so it cannot be inspected for secrets; it was not forwarded",
                        outcome: .upstreamError
                    )
                    return
                }
                collected.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            let reason = Self.failureReason(error, timedOut: false)
            self.metrics.upstreamError(upstream: self.upstream.name, reason: reason)
            box.result.record = record
            box.result.failure = .upstreamUnreachable(upstream: self.upstream.name, "the upstream failed before its answer was complete: \(error)")
            return
        }
        let masked = ResponseBodyMasking(masker: plan.masker, selection: plan.selection, restorer: PlaceholderRestorer(originals: plan.originals))
            .apply(body: collected)
        observer.read(masked.audit)
        record.responseFindings = AuditEvent.Finding.distinct(masked.findings, direction: .response)
        self.metrics.findingsRecorded(masked.findings, direction: "response")
        record.requestBytes = self.body.byteCount
        record.responseBytes = masked.agent.count
        record.responseSHA256 = observer.sha256
        record.response = observer.summary
        headers.remove(name: "content-length")
        headers.add(name: "content-length", value: "\(masked.agent.count)")
        do {
            try await self.connection.outbound.write(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)))
            try await self.connection.outbound.write(.body(.byteBuffer(ByteBuffer(bytes: masked.agent))))
        } catch {
            record.outcome = .clientDisconnected
        }
        await self.settle(record, into: box, finish: finish)
    }

    private static func failureReason(_ error: any Error, timedOut: Bool) -> String {
        if timedOut { return "timeout" }
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout: return "timeout"
            case .remoteConnectionClosed: return "reset"
            default: break
            }
        }
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("ssl") || text.localizedCaseInsensitiveContains("certificate") || text.localizedCaseInsensitiveContains("handshake") {
            return "tls"
        }
        if text.localizedCaseInsensitiveContains("timeout") { return "timeout" }
        if text.localizedCaseInsensitiveContains("connect") || text.localizedCaseInsensitiveContains("refused") { return "connect" }
        return "reset"
    }

    private static func describe(_ error: any Error, timedOut: Bool, total: ConfigDuration) -> String {
        if timedOut { return "the exchange exceeded timeouts.total (\(total))" }
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .connectTimeout: return "connecting exceeded timeouts.connect"
            case .readTimeout: return "no bytes from the upstream within timeouts.idle"
            case .deadlineExceeded: return "the exchange exceeded timeouts.total (\(total))"
            default: break
            }
        }
        return String(describing: error)
    }
}

/// What the response of one exchange is masked with.
struct ResponseMaskingPlan: Sendable {
    let masker: SecretMasker
    let selection: DetectorSelection
    /// Placeholder → the agent's own secret, when echoes are restored; empty otherwise.
    let originals: [String: String]
}

/// The forwarding result, written by the forwarding task and read by its parent after awaiting
/// that task's value (which orders the two).
private final class ResultBox: @unchecked Sendable {
    var result: UpstreamForwarding.Result
    init(_ result: UpstreamForwarding.Result) { self.result = result }
}
