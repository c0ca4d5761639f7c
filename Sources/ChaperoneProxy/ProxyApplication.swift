import AsyncHTTPClient
public import ChaperoneCore
public import Foundation
public import Logging
public import ChaperoneMasking
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// The sidecar: the base-URL proxy listener, the admin listener and the audit trail, run until
/// SIGTERM/SIGINT, then drained.
public struct ProxyApplication: Sendable {
    public let configuration: ProxyConfiguration
    public let policy: PolicyEngine
    public let logger: Logger

    /// Runs on `MultiThreadedEventLoopGroup.singleton`, sized by `NIOSingletons.groupLoopCountSuggestion`.
    /// `policy` comes from `policyEngine(_:logger:)`, so a bad policy fails before anything starts.
    public init(configuration: ProxyConfiguration, policy: PolicyEngine, logger: Logger) {
        self.configuration = configuration
        self.policy = policy
        self.logger = logger
    }

    /// The self-reported identity of this pod, from the downward-API environment the injector sets.
    public static func sourceFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> AuditEvent.Source {
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        return AuditEvent.Source(
            cluster: value("CHAPERONE_CLUSTER"),
            namespace: value("CHAPERONE_POD_NAMESPACE"),
            pod: value("CHAPERONE_POD_NAME"),
            podUID: value("CHAPERONE_POD_UID"),
            container: value("CHAPERONE_AGENT_CONTAINER"),
            node: value("CHAPERONE_NODE_NAME"),
            serviceAccount: value("CHAPERONE_SERVICE_ACCOUNT"),
            initiator: value("CHAPERONE_INITIATOR"),
            selfReported: true
        )
    }

    /// The masking engine and policy: the rules file (if any) then the built-in pack, and the
    /// fingerprint key. A bad policy file or an unreadable configured key stops start-up.
    public static func policyEngine(_ config: ProxyConfiguration, logger: Logger) throws -> PolicyEngine {
        let policy = try Policy.load(
            file: config.policy.file, text: config.policy.text, source: "$" + ProxyConfiguration.Environment.policy,
            builtinRules: config.policy.builtinRules)
        let keyFile = config.masking.fingerprintKeyFile ?? ProxyConfiguration.Masking.defaultFingerprintKeyFile
        let fingerprinter: Fingerprinter
        if let key = FileManager.default.contents(atPath: keyFile), !key.isEmpty {
            fingerprinter = Fingerprinter(key: Array(key))
        } else if config.masking.fingerprintKeyFile != nil {
            throw ConfigError(field: "masking.fingerprint_key_file", message: "cannot read \(keyFile) (or it is empty)")
        } else {
            logger.warning("masking.ephemeral_fingerprint_key", metadata: [
                "file": "\(keyFile)",
                "effect": "placeholders are keyed per process; mount the installation's fingerprint key to correlate across pods",
            ])
            fingerprinter = .ephemeral()
        }
        logger.info("policy.loaded", metadata: [
            "rules": "\(policy.rules.count)", "file": "\(config.policy.file ?? (config.policy.text != nil ? "$" + ProxyConfiguration.Environment.policy : "-"))",
            "detectors": "\(DetectorCatalog.builtIn.count)", "restore_placeholders": "\(config.masking.restorePlaceholders)",
        ])
        return PolicyEngine(policy: policy, masker: SecretMasker(fingerprinter: fingerprinter))
    }

    public func run() async throws {
        let config = self.configuration
        let metrics = ProxyMetrics()
        let readiness = Readiness()
        let eventLoopGroup = MultiThreadedEventLoopGroup.singleton
        let source = Self.sourceFromEnvironment()

        // The spool first: a restarted sidecar continues the stream it finds there.
        var sinks: [any AuditSink] = []
        var spool: Spool?
        var position = AuditTrail.StreamPosition.fresh()
        var interrupted: [AuditEvent] = []
        if config.collector != nil {
            let opened = try Spool(settings: config.spool, logger: self.logger)
            let recovery = try opened.recover()
            if let resumed = recovery.position {
                position = resumed
                interrupted = recovery.openExchanges
                self.logger.notice("spool.recovered", metadata: [
                    "audit.stream_id": "\(resumed.streamID)", "next_seq": "\(resumed.nextSeq)", "events": "\(recovery.events)",
                    "unacknowledged": "\(recovery.unacknowledged)", "interrupted_exchanges": "\(interrupted.count)", "torn_bytes": "\(recovery.tornBytes)",
                ])
            }
            let highWater = "audit spool above its high-water mark (\(config.spool.highWaterPercent)% of spool.max_size) or disk full"
            opened.observe { depth in
                metrics.spoolChanged(depth)
                readiness.hold(highWater, depth.aboveHighWater)
            }
            spool = opened
            sinks.append(opened)
        } else {
            self.logger.warning("audit.not_shipped", metadata: [
                "effect": "no collector is configured: audit events go to stdout\(config.audit.file.map { " and \($0)" } ?? "") only",
            ])
        }
        if let file = config.audit.file {
            sinks.append(try JSONLinesSink(path: file))
        }
        if config.audit.stdout {
            sinks.append(JSONLinesSink.standardOutput())
        }
        let trail = AuditTrail(position: position, sinks: sinks, source: source, logger: self.logger)
        // Exchanges the previous run left open end here, as incomplete.
        for request in interrupted {
            let ended = await trail.record(Self.interruptedExchange(request))
            metrics.auditEventRecorded(kind: ended.event.kind.rawValue)
        }

        var upstreams: [String: Upstream] = [:]
        for (name, upstreamConfig) in config.upstreams {
            upstreams[name] = try Upstream(name: name, config: upstreamConfig, timeouts: config.timeouts, eventLoopGroup: eventLoopGroup)
        }
        var approvals: ApprovalGate?
        if let collector = config.collector {
            let client = try collector.httpClient(eventLoopGroup: eventLoopGroup)
            approvals = ApprovalGate(client: ApprovalClient(client: client, settings: collector), timeout: config.approvals.timeout, logger: self.logger)
        }
        let handler = ProxyExchangeHandler(
            upstreams: upstreams, configuration: config, trail: trail, spool: spool, metrics: metrics,
            source: source, policy: self.policy, approvals: approvals, logger: self.logger
        )
        let proxy = HTTPServer(
            name: "proxy", host: config.listen.host, port: config.listen.port, handler: handler,
            eventLoopGroup: eventLoopGroup, clientIdle: config.timeouts.clientIdle.duration,
            shutdownGrace: config.timeouts.shutdownGrace.duration, logger: self.logger,
            onListening: { _ in readiness.listening() }, onDraining: { readiness.draining() }
        )
        let admin = HTTPServer(
            name: "admin", host: config.admin.host, port: config.admin.port,
            handler: AdminHandler(readiness: readiness, registry: metrics.registry),
            eventLoopGroup: eventLoopGroup, clientIdle: .seconds(60), shutdownGrace: .seconds(1), logger: self.logger
        )
        self.logger.info("proxy.starting", metadata: [
            "audit.stream_id": "\(trail.streamID)",
            "upstreams": "\(config.upstreams.keys.sorted().joined(separator: ","))",
            "audit.file": "\(config.audit.file ?? "-")", "audit.next_seq": "\(position.nextSeq)",
        ])
        // Services stop in reverse order: the proxy drains first, then the shipper delivers what
        // the drain recorded (within collector.shutdown_flush); the admin listener stays up
        // throughout so probes see "not ready" meanwhile.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: admin)]
        if let spool, let collector = config.collector {
            let shipper = try Shipper(spool: spool, settings: collector, metrics: metrics, eventLoopGroup: eventLoopGroup, logger: self.logger)
            services.append(.init(service: shipper))
            self.logger.info("shipper.starting", metadata: [
                "collector": "\(collector.url)", "spool": "\(config.spool.directory)", "overflow": "\(config.spool.overflow.rawValue)",
                "sync": "\(config.spool.sync.rawValue)", "max_size": "\(config.spool.maxBytes)",
            ])
        }
        services.append(.init(service: proxy, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: self.logger
        ))
        do {
            try await group.run()
        } catch {
            try? await approvals?.client.client.shutdown()
            await self.shutdown(upstreams: upstreams, trail: trail)
            throw error
        }
        try? await approvals?.client.client.shutdown()
        await self.shutdown(upstreams: upstreams, trail: trail)
    }

    /// The end of an exchange the proxy was serving when it stopped (crashed, killed): it ends as
    /// `incomplete`, with what its request recorded.
    static func interruptedExchange(_ request: AuditEvent) -> AuditEvent {
        var http = request.http
        http?.status = nil
        http?.bytesOut = 0
        return AuditEvent(
            kind: request.kind == .llmRequest ? .llmResponse : .httpEgress,
            sessionID: request.sessionID,
            exchangeID: request.exchangeID,
            source: request.source,
            http: http,
            genAI: request.genAI,
            outcome: .incomplete,
            error: .init(
                type: "proxy_stopped",
                message: "chaperone-proxy stopped (crashed or was killed) while this exchange was open (request seq \(request.seq), stream \(request.streamID)); how much of the answer reached the agent is unknown")
        )
    }

    private func shutdown(upstreams: [String: Upstream], trail: AuditTrail) async {
        for upstream in upstreams.values {
            try? await upstream.shutdown()
        }
        await trail.close()
        self.logger.info("proxy.stopped")
    }
}
