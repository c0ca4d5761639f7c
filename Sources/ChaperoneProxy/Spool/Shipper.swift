import AsyncHTTPClient
import ChaperoneCore
import ChaperoneGzip
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import ServiceLifecycle

/// Delivers the spool to the collector: batches (by count, size and age), gzip, HTTPS with the
/// pod's projected service-account token, retries with exponential backoff and jitter, and
/// acknowledges in the spool only what the collector answered for. At least once: a batch whose
/// answer was lost is sent again and the collector counts the copies as duplicates.
///
/// On graceful shutdown it keeps delivering for `collector.shutdown_flush`, then stops; whatever
/// is left stays in the spool for the next start.
struct Shipper: Service {
    let spool: Spool
    let settings: ProxyConfiguration.Collector
    let metrics: ProxyMetrics
    let logger: Logger
    let client: HTTPClient
    let endpoint: String

    /// How often the loop looks at the spool when it has nothing to send.
    static let idlePoll: Duration = .milliseconds(20)

    init(spool: Spool, settings: ProxyConfiguration.Collector, metrics: ProxyMetrics, eventLoopGroup: any EventLoopGroup, logger: Logger) throws {
        self.spool = spool
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.endpoint = settings.url + "/v1/events"
        self.client = try settings.httpClient(eventLoopGroup: eventLoopGroup)
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            // The interval flush (and, whatever the policy, retrying events the disk refused and
            // the age gauge), beside the delivery loop.
            let period = self.spool.settings.sync == .interval ? self.spool.settings.syncInterval.duration : .milliseconds(500)
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: period)
                    self.spool.syncNow()
                    self.metrics.spoolAge(self.spool.depth.oldestMicros)
                }
            }
            await self.deliver()
            group.cancelAll()
        }
        self.spool.syncNow()
        try? await self.client.shutdown()
    }

    /// The delivery loop, until graceful shutdown and then until the spool is empty or the
    /// flush time is up.
    func deliver() async {
        var backoff = Backoff(initial: self.settings.retryInitial.duration, maximum: self.settings.retryMax.duration)
        var batch: Spool.Claim?
        var rest: Spool.Claim?
        var flushDeadline: ContinuousClock.Instant?
        while true {
            if flushDeadline == nil, Task.isShuttingDownGracefully {
                flushDeadline = .now + self.settings.shutdownFlush.duration
                self.logger.info("shipper.flushing", metadata: ["events": "\(self.spool.depth.events)", "within": "\(self.settings.shutdownFlush)"])
            }
            if let deadline = flushDeadline, ContinuousClock.now >= deadline || (batch == nil && self.spool.unclaimed().events == 0) {
                let left = self.spool.depth.events
                if left > 0 {
                    self.logger.warning("shipper.stopped_with_backlog", metadata: [
                        "events": "\(left)", "effect": "they stay in the spool and are sent when the proxy starts again on it",
                    ])
                }
                return
            }
            if batch == nil {
                let waiting = self.spool.unclaimed()
                let due = waiting.events >= self.settings.batchEvents || waiting.bytes >= self.settings.batchBytes
                    || flushDeadline != nil
                    || waiting.oldestMicros.map { WallClock.nowMicroseconds() - $0 >= self.settings.batchDelay.milliseconds * 1000 } ?? false
                if waiting.events == 0 || !due {
                    try? await Task.sleep(for: Self.idlePoll)
                    continue
                }
                batch = self.spool.claim(maxEvents: self.settings.batchEvents, maxBytes: self.settings.batchBytes)
            }
            guard let current = batch else { continue }
            switch await self.send(current) {
            case .acknowledged:
                self.spool.acknowledge(through: current.lastSeq)
                batch = nil
                backoff.reset()
            case .split:
                // Too large for the collector: the first half on its own, then the rest.
                let half = current.count / 2
                rest = current.dropFirst(half)
                batch = current.prefix(half)
            case .retry(let reason, let after):
                self.metrics.shipFailed(reason: reason)
                var delay = backoff.next()
                if let after, after > delay { delay = min(after, self.settings.retryMax.duration) }
                if let deadline = flushDeadline { delay = min(delay, max(.zero, deadline - .now)) }
                try? await Task.sleep(for: delay)
            }
            if batch == nil, let next = rest {
                batch = next
                rest = nil
            }
        }
    }

    enum Outcome {
        case acknowledged
        case split
        case retry(reason: String, after: Duration?)
    }

    /// One attempt at one batch.
    func send(_ batch: Spool.Claim) async -> Outcome {
        let token: String
        do {
            token = try self.settings.bearerToken()
        } catch {
            self.logger.error("shipper.token_unreadable", metadata: ["file": "\(self.settings.tokenFile)", "error": "\(error)"])
            return .retry(reason: "token_unreadable", after: nil)
        }
        var request = HTTPClientRequest(url: self.endpoint)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-ndjson")
        request.headers.add(name: "content-encoding", value: "gzip")
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        request.headers.add(name: "user-agent", value: "chaperone-proxy")
        do {
            request.body = .bytes(ByteBuffer(bytes: try Gzip.deflate(batch.body)))
        } catch {
            self.logger.error("shipper.gzip_failed", metadata: ["error": "\(error)", "events": "\(batch.count)"])
            return .retry(reason: "gzip", after: nil)
        }
        self.metrics.shipAttempted()
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await self.client.execute(request, timeout: .milliseconds(self.settings.timeout.milliseconds))
            answer = try await response.body.collect(upTo: 16 << 20)
        } catch {
            self.logger.warning("shipper.send_failed", metadata: [
                "error": "\(error)", "first_seq": "\(batch.firstSeq)", "events": "\(batch.count)", "collector": "\(self.endpoint)",
            ])
            return .retry(reason: Self.reason(error), after: nil)
        }
        let after = response.headers.first(name: "retry-after").flatMap(Int64.init).map { Duration.seconds($0) }
        switch response.status.code {
        case 200:
            break
        case 413 where batch.count > 1:
            return .split
        case 401, 403:
            self.logger.error("shipper.unauthenticated", metadata: [
                "status": "\(response.status.code)", "answer": "\(String(buffer: answer).prefix(300))", "token_file": "\(self.settings.tokenFile)",
            ])
            return .retry(reason: "unauthenticated", after: after)
        default:
            self.logger.warning("shipper.refused", metadata: [
                "status": "\(response.status.code)", "answer": "\(String(buffer: answer).prefix(300))", "first_seq": "\(batch.firstSeq)",
            ])
            return .retry(reason: response.status.code >= 500 ? "http_5xx" : "http_\(response.status.code)", after: after)
        }
        guard let receipt = try? JSONDecoder().decode(Receipt.self, from: answer),
            receipt.accepted.count + receipt.duplicates.count + receipt.rejected.count == batch.count
        else {
            self.logger.error("shipper.unexpected_answer", metadata: ["answer": "\(String(buffer: answer).prefix(300))", "events": "\(batch.count)"])
            return .retry(reason: "bad_answer", after: nil)
        }
        if !receipt.rejected.isEmpty {
            self.setAside(receipt.rejected, of: batch)
        }
        self.metrics.shipped(stored: receipt.accepted.count, duplicates: receipt.duplicates.count, rejected: receipt.rejected.count)
        return .acknowledged
    }

    /// Lines the collector refused will never be stored by sending them again: they are kept in
    /// the spool's `rejected.jsonl` with the reason, for an operator, and acknowledged.
    private func setAside(_ rejected: [Receipt.Rejection], of batch: Spool.Claim) {
        var text = [UInt8]()
        for rejection in rejected where rejection.line >= 1 && rejection.line <= batch.lines.count {
            text += Array("{\"error\":\(JSONString.quote(rejection.error)),\"event\":".utf8)
            text += batch.lines[rejection.line - 1]
            text += Array("}\n".utf8)
            self.logger.error("shipper.event_rejected", metadata: [
                "seq": "\(batch.firstSeq + UInt64(rejection.line - 1))", "event_id": "\(rejection.eventID ?? "")", "error": "\(rejection.error)",
                "kept_in": "\(self.spool.directory)/rejected.jsonl",
            ])
        }
        if let handle = FileHandle(forWritingAtPath: self.spool.directory + "/rejected.jsonl") ?? {
            _ = FileManager.default.createFile(atPath: self.spool.directory + "/rejected.jsonl", contents: nil, attributes: [.posixPermissions: 0o600])
            return FileHandle(forWritingAtPath: self.spool.directory + "/rejected.jsonl")
        }() {
            handle.seekToEndOfFile()
            handle.write(Data(text))
            try? handle.close()
        }
    }

    /// The collector's answer to `POST /v1/events`.
    struct Receipt: Decodable {
        struct Rejection: Decodable {
            var error: String
            var eventID: String?
            var line: Int
            enum CodingKeys: String, CodingKey {
                case error, line
                case eventID = "event_id"
            }
        }
        var accepted: [String]
        var duplicates: [String]
        var rejected: [Rejection]
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout: return "timeout"
            case .remoteConnectionClosed: return "connection_closed"
            default: break
            }
        }
        if error is NIOSSLError { return "tls" }
        if error is IOError || error is ChannelError { return "connect" }
        return "transport"
    }

}

/// Exponential backoff with jitter: each delay is drawn from the upper half of a window that
/// doubles from `initial` to `maximum`, so retrying sidecars spread out instead of arriving together.
struct Backoff {
    let initial: Duration
    let maximum: Duration
    private var window: Duration

    init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
        self.window = initial
    }

    mutating func next() -> Duration {
        let window = self.window
        self.window = min(self.maximum, self.window * 2)
        let micros = max(1, ExchangeRecord.micros(window))
        return .microseconds(micros / 2 + Int64.random(in: 0...(micros / 2)))
    }

    mutating func reset() {
        self.window = self.initial
    }
}

extension ProxyConfiguration.Collector {
    /// A client for the collector: its CA (file or the injector's PEM) instead of the system
    /// roots, HTTP/1.1, no decompression. Used by the shipper and the approval holds.
    func httpClient(eventLoopGroup: any EventLoopGroup) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let bundle = self.caBundle {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(bundle))
        } else if let pem = self.caPEM {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(5))
        configuration.decompression = .disabled
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
    }

    /// The pod's projected token, read at each use so the kubelet's rotation is picked up.
    func bearerToken() throws -> String {
        try String(contentsOfFile: self.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
