import Foundation
import AsyncHTTPClient
import ChaperoneCore
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

        self.metrics.streamStarted()
        defer { self.metrics.streamEnded() }
        // After the head has gone out, a failure can only cut the connection.
        var responseStarted = false
        do {
            try await self.connection.outbound.write(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)))
            responseStarted = true
            for try await chunk in response.body {
                do {
                    try await self.connection.outbound.write(.body(.byteBuffer(chunk)))
                } catch {
                    observer.observe(chunk)
                    record.outcome = .clientDisconnected
                    break
                }
                observer.observe(chunk)
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
        record.responseBytes = observer.byteCount
        record.responseSHA256 = observer.sha256
        record.response = observer.summary
        if observer.captureOverflowed {
            record.error = record.error ?? .init(type: "audit_capture_overflow", message: "response larger than limits.max_audited_response; forwarded but not read")
        }
        box.result.record = record
        await finish(record)
        if record.outcome == .completed {
            do {
                try await self.connection.outbound.write(.end(nil))
            } catch {
                box.result.keepAlive = false
            }
        } else {
            // The agent must see a cut stream, not a clean end: close without the last chunk.
            box.result.keepAlive = false
        }
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

/// The forwarding result, written by the forwarding task and read by its parent after awaiting
/// that task's value (which orders the two).
private final class ResultBox: @unchecked Sendable {
    var result: UpstreamForwarding.Result
    init(_ result: UpstreamForwarding.Result) { self.result = result }
}
