public import Logging
public import NIOCertificateReloading
import Foundation
import X509

/// The serving certificate of the Hummingbird-based binaries (the injector's webhook, the
/// collector's API): re-read every `interval` from its sources, logged when it changes
/// (`tls.certificate_loaded`) and when a refresh fails (`tls.certificate_reload_failed`, the
/// previous certificate stays in use). Fails at once if there is no valid pair to start with.
public enum ServingCertificate {
    public static func reloader(
        certificate: TimedCertificateReloader.Location, privateKey: TimedCertificateReloader.Location, interval: Duration, logger: Logger,
        onLoaded: @escaping @Sendable (_ notAfterUnixSeconds: Double) -> Void = { _ in }
    ) throws -> TimedCertificateReloader {
        try TimedCertificateReloader.makeReloaderValidatingSources(configuration: .init(
            refreshInterval: interval,
            certificateSource: .init(location: certificate, format: .pem),
            privateKeySource: .init(location: privateKey, format: .pem)
        ) { reloader in
            reloader.onCertificateLoaded = { diff in
                // The reloader reports every refresh; only a different certificate is news.
                guard let leaf = diff.currentX509CertificateChain.first, diff.previousX509CertificateChain?.first != leaf else { return }
                onLoaded(leaf.notValidAfter.timeIntervalSince1970)
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
    }
}
