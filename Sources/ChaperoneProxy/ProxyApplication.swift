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
        let policy = try Policy.load(file: config.policy.file, builtinRules: config.policy.builtinRules)
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
            "rules": "\(policy.rules.count)", "file": "\(config.policy.file ?? "-")",
            "detectors": "\(DetectorCatalog.builtIn.count)", "restore_placeholders": "\(config.masking.restorePlaceholders)",
        ])
        return PolicyEngine(policy: policy, masker: SecretMasker(fingerprinter: fingerprinter))
    }

    public func run() async throws {
        let config = self.configuration
        var sinks: [any AuditSink] = []
        if let file = config.audit.file {
            sinks.append(try JSONLinesSink(path: file))
        }
        if config.audit.stdout {
            sinks.append(JSONLinesSink.standardOutput())
        }
        let trail = AuditTrail(sinks: sinks, logger: self.logger)
        let metrics = ProxyMetrics()
        let readiness = Readiness()
        let eventLoopGroup = MultiThreadedEventLoopGroup.singleton

        var upstreams: [String: Upstream] = [:]
        for (name, upstreamConfig) in config.upstreams {
            upstreams[name] = try Upstream(name: name, config: upstreamConfig, timeouts: config.timeouts, eventLoopGroup: eventLoopGroup)
        }
        let handler = ProxyExchangeHandler(
            upstreams: upstreams, configuration: config, trail: trail, metrics: metrics,
            source: Self.sourceFromEnvironment(), policy: self.policy, logger: self.logger
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
            "audit.file": "\(config.audit.file ?? "-")",
        ])
        // The proxy drains first; the admin listener stays up so probes see "not ready" meanwhile.
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: admin),
                .init(service: proxy, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: self.logger
        ))
        do {
            try await group.run()
        } catch {
            await self.shutdown(upstreams: upstreams, trail: trail)
            throw error
        }
        await self.shutdown(upstreams: upstreams, trail: trail)
    }

    private func shutdown(upstreams: [String: Upstream], trail: AuditTrail) async {
        for upstream in upstreams.values {
            try? await upstream.shutdown()
        }
        await trail.close()
        self.logger.info("proxy.stopped")
    }
}
