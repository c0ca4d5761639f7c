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

/// The injector process: the HTTPS webhook listener, the plain-HTTP admin listener and, in
/// self-signed mode, the CA publisher, run together until SIGTERM/SIGINT.
public struct InjectorApplication: Sendable {
    public let configuration: InjectorConfiguration
    public let logger: Logger

    public init(configuration: InjectorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        // Only self-signed mode talks to the Kubernetes API; the client must be shut down on every path.
        let client = self.configuration.tls.mode == .selfSigned ? try KubernetesAPIClient(configuration: self.configuration.kubernetes) : nil
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
        let logger = self.logger
        let metrics = InjectorMetrics()
        let readiness = NIOLockedValueBox((listening: false, draining: false))
        var services: [any Service] = []

        // The certificate comes from files (cert-manager, your own) or from our own CA in a Secret.
        let source: (certificate: TimedCertificateReloader.Location, key: TimedCertificateReloader.Location)
        switch config.tls.mode {
        case .files:
            source = (.file(path: config.tls.certificateFile), .file(path: config.tls.privateKeyFile))
        case .selfSigned:
            guard let client = apiClient else { throw InjectorStartupError(description: "self-signed mode needs the Kubernetes API") }
            let publisher = CABundlePublisher(client: client, configuration: config, metrics: metrics, logger: logger)
            try await publisher.initialSync()
            source = (
                .memory { Array((publisher.material?.certificatePEM ?? "").utf8) },
                .memory { Array((publisher.material?.privateKeyPEM ?? "").utf8) }
            )
            services.append(publisher)
        }
        let reloader: TimedCertificateReloader
        do {
            reloader = try TimedCertificateReloader.makeReloaderValidatingSources(configuration: .init(
                refreshInterval: config.tls.reloadInterval.duration,
                certificateSource: .init(location: source.certificate, format: .pem),
                privateKeySource: .init(location: source.key, format: .pem)
            ) { reloader in
                reloader.onCertificateLoaded = { diff in
                    guard let leaf = diff.currentX509CertificateChain.first else { return }
                    metrics.certificateLoaded(notAfterUnixSeconds: leaf.notValidAfter.timeIntervalSince1970)
                    logger.info("tls.certificate_loaded", metadata: [
                        "subject": "\(leaf.subject)", "not_after": "\(leaf.notValidAfter)", "serial": "\(leaf.serialNumber)",
                    ])
                }
                reloader.onCertificateLoadFailed = { failure in
                    logger.warning("tls.certificate_reload_failed", metadata: [
                        "error": "\(failure.error)", "effect": "still serving the previous certificate",
                    ])
                }
            })
        } catch {
            throw InjectorStartupError(description: "cannot load the webhook certificate (tls.mode: \(config.tls.mode.rawValue)): \(error)")
        }
        services.append(reloader)
        var tls = try TLSConfiguration.makeServerConfiguration(certificateReloader: reloader)
        tls.minimumTLSVersion = .tlsv12

        let endpoint = AdmissionEndpoint(injector: SidecarInjector(configuration: config), metrics: metrics, logger: logger)
        let webhookRouter = Router()
        webhookRouter.post(RouterPath(AdmissionEndpoint.path)) { request, _ in await endpoint.respond(to: request) }
        let webhook = Application(
            router: webhookRouter,
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port), serverName: nil),
            onServerRunning: { channel in
                readiness.withLockedValue { $0.listening = true }
                logger.info("listener.started", metadata: ["listener": "webhook", "address": "\(channel.localAddress?.description ?? "")"])
            },
            logger: logger
        )

        let adminRouter = Router()
        adminRouter.get("/healthz") { _, _ in "ok\n" }
        adminRouter.get("/readyz") { _, _ -> Response in
            let state = readiness.withLockedValue { $0 }
            let ready = state.listening && !state.draining
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: ready ? "ready\n" : "not ready\n")))
        }
        adminRouter.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            metrics.registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        let admin = Application(
            router: adminRouter,
            configuration: .init(address: .hostname(config.admin.host, port: config.admin.port)),
            onServerRunning: { channel in
                logger.info("listener.started", metadata: ["listener": "admin", "address": "\(channel.localAddress?.description ?? "")"])
            },
            logger: logger
        )
        services.append(webhook)
        services.append(admin)

        logger.info("injector.starting", metadata: [
            "version": "\(ChaperoneInjectorVersion.current)", "tls_mode": "\(config.tls.mode.rawValue)",
            "failure_mode": "\(config.failureMode.rawValue)", "native_sidecar": "\(config.sidecar.native)",
            "never_injected": "\(config.neverInjected.sorted().joined(separator: ","))", "sidecar_image": "\(config.sidecar.image)",
        ])
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            readiness.withLockedValue { $0.draining = true }
        }
    }
}

struct InjectorStartupError: Error, CustomStringConvertible {
    var description: String
}
