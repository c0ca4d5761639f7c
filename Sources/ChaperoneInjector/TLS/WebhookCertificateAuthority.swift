import Crypto
public import Foundation
import SwiftASN1
import X509

/// The injector's own CA and the serving certificate it issues for the webhook Service, as PEM.
/// Used in `tls.mode: self-signed`; kept in a Secret so every replica serves the same chain.
public struct WebhookTLSMaterial: Sendable, Equatable {
    public var caCertificatePEM: String
    public var caPrivateKeyPEM: String
    public var certificatePEM: String
    public var privateKeyPEM: String

    /// Secret data keys.
    static let keys = (ca: "ca.crt", caKey: "ca.key", certificate: "tls.crt", privateKey: "tls.key")

    public init(caCertificatePEM: String, caPrivateKeyPEM: String, certificatePEM: String, privateKeyPEM: String) {
        self.caCertificatePEM = caCertificatePEM
        self.caPrivateKeyPEM = caPrivateKeyPEM
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    init?(secretData data: [String: Data]) {
        func text(_ key: String) -> String? { data[key].map { String(decoding: $0, as: UTF8.self) } }
        guard let ca = text(Self.keys.ca), let caKey = text(Self.keys.caKey), let certificate = text(Self.keys.certificate),
            let key = text(Self.keys.privateKey)
        else { return nil }
        self.init(caCertificatePEM: ca, caPrivateKeyPEM: caKey, certificatePEM: certificate, privateKeyPEM: key)
    }

    var secretData: [String: Data] {
        [
            Self.keys.ca: Data(self.caCertificatePEM.utf8), Self.keys.caKey: Data(self.caPrivateKeyPEM.utf8),
            Self.keys.certificate: Data(self.certificatePEM.utf8), Self.keys.privateKey: Data(self.privateKeyPEM.utf8),
        ]
    }
}

/// Mints the CA and serving certificates (ECDSA P-256, SHA-256) with swift-certificates.
public enum WebhookCertificateAuthority {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The DNS names the API server may use for the Service: `svc`, `svc.ns`, `svc.ns.svc`, and
    /// the cluster-domain form.
    public static func dnsNames(service: String, namespace: String) -> [String] {
        [service, "\(service).\(namespace)", "\(service).\(namespace).svc", "\(service).\(namespace).svc.cluster.local"]
    }

    /// A new CA (valid ten years) and a serving certificate issued by it.
    public static func makeMaterial(dnsNames: [String], validity: TimeInterval, now: Date = Date()) throws -> WebhookTLSMaterial {
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("Chaperone")
            CommonName("chaperone-injector webhook CA")
        }
        let caPublicKey = Certificate.PublicKey(caKey.publicKey)
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: caPublicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: caPublicKey)
            },
            issuerPrivateKey: .init(caKey)
        )
        let caPEM = try ca.serializeAsPEM().pemString
        return try self.issue(
            caCertificatePEM: caPEM, caPrivateKeyPEM: caKey.pemRepresentation, dnsNames: dnsNames, validity: validity, now: now
        )
    }

    /// A new serving certificate from an existing CA (renewal keeps the caBundle unchanged).
    public static func issue(
        caCertificatePEM: String, caPrivateKeyPEM: String, dnsNames: [String], validity: TimeInterval, now: Date = Date()
    ) throws -> WebhookTLSMaterial {
        let ca = try Certificate(pemEncoded: caCertificatePEM)
        let caKey = try P256.Signing.PrivateKey(pemRepresentation: caPrivateKeyPEM)
        guard ca.publicKey == Certificate.PublicKey(caKey.publicKey) else {
            throw Failure(description: "the CA certificate and CA key in the Secret do not match")
        }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let subject = try DistinguishedName {
            OrganizationName("Chaperone")
            CommonName(dnsNames.first ?? "chaperone-injector")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: min(now.addingTimeInterval(validity), ca.notValidAfter),
            issuer: ca.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(dnsNames.map { .dnsName($0) })
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: try ca.extensions.subjectKeyIdentifier?.keyIdentifier ?? SubjectKeyIdentifier(hash: ca.publicKey).keyIdentifier)
            },
            issuerPrivateKey: .init(caKey)
        )
        return WebhookTLSMaterial(
            caCertificatePEM: caCertificatePEM, caPrivateKeyPEM: caPrivateKeyPEM,
            certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation
        )
    }

    /// Whether the CA certificate parses and stays valid for longer than `interval`.
    static func isValid(caPEM: String, beyond interval: TimeInterval, now: Date = Date()) -> Bool {
        guard let ca = try? Certificate(pemEncoded: caPEM) else { return false }
        return ca.notValidAfter > now.addingTimeInterval(interval)
    }

    /// Whether `material`'s serving certificate still serves `dnsNames` for longer than `renewBefore`.
    public static func isCurrent(_ material: WebhookTLSMaterial, dnsNames: [String], renewBefore: TimeInterval, now: Date = Date()) -> Bool {
        self.isCurrent(
            certificatePEM: material.certificatePEM, privateKeyPEM: material.privateKeyPEM, caCertificatePEM: material.caCertificatePEM,
            dnsNames: dnsNames, renewBefore: renewBefore, now: now)
    }

    /// The same for a serving pair issued by `caCertificatePEM` (no CA key needed).
    static func isCurrent(
        certificatePEM: String, privateKeyPEM: String, caCertificatePEM: String, dnsNames: [String], renewBefore: TimeInterval, now: Date = Date()
    ) -> Bool {
        guard let certificate = try? Certificate(pemEncoded: certificatePEM),
            let ca = try? Certificate(pemEncoded: caCertificatePEM),
            let key = try? P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM),
            certificate.publicKey == Certificate.PublicKey(key.publicKey),
            certificate.issuer == ca.subject,
            ca.notValidAfter > now.addingTimeInterval(renewBefore),
            certificate.notValidAfter > now.addingTimeInterval(renewBefore),
            let names = try? certificate.extensions.subjectAlternativeNames
        else { return false }
        let served = Set(names.compactMap { name -> String? in
            if case .dnsName(let dns) = name { return dns }
            return nil
        })
        return Set(dnsNames).isSubset(of: served)
    }
}
