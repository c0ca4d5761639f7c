import Crypto
import Foundation
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import NIOHTTP1
import NIOSSL

/// A fast local stand-in for api.openai.com and api.anthropic.com, for the demo, the end-to-end
/// tests and the benchmarks. It can demand a key (to prove the proxy injected it) and can write
/// what it received and sent to a JSON-lines file (to prove the agent got exactly those bytes).
public struct MockUpstreamServer: @unchecked Sendable {
    public var host: String
    public var port: Int
    public var chunkDelayMilliseconds: Int64
    /// When set, requests must carry this key in `Authorization: Bearer`, `x-api-key` or `api-key`.
    public var expectedKey: String?
    /// JSON-lines file with one record per request: headers, the request body (as text, when it
    /// is UTF-8 and at most 1 MiB), body hashes, status.
    public var recordFile: String?
    /// PEM certificate chain and key: serve HTTPS instead of HTTP (to test upstream TLS checks).
    public var tls: (certificateChain: String, privateKey: String)?

    public init(
        host: String, port: Int, chunkDelayMilliseconds: Int64, expectedKey: String?, recordFile: String?,
        tls: (certificateChain: String, privateKey: String)? = nil
    ) {
        self.host = host
        self.port = port
        self.chunkDelayMilliseconds = chunkDelayMilliseconds
        self.expectedKey = expectedKey
        self.recordFile = recordFile
        self.tls = tls
    }

    /// Binds and returns the channel; `closeFuture` completes when it stops.
    public func start(group: MultiThreadedEventLoopGroup) async throws -> any Channel {
        let recorder = try self.recordFile.map { try MockRecorder(path: $0) }
        let script = MockScript(chunkDelay: self.chunkDelayMilliseconds)
        let expectedKey = self.expectedKey
        let sslContext = try self.tls.map { tls in
            try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificateChain).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKey, format: .pem))
            ))
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                    try channel.pipeline.syncOperations.addHandler(MockHTTPHandler(script: script, recorder: recorder, expectedKey: expectedKey))
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
    }
}

/// Appends one JSON line per exchange.
final class MockRecorder: Sendable {
    private let handle: NIOLockedValueBox<FileHandle>

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        handle.seekToEndOfFile()
        self.handle = NIOLockedValueBox(handle)
    }

    func record(_ entry: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0a)
        self.handle.withLockedValue { $0.write(data) }
    }
}

final class MockHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Receiving a request, then sending its reply write by write: a write goes out when its
    /// delay has passed and the channel is writable, so a slow reader slows the mock down instead
    /// of piling bytes up in memory, as a real server would.
    private enum State {
        case idle
        case receiving(HTTPRequestHead, [UInt8])
        case sending(Sending)
        /// Gone quiet on purpose (hang/stall behaviours); recorded as incomplete when the peer leaves.
        case silent(Sending)
    }

    private struct Sending {
        var writes: ArraySlice<MockReply.Write>
        var stallAfter: Int?
        var sent = 0
        var keepAlive: Bool
        var waitingForDelay = false
        var hasher = SHA256()
        var entry: [String: Any]?
    }

    private let script: MockScript
    private let recorder: MockRecorder?
    private let expectedKey: String?
    private var state = State.idle

    init(script: MockScript, recorder: MockRecorder?, expectedKey: String?) {
        self.script = script
        self.recorder = recorder
        self.expectedKey = expectedKey
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch self.state {
        case .sending(let sending), .silent(let sending): self.finishRecord(sending, completed: false)
        default: break
        }
        self.state = .idle
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.pump(context: context)
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .idle):
            self.state = .receiving(head, [])
        case (.body(let buffer), .receiving(let head, var body)):
            body.append(contentsOf: buffer.readableBytesView)
            self.state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            self.respond(context: context, head: head, body: body)
        default:
            context.close(promise: nil)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8]) {
        var reply: MockReply
        if let expectedKey = self.expectedKey, !Self.carries(key: expectedKey, in: head.headers) {
            reply = head.uri.contains("/v1/messages")
                ? .json(401, ["type": "error", "error": ["type": "authentication_error", "message": "mock upstream: missing or wrong key"]])
                : .json(401, ["error": ["message": "mock upstream: missing or wrong key", "type": "invalid_request_error", "param": NSNull(), "code": "invalid_api_key"]])
        } else {
            reply = self.script.reply(method: head.method.rawValue, path: head.uri, body: body)
        }
        var entry: [String: Any]? = nil
        if self.recorder != nil {
            var received: [String: String] = [:]
            for (name, value) in head.headers {
                let key = name.lowercased()
                received[key] = received[key].map { $0 + ", " + value } ?? value
            }
            entry = [
                "method": head.method.rawValue, "path": head.uri, "headers": received,
                "request_sha256": SHA256.hash(data: body).hexString, "status": reply.status,
            ]
            // What the provider was sent, so tests can check what reached it (masked secrets).
            if body.count <= 1 << 20, let text = String(validating: body, as: UTF8.self) {
                entry?["request_body"] = text
            }
        }
        if reply.hangBeforeHead {
            self.state = .silent(Sending(writes: [], keepAlive: false, entry: entry))
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: reply.contentType)
        headers.add(name: "x-request-id", value: "req_mock_\(UInt32.random(in: 0...UInt32.max))")
        if reply.isStream {
            headers.add(name: "cache-control", value: "no-cache")
        } else {
            headers.add(name: "content-length", value: "\(reply.writes.reduce(0) { $0 + $1.bytes.count })")
        }
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
        let responseHead = HTTPResponseHead(version: .http1_1, status: .init(statusCode: reply.status), headers: headers)
        context.writeAndFlush(self.wrapOutboundOut(.head(responseHead)), promise: nil)
        self.state = .sending(Sending(writes: reply.writes[...], stallAfter: reply.stallAfterWrites, keepAlive: head.isKeepAlive, entry: entry))
        self.pump(context: context)
    }

    /// Sends what may be sent now: writes whose delay is zero, while the channel is writable.
    private func pump(context: ChannelHandlerContext) {
        guard case .sending(var sending) = self.state, !sending.waitingForDelay else { return }
        while context.channel.isWritable {
            if let stall = sending.stallAfter, sending.sent >= stall {
                self.state = .silent(sending)
                return
            }
            guard let next = sending.writes.first else {
                self.state = .idle
                // Recorded before the end goes out, so whoever has the whole answer can read the record.
                self.finishRecord(sending, completed: true)
                let keepAlive = sending.keepAlive
                context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                    if !keepAlive { context.close(promise: nil) }
                }
                return
            }
            if next.delayMilliseconds > 0 {
                sending.waitingForDelay = true
                sending.writes[sending.writes.startIndex].delayMilliseconds = 0
                self.state = .sending(sending)
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(next.delayMilliseconds)) {
                    guard case .sending(var current) = self.state else { return }
                    current.waitingForDelay = false
                    self.state = .sending(current)
                    self.pump(context: context)
                }
                return
            }
            sending.writes.removeFirst()
            sending.sent += 1
            sending.hasher.update(data: next.bytes)
            context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: next.bytes)))), promise: nil)
        }
        self.state = .sending(sending)
    }

    private func finishRecord(_ sending: Sending, completed: Bool) {
        guard var entry = sending.entry, let recorder = self.recorder else { return }
        entry["response_sha256"] = sending.hasher.finalize().hexString
        entry["completed"] = completed
        recorder.record(entry)
    }

    private static func carries(key: String, in headers: HTTPHeaders) -> Bool {
        headers.first(name: "authorization") == "Bearer \(key)" || headers.first(name: "x-api-key") == key
            || headers.first(name: "api-key") == key
    }
}

extension Sequence where Element == UInt8 {
    var hexString: String { self.map { String(format: "%02x", $0) }.joined() }
}
