import ChaperoneAdmin
import ChaperoneKubernetes
import ChaperoneCore
import Foundation
import Hummingbird
import HummingbirdTLS
public import Logging
import NIOCertificateReloading
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import UnixSignals
import X509

/// The injector process: the plain-HTTP admin listener (up from the first moment, so liveness
/// holds while a certificate is being obtained) and the webhook — certificate, HTTPS listener
/// and, in self-signed mode, the CA publisher — run together until SIGTERM/SIGINT.
public struct InjectorApplication: Sendable {
    public let configuration: InjectorConfiguration
    public let logger: Logger

    public init(configuration: InjectorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        // Only self-signed mode talks to the Kubernetes API; the client must be shut down on every path.
        let client = self.configuration.tls.mode == .selfSigned ? try KubernetesAPIClient(settings: self.configuration.kubernetes, userAgent: "chaperone-injector/\(ChaperoneInjectorVersion.current)") : nil
        do {
            try await self.run(apiClient: client)
        } catch {
            try? await client?.shutdown()
            throw error
        }
        try? await client?.shutdown()
    }

    private func run(apiClient: KubernetesAPIClient?) async throws {
        let config = self.configuration
        let metrics = InjectorMetrics()
        let readiness = Readiness()
        let webhook = WebhookService(configuration: config, apiClient: apiClient, metrics: metrics, readiness: readiness, logger: self.logger)
        let admin = AdminListener.service(address: self.configuration.admin, readiness: readiness, registry: metrics.registry, logger: self.logger)
        self.logger.info("injector.starting", metadata: [
            "version": "\(ChaperoneInjectorVersion.current)", "tls_mode": "\(config.tls.mode.rawValue)",
            "failure_mode": "\(config.failureMode.rawValue)", "native_sidecar": "\(config.sidecar.native)",
            "never_injected": "\(config.neverInjected.sorted().joined(separator: ","))", "sidecar_image": "\(config.sidecar.image)",
        ])
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: admin), .init(service: webhook)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: self.logger
        ))
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            readiness.draining()
        }
    }

}

/// The webhook side: obtain a certificate (files, or the self-signed Secret), then serve HTTPS
/// with a reloading certificate, and keep the CA published (self-signed mode).
struct WebhookService: Service {
    let configuration: InjectorConfiguration
    let apiClient: KubernetesAPIClient?
    let metrics: InjectorMetrics
    let readiness: Readiness
    let logger: Logger

    func run() async throws {
        let config = self.configuration
        let logger = self.logger
        let metrics = self.metrics

        // The certificate comes from files (cert-manager, your own) or from our own CA in a Secret.
        let source: (certificate: TimedCertificateReloader.Location, key: TimedCertificateReloader.Location)
        var publisher: CABundlePublisher?
        switch config.tls.mode {
        case .files:
            source = (.file(path: config.tls.certificateFile), .file(path: config.tls.privateKeyFile))
        case .selfSigned:
            guard let client = self.apiClient else { throw InjectorStartupError(description: "self-signed mode needs the Kubernetes API") }
            let created = CABundlePublisher(client: client, configuration: config, metrics: metrics, logger: logger)
            do {
                try await cancelWhenGracefulShutdown { try await created.initialSync() }
            } catch is CancellationError {
                return  // asked to stop before a certificate was obtained
            }
            source = (
                .memory { Array((created.material?.certificatePEM ?? "").utf8) },
                .memory { Array((created.material?.privateKeyPEM ?? "").utf8) }
            )
            publisher = created
        }
        let reloader: TimedCertificateReloader
        do {
            reloader = try ServingCertificate.reloader(
                certificate: source.certificate, privateKey: source.key, interval: config.tls.reloadInterval.duration, logger: logger,
                onLoaded: { metrics.certificateLoaded(notAfterUnixSeconds: $0) })
        } catch {
            throw InjectorStartupError(description: "cannot load the webhook certificate (tls.mode: \(config.tls.mode.rawValue)): \(error)")
        }
        var tls = try TLSConfiguration.makeServerConfiguration(certificateReloader: reloader)
        tls.minimumTLSVersion = .tlsv12

        // What every sidecar is handed; checked at start-up, so a bad file stops the injector
        // here rather than every agent's sidecar later.
        let caSource = publisher
        let ownCA: @Sendable () -> String? = { caSource?.material?.caCertificatePEM }
        let handover: SidecarHandover
        do {
            handover = try SidecarHandover.read(config.sidecar, ownCA: ownCA())
        } catch {
            throw InjectorStartupError(description: "invalid sidecar handover: \(error)")
        }
        SidecarInjectorSource.log(handover, logger: logger, message: "sidecar.handover_loaded")
        let injectors = SidecarInjectorSource(configuration: config, handover: handover)
        let endpoint = AdmissionEndpoint(injectors: injectors, metrics: metrics, logger: logger)
        let router = Router()
        router.post(RouterPath(AdmissionEndpoint.path)) { request, _ in await endpoint.respond(to: request) }
        let readiness = self.readiness
        let listener = Application(
            router: router,
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port)),
            onServerRunning: { channel in
                readiness.listening()
                logger.info("listener.started", metadata: ["listener": "webhook", "address": "\(channel.localAddress?.description ?? "")"])
            },
            logger: logger
        )
        // Graceful shutdown reaches these child tasks through the task-local the group set.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await reloader.run() }
            group.addTask {
                while (try? await cancelWhenGracefulShutdown { try await Task.sleep(for: config.tls.reloadInterval.duration) }) != nil {
                    injectors.refresh(ownCA: ownCA(), logger: logger)
                }
            }
            group.addTask { try await listener.run() }
            if let publisher {
                group.addTask { try await publisher.run() }
            }
        }
    }
}

struct InjectorStartupError: Error, CustomStringConvertible {
    var description: String
}
