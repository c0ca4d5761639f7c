import ArgumentParser
import ChaperoneCore
import ChaperoneInjector
import Foundation
import Logging
import NIOCore
import NIOPosix

@main
struct ChaperoneInjectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaperone-injector",
        abstract: "Chaperone's mutating admission webhook: adds the chaperone-proxy sidecar to agent pods.",
        discussion: """
            Answers AdmissionReview v1 for pod CREATE on POST /mutate over HTTPS (default :8443). Pods in namespaces labelled chaperone.io/inject=enabled get the chaperone-proxy sidecar (a native sidecar by default), OPENAI_BASE_URL/ANTHROPIC_BASE_URL and placeholder keys in every app container, and the provider keys, collector token and spool mounted only into the sidecar. Pods labelled chaperone.io/inject=false, hostNetwork pods, kube-system, kube-public, kube-node-lease and the injector's own namespace are left alone.

            TLS: tls.mode files (default; cert-manager or your own Secret, re-read when the files change) or self-signed (the injector keeps its own CA in a Secret and patches the caBundle of its MutatingWebhookConfiguration). Admin endpoints (default :8081): /healthz, /readyz, /metrics.

            Without --config the embedded defaults apply. See docs/injector.md.
            """
    )

    @Option(name: .long, help: "YAML configuration file (see docs/injector.md).")
    var config: String?

    @Option(name: .long, help: "Override the webhook listen address, as HOST:PORT.")
    var listen: String?

    @Option(name: .long, help: "Override the admin address (healthz, readyz, metrics), as HOST:PORT.")
    var admin: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log format on stderr: json (default when stderr is not a terminal) or text.")
    var logFormat: String = JSONLogHandler.defaultFormat

    @Flag(name: .long, help: "Validate the configuration, print a summary and exit.")
    var checkConfig = false

    func run() async throws {
        do {
            try JSONLogHandler.bootstrap(level: self.logLevel, format: self.logFormat)
        } catch {
            throw ValidationError("\(error)")
        }
        var configuration: InjectorConfiguration
        do {
            configuration = try self.config.map { try InjectorConfiguration.load(file: $0) } ?? InjectorConfiguration()
        } catch let error as ConfigError {
            throw ValidationError("invalid configuration: \(error)")
        }
        if let listen { configuration.listen = try Self.address(listen, option: "--listen") }
        if let admin { configuration.admin = try Self.address(admin, option: "--admin") }
        if self.checkConfig {
            print("configuration ok: webhook https://\(configuration.listen.host):\(configuration.listen.port)/mutate, admin \(configuration.admin.host):\(configuration.admin.port)")
            print("  tls: \(configuration.tls.mode.rawValue), failure_mode: \(configuration.failureMode.rawValue), never injected: \(configuration.neverInjected.sorted().joined(separator: ", "))")
            print("  sidecar: \(configuration.sidecar.image) (\(configuration.sidecar.native ? "native" : "classic") sidecar, uid \(configuration.sidecar.runAsUser))")
            do {
                let handover = try SidecarHandover.read(configuration.sidecar, ownCA: nil)
                print("  sidecar configuration: \(configuration.sidecar.configFile ?? "the proxy's embedded defaults"), policy: \(configuration.sidecar.policyFile ?? "built-in pack only"), collector CA: \(configuration.sidecar.collectorCAFile ?? (configuration.tls.mode == .selfSigned ? "the injector's own CA" : "system trust store")) (\(handover.environment.count) variables)")
            } catch {
                throw ValidationError("invalid sidecar handover: \(error)")
            }
            return
        }
        // Run Swift concurrency's tasks on the NIO event loops, so an admission is answered on the
        // loop that owns its connection instead of hopping to the concurrency pool and back.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        try await InjectorApplication(configuration: configuration, logger: Logger(label: "chaperone-injector")).run()
    }

    static func address(_ text: String, option: String) throws -> InjectorConfiguration.Address {
        do {
            return try .init(parsing: text, option: option)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
