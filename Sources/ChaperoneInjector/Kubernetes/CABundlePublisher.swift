import ChaperoneKubernetes
import ChaperoneCore
import Foundation
import Logging
import NIOConcurrencyHelpers
public import ServiceLifecycle

/// Self-signed mode: keeps the webhook's TLS material in a Secret (so every replica serves the
/// same chain), renews the serving certificate before it expires, and keeps the CA in the
/// MutatingWebhookConfiguration's `caBundle` — patched only when the bytes differ, retried with
/// backoff when the API server is unreachable or a concurrent writer wins.
public final class CABundlePublisher: Service, Sendable {
    let client: KubernetesAPIClient
    let configuration: InjectorConfiguration
    let metrics: InjectorMetrics
    let logger: Logger
    /// The material the TLS listener serves; read by the certificate reloader.
    let current = NIOLockedValueBox<WebhookTLSMaterial?>(nil)
    private let onChange: @Sendable () -> Void
    private let syncInterval: Duration

    init(
        client: KubernetesAPIClient, configuration: InjectorConfiguration, metrics: InjectorMetrics, logger: Logger,
        syncInterval: Duration = .seconds(60), onChange: @escaping @Sendable () -> Void = {}
    ) {
        self.client = client
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.syncInterval = syncInterval
        self.onChange = onChange
    }

    public var material: WebhookTLSMaterial? { self.current.withLockedValue { $0 } }

    var dnsNames: [String] {
        WebhookCertificateAuthority.dnsNames(service: self.configuration.tls.serviceName, namespace: self.configuration.namespace)
    }

    /// Until the first success: the listener cannot start without a certificate.
    public func initialSync() async throws {
        var delay = Duration.milliseconds(500)
        while true {
            do {
                try await self.sync()
                return
            } catch {
                self.logger.warning("tls.sync_failed", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try await Task.sleep(for: Self.jittered(delay))
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    public func run() async throws {
        var delay = self.syncInterval
        while true {
            let wait = Self.jittered(delay)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            } catch {
                return  // shutting down
            }
            do {
                try await self.sync()
                delay = self.syncInterval
            } catch {
                // After a failure retry soon (1 s, doubling), never slower than the normal interval.
                delay = delay >= self.syncInterval ? .seconds(1) : min(delay * 2, self.syncInterval)
                self.logger.warning("tls.sync_failed", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
            }
        }
    }

    /// One pass: make sure the Secret holds current material, serve it, publish its CA.
    public func sync() async throws {
        let material = try await self.ensureSecret()
        // The collector's certificate must not hold up the webhook: a failure is logged and
        // retried on the next pass.
        do {
            try await self.ensureCollectorSecret(authority: material)
        } catch {
            self.logger.warning("tls.collector_certificate_failed", metadata: ["error": "\(error)", "retry_in": "\(self.syncInterval)"])
        }
        let changed = self.current.withLockedValue { current in
            defer { current = material }
            return current != material
        }
        if changed { self.onChange() }
        do {
            try await self.publish(caPEM: material.caCertificatePEM)
        } catch {
            self.metrics.caBundleSync(outcome: "error")
            throw error
        }
    }

    private func ensureSecret() async throws -> WebhookTLSMaterial {
        let namespace = self.configuration.namespace
        let name = self.configuration.tls.secretName
        let validity = TimeInterval(self.configuration.tls.servingValidity.milliseconds) / 1000
        let renewBefore = TimeInterval(self.configuration.tls.renewBefore.milliseconds) / 1000
        for _ in 0..<5 {
            guard let secret = try await self.client.secret(namespace: namespace, name: name) else {
                let material = try WebhookCertificateAuthority.makeMaterial(dnsNames: self.dnsNames, validity: validity)
                if try await self.client.createSecret(namespace: namespace, name: name, data: material.secretData) {
                    self.logger.info("tls.secret_created", metadata: ["secret": "\(namespace)/\(name)"])
                    return material
                }
                continue  // another replica created it first: use theirs
            }
            guard let stored = WebhookTLSMaterial(secretData: secret.data) else {
                throw KubernetesAPIClient.Failure(description: "Secret \(namespace)/\(name) lacks ca.crt, ca.key, tls.crt or tls.key; delete it to let the injector recreate it")
            }
            if WebhookCertificateAuthority.isCurrent(stored, dnsNames: self.dnsNames, renewBefore: renewBefore) {
                return stored
            }
            // Renew the serving certificate from the same CA; a CA near its end is replaced.
            let caUsable = WebhookCertificateAuthority.isValid(caPEM: stored.caCertificatePEM, beyond: renewBefore * 2)
            let renewed = caUsable
                ? try WebhookCertificateAuthority.issue(
                    caCertificatePEM: stored.caCertificatePEM, caPrivateKeyPEM: stored.caPrivateKeyPEM, dnsNames: self.dnsNames, validity: validity)
                : try WebhookCertificateAuthority.makeMaterial(dnsNames: self.dnsNames, validity: validity)
            if try await self.client.replaceSecret(namespace: namespace, name: name, data: renewed.secretData, resourceVersion: secret.resourceVersion) {
                self.logger.info("tls.certificate_renewed", metadata: ["secret": "\(namespace)/\(name)", "new_ca": "\(!caUsable)"])
                return renewed
            }
        }
        throw KubernetesAPIClient.Failure(description: "Secret \(namespace)/\(name) kept changing under concurrent writers")
    }

    /// Keeps a serving certificate for the collector's Service, issued by the injector's CA, in
    /// `tls.collector_secret` (keys `ca.crt`, `tls.crt`, `tls.key`; never the CA's key). The
    /// collector mounts it and reloads it; every sidecar is handed the CA.
    private func ensureCollectorSecret(authority: WebhookTLSMaterial) async throws {
        let namespace = self.configuration.namespace
        let name = self.configuration.tls.collectorSecretName
        guard !name.isEmpty else { return }
        // `localhost` too: operators reach the collector through `kubectl port-forward`.
        let names = WebhookCertificateAuthority.dnsNames(service: self.configuration.tls.collectorServiceName, namespace: namespace) + ["localhost"]
        let validity = TimeInterval(self.configuration.tls.servingValidity.milliseconds) / 1000
        let renewBefore = TimeInterval(self.configuration.tls.renewBefore.milliseconds) / 1000
        let keys = WebhookTLSMaterial.keys
        for _ in 0..<5 {
            let secret = try await self.client.secret(namespace: namespace, name: name)
            if let data = secret?.data, let ca = data[keys.ca], let certificate = data[keys.certificate], let key = data[keys.privateKey],
                String(decoding: ca, as: UTF8.self) == authority.caCertificatePEM,
                WebhookCertificateAuthority.isCurrent(
                    certificatePEM: String(decoding: certificate, as: UTF8.self), privateKeyPEM: String(decoding: key, as: UTF8.self),
                    caCertificatePEM: authority.caCertificatePEM, dnsNames: names, renewBefore: renewBefore)
            {
                return
            }
            let issued = try WebhookCertificateAuthority.issue(
                caCertificatePEM: authority.caCertificatePEM, caPrivateKeyPEM: authority.caPrivateKeyPEM, dnsNames: names, validity: validity)
            let data = [
                keys.ca: Data(issued.caCertificatePEM.utf8), keys.certificate: Data(issued.certificatePEM.utf8),
                keys.privateKey: Data(issued.privateKeyPEM.utf8),
            ]
            let written: Bool
            if let secret {
                written = try await self.client.replaceSecret(namespace: namespace, name: name, data: data, resourceVersion: secret.resourceVersion)
            } else {
                written = try await self.client.createSecret(namespace: namespace, name: name, data: data)
            }
            if written {
                self.logger.info("tls.collector_certificate_issued", metadata: [
                    "secret": "\(namespace)/\(name)", "dns_names": "\(names.joined(separator: ","))",
                ])
                return
            }
        }
        throw KubernetesAPIClient.Failure(description: "Secret \(namespace)/\(name) kept changing under concurrent writers")
    }

    private func publish(caPEM: String) async throws {
        let name = self.configuration.tls.webhookConfigurationName
        let bundle = Data(caPEM.utf8).base64EncodedString()
        for _ in 0..<5 {
            let read = try await self.client.webhookConfiguration(name: name)
            let stale = read.webhooks.indices.filter { read.webhooks[$0].caBundle != bundle }
            if stale.isEmpty {
                self.metrics.caBundleSync(outcome: "unchanged")
                return
            }
            if try await self.client.setCABundle(configuration: name, read: read, indices: stale, caBundle: bundle) {
                self.metrics.caBundleSync(outcome: "patched")
                self.logger.info("tls.ca_bundle_published", metadata: [
                    "webhook_configuration": "\(name)", "webhooks": "\(stale.map { read.webhooks[$0].name }.joined(separator: ","))",
                ])
                return
            }
        }
        throw KubernetesAPIClient.Failure(description: "MutatingWebhookConfiguration \(name) kept changing under concurrent writers")
    }

    static func jittered(_ delay: Duration) -> Duration {
        delay * Double.random(in: 0.8...1.2)
    }
}
