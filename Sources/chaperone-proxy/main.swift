import ArgumentParser
import ChaperoneCore
import ChaperoneMasking
import ChaperoneProxy
import Foundation
import Logging
import NIOCore
import NIOPosix

@main
struct ChaperoneProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaperone-proxy",
        abstract: "Chaperone's sidecar: an audit proxy between an AI agent and its LLM providers.",
        discussion: "Without a subcommand, `serve` runs: `chaperone-proxy --config FILE` starts the proxy. See `chaperone-proxy serve --help`.",
        subcommands: [Serve.self, WaitReady.self],
        defaultSubcommand: Serve.self
    )
}

/// Waits for a running proxy to become ready; the postStart hook of a classic sidecar.
struct WaitReady: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait-ready",
        abstract: "Wait until the proxy's admin /readyz answers 200 (exit 0), or fail after --timeout (exit 1).",
        discussion: "The injector runs this as the postStart hook of a classic (non-native) sidecar, so the agent's container starts only once the proxy accepts traffic."
    )

    @Option(name: .long, help: "The proxy's admin address, as HOST:PORT.")
    var admin: String = "127.0.0.1:15090"

    @Option(name: .long, help: "How long to wait, e.g. 120s or 2m.")
    var timeout: String = "120s"

    func run() async throws {
        let address = try Serve.address(self.admin, option: "--admin")
        let limit: ConfigDuration
        do {
            limit = try ConfigDuration(parsing: self.timeout)
        } catch {
            throw ValidationError("--timeout: \(error.message)")
        }
        let host = address.host == "0.0.0.0" ? "127.0.0.1" : address.host
        guard await ReadinessWait.wait(host: host, port: address.port, timeout: limit.duration) else {
            FileHandle.standardError.write(Data("chaperone-proxy wait-ready: http://\(host):\(address.port)/readyz did not answer 200 within \(self.timeout)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// Runs the proxy.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the proxy (the default subcommand).",
        discussion: """
            Agents point their SDK's base URL at http://127.0.0.1:15080/<upstream>/... (for example OPENAI_BASE_URL=http://127.0.0.1:15080/openai/v1). The proxy forwards to the upstream's base URL with the real provider key (read from a file the agent cannot see), streams the answer back, and writes one audit event per request and per response as JSON lines to the audit file and stdout. Logs go to stderr.

            Without --config the YAML in $CHAPERONE_CONFIG applies (chaperone-injector sets it from the installation's sidecar ConfigMap), else the embedded defaults: upstreams `openai` and `anthropic`, keys read from /var/run/secrets/chaperone/<upstream>/api-key. $CHAPERONE_POLICY holds policy rules when policy.file is not set, $CHAPERONE_COLLECTOR_CA the collector's CA when collector.ca_bundle is not set. See docs/configuration.md and docs/audit-events.md.

            Admin endpoints (default 0.0.0.0:15090): /healthz, /readyz, /metrics. SIGTERM drains in-flight exchanges within timeouts.shutdown_grace.
            """
    )

    @Option(name: .long, help: "YAML configuration file (see docs/configuration.md).")
    var config: String?

    @Option(name: .long, help: "Override the listen address, as HOST:PORT.")
    var listen: String?

    @Option(name: .long, help: "Override the admin address (healthz, readyz, metrics), as HOST:PORT.")
    var admin: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log format on stderr: json (default when stderr is not a terminal) or text.")
    var logFormat: String = JSONLogHandler.defaultFormat

    @Option(name: .long, help: "Event-loop threads (default: the number of cores, at most 2).")
    var threads: Int?

    @Flag(name: .long, help: "Validate the configuration, print the effective upstreams and exit.")
    var checkConfig = false

    func run() async throws {
        do {
            try JSONLogHandler.bootstrap(level: self.logLevel, format: self.logFormat)
        } catch {
            throw ValidationError("\(error)")
        }
        let logger = Logger(label: "chaperone-proxy")
        var configuration: ProxyConfiguration
        do {
            configuration = try ProxyConfiguration.resolve(file: self.config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        if let listen { configuration.listen = try Self.address(listen, option: "--listen") }
        if let admin { configuration.admin = try Self.address(admin, option: "--admin") }
        let policy: PolicyEngine
        do {
            policy = try ProxyApplication.policyEngine(configuration, logger: logger)
        } catch let error as ConfigError {
            throw ValidationError("invalid policy: \(error)")
        }
        if self.checkConfig {
            print("policy ok: \(policy.policy.rules.count) rules (\(configuration.policy.file ?? (configuration.policy.text != nil ? "$CHAPERONE_POLICY and built-in pack" : "built-in pack only"))), \(policy.masker.scanner.detectors.count) detectors")
            print("configuration ok: listen \(configuration.listen.host):\(configuration.listen.port), admin \(configuration.admin.host):\(configuration.admin.port)")
            if let collector = configuration.collector {
                let trust = collector.caBundle ?? (collector.caPEM != nil ? "$CHAPERONE_COLLECTOR_CA" : "system trust store")
                print("  collector \(collector.url) (CA: \(trust)), spool \(configuration.spool.directory)")
            } else {
                print("  no collector: events are not shipped")
            }
            for (name, upstream) in configuration.upstreams.sorted(by: { $0.key < $1.key }) {
                print("  /\(name)/ -> \(upstream.baseURL) (\(upstream.provider.rawValue), key: \(upstream.credential?.file ?? "none"))")
            }
            return
        }
        // A sidecar serves one pod: two loops at most by default, whatever the node's core count.
        let threads = self.threads ?? min(System.coreCount, 2)
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        NIOSingletons.groupLoopCountSuggestion = threads
        // Run Swift concurrency's tasks on the NIO event loops themselves, so an exchange does not
        // hop between the concurrency pool and the loop that owns its sockets on every read and write.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        try await ProxyApplication(configuration: configuration, policy: policy, logger: logger).run()
    }

    static func address(_ text: String, option: String) throws -> ProxyConfiguration.ListenAddress {
        do {
            return try .init(parsing: text, option: option)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
