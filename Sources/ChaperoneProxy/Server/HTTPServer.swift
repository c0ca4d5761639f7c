import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

/// What a connection offers the handler of one request.
struct ConnectionContext: Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    let registry: ConnectionRegistry
    /// The loop that owns the agent's connection, for timers.
    let eventLoop: any EventLoop
    /// Completes when the agent's connection closes (the agent gave up, or the proxy cut it).
    let closed: EventLoopFuture<Void>
    var isDraining: Bool { self.registry.isDraining }
}

/// Answers one request. Reads the request body from `parts` (or leaves it; the caller then
/// closes the connection) and writes the whole response. Returns whether the connection can
/// serve another request.
protocol HTTPExchangeHandler: Sendable {
    func handle(head: HTTPRequestHead, parts: InboundParts, connection: ConnectionContext) async -> Bool
}

/// A plain HTTP/1.1 listener with keep-alive, a registry of its connections, an idle sweeper
/// and graceful drain on shutdown: stop accepting, close idle connections, let exchanges in
/// flight finish within `shutdownGrace`, then cut what is left.
public final class HTTPServer: Service, Sendable {
    public let name: String
    let host: String
    let port: Int
    let handler: any HTTPExchangeHandler
    let eventLoopGroup: MultiThreadedEventLoopGroup
    let clientIdle: Duration
    let shutdownGrace: Duration
    let logger: Logger
    let registry = ConnectionRegistry()
    private let onListening: @Sendable (Int) -> Void
    private let onDraining: @Sendable () -> Void

    init(
        name: String, host: String, port: Int, handler: any HTTPExchangeHandler,
        eventLoopGroup: MultiThreadedEventLoopGroup, clientIdle: Duration, shutdownGrace: Duration, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }, onDraining: @escaping @Sendable () -> Void = {}
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.eventLoopGroup = eventLoopGroup
        self.clientIdle = clientIdle
        self.shutdownGrace = shutdownGrace
        self.logger = logger
        self.onListening = onListening
        self.onDraining = onDraining
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .bind(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16))
                    )
                }
            }
        let boundPort = server.channel.localAddress?.port ?? self.port
        self.logger.info("listener.started", metadata: ["listener": "\(self.name)", "address": "\(self.host):\(boundPort)"])
        self.onListening(boundPort)

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await self.sweepIdleConnections() }
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
                await self.drain()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.logger.info("listener.draining", metadata: ["listener": "\(self.name)", "connections": "\(self.registry.count)"])
            self.onDraining()
            self.registry.beginDraining()
            server.channel.close(promise: nil)
        }
        self.logger.info("listener.stopped", metadata: ["listener": "\(self.name)"])
    }

    private func drain() async {
        let deadline = ContinuousClock.now + self.shutdownGrace
        while self.registry.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if self.registry.count > 0 {
            self.logger.warning("listener.grace_expired", metadata: ["listener": "\(self.name)", "connections": "\(self.registry.count)"])
            self.registry.closeAll()
        }
    }

    private func sweepIdleConnections() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            self.registry.closeIdle(longerThan: self.clientIdle)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let channel = connection.channel
        guard self.registry.opened(channel) else {
            try? await channel.close()
            return
        }
        defer { self.registry.closed(channel) }
        do {
            try await connection.executeThenClose { inbound, outbound in
                let parts = InboundParts(inbound.makeAsyncIterator())
                let context = ConnectionContext(outbound: outbound, registry: self.registry, eventLoop: channel.eventLoop, closed: channel.closeFuture)
                while let part = try await parts.next() {
                    guard case .head(let head) = part else { break }
                    self.registry.beganExchange(channel)
                    let keepAlive = await self.handler.handle(head: head, parts: parts, connection: context)
                    guard self.registry.endedExchange(channel), keepAlive else { break }
                }
            }
        } catch {
            self.logger.debug("connection.error", metadata: ["listener": "\(self.name)", "error": "\(error)"])
        }
    }
}
