@testable import ChaperoneInjector
import Foundation
import Testing

@Suite struct WebhookCertificateAuthorityTests {
    let names = WebhookCertificateAuthority.dnsNames(service: "chaperone-injector", namespace: "chaperone-system")

    @Test func servesTheServiceNames() throws {
        #expect(self.names.contains("chaperone-injector.chaperone-system.svc"))
        let material = try WebhookCertificateAuthority.makeMaterial(dnsNames: self.names, validity: 30 * 86400)
        #expect(material.caCertificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(WebhookCertificateAuthority.isCurrent(material, dnsNames: self.names, renewBefore: 86400))
        #expect(!WebhookCertificateAuthority.isCurrent(material, dnsNames: ["other.example"], renewBefore: 86400))
        // Due for renewal once less than renewBefore is left.
        #expect(!WebhookCertificateAuthority.isCurrent(material, dnsNames: self.names, renewBefore: 31 * 86400))
    }

    @Test func renewalKeepsTheCA() throws {
        let first = try WebhookCertificateAuthority.makeMaterial(dnsNames: self.names, validity: 86400)
        let renewed = try WebhookCertificateAuthority.issue(
            caCertificatePEM: first.caCertificatePEM, caPrivateKeyPEM: first.caPrivateKeyPEM, dnsNames: self.names, validity: 365 * 86400)
        #expect(renewed.caCertificatePEM == first.caCertificatePEM)
        #expect(renewed.certificatePEM != first.certificatePEM)
        #expect(WebhookCertificateAuthority.isCurrent(renewed, dnsNames: self.names, renewBefore: 30 * 86400))
    }

    @Test func aForeignKeyIsRefused() throws {
        let one = try WebhookCertificateAuthority.makeMaterial(dnsNames: self.names, validity: 86400)
        let other = try WebhookCertificateAuthority.makeMaterial(dnsNames: self.names, validity: 86400)
        #expect(throws: WebhookCertificateAuthority.Failure.self) {
            try WebhookCertificateAuthority.issue(
                caCertificatePEM: one.caCertificatePEM, caPrivateKeyPEM: other.caPrivateKeyPEM, dnsNames: self.names, validity: 86400)
        }
        var mixed = one
        mixed.privateKeyPEM = other.privateKeyPEM
        #expect(!WebhookCertificateAuthority.isCurrent(mixed, dnsNames: self.names, renewBefore: 0))
    }
}
