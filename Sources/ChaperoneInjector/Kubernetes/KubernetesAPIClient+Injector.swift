import ChaperoneKubernetes
import Foundation
import NIOHTTP1

/// The injector's calls (self-signed mode): read and write its TLS Secret, read and patch its
/// MutatingWebhookConfiguration.
extension KubernetesAPIClient {
    struct Secret: Sendable {
        var data: [String: Data]
        var resourceVersion: String
    }

    struct WebhookConfiguration: Sendable {
        var resourceVersion: String
        var webhooks: [(name: String, caBundle: String?)]
    }

    func secret(namespace: String, name: String) async throws -> Secret? {
        let (status, body) = try await self.call(.GET, "/api/v1/namespaces/\(namespace)/secrets/\(name)")
        if status == 404 { return nil }
        try Self.expect(status, [200], body, "read Secret \(namespace)/\(name)")
        let object = try JSONDecoder().decode(SecretObject.self, from: body)
        return Secret(data: object.data ?? [:], resourceVersion: object.metadata.resourceVersion ?? "")
    }

    /// Creates the Secret; returns false when another replica created it first (409).
    func createSecret(namespace: String, name: String, data: [String: Data]) async throws -> Bool {
        let object = SecretObject(metadata: .init(name: name, namespace: namespace, labels: ["app.kubernetes.io/part-of": "chaperone"]), data: data)
        let (status, body) = try await self.call(.POST, "/api/v1/namespaces/\(namespace)/secrets", body: try JSONEncoder().encode(object))
        if status == 409 { return false }
        try Self.expect(status, [201, 200], body, "create Secret \(namespace)/\(name)")
        return true
    }

    /// Replaces the Secret's data if nobody changed it since `resourceVersion`; false on a conflict.
    func replaceSecret(namespace: String, name: String, data: [String: Data], resourceVersion: String) async throws -> Bool {
        let object = SecretObject(
            metadata: .init(name: name, namespace: namespace, resourceVersion: resourceVersion, labels: ["app.kubernetes.io/part-of": "chaperone"]),
            data: data)
        let (status, body) = try await self.call(.PUT, "/api/v1/namespaces/\(namespace)/secrets/\(name)", body: try JSONEncoder().encode(object))
        if status == 409 { return false }
        try Self.expect(status, [200], body, "update Secret \(namespace)/\(name)")
        return true
    }

    func webhookConfiguration(name: String) async throws -> WebhookConfiguration {
        let (status, body) = try await self.call(.GET, Self.webhookPath(name))
        try Self.expect(status, [200], body, "read MutatingWebhookConfiguration \(name)")
        let object = try JSONDecoder().decode(WebhookObject.self, from: body)
        return WebhookConfiguration(
            resourceVersion: object.metadata.resourceVersion ?? "",
            webhooks: (object.webhooks ?? []).map { ($0.name, $0.clientConfig?.caBundle) }
        )
    }

    /// Sets `caBundle` on the webhooks at `indices`, guarded by `test` operations on each
    /// webhook's name and on the resourceVersion, so a concurrent edit fails instead of landing
    /// on the wrong entry. Returns false on a failed test (422/409): read again and retry.
    func setCABundle(configuration name: String, read: WebhookConfiguration, indices: [Int], caBundle: String) async throws -> Bool {
        var operations: [[String: String]] = [["op": "test", "path": "/metadata/resourceVersion", "value": read.resourceVersion]]
        for index in indices {
            operations.append(["op": "test", "path": "/webhooks/\(index)/name", "value": read.webhooks[index].name])
            operations.append(["op": "add", "path": "/webhooks/\(index)/clientConfig/caBundle", "value": caBundle])
        }
        let (status, body) = try await self.call(
            .PATCH, Self.webhookPath(name), body: try JSONEncoder().encode(operations), contentType: "application/json-patch+json")
        if status == 409 || status == 422 { return false }
        try Self.expect(status, [200], body, "patch caBundle of MutatingWebhookConfiguration \(name)")
        return true
    }

    private static func webhookPath(_ name: String) -> String {
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/\(name)"
    }

    fileprivate struct ObjectMeta: Codable {
        var name: String?
        var namespace: String?
        var resourceVersion: String?
        var labels: [String: String]?
    }

    fileprivate struct SecretObject: Codable {
        var apiVersion: String? = "v1"
        var kind: String? = "Secret"
        var metadata: ObjectMeta
        var type: String? = "Opaque"
        var data: [String: Data]?
    }

    fileprivate struct WebhookObject: Decodable {
        var metadata: ObjectMeta
        var webhooks: [Webhook]?

        struct Webhook: Decodable {
            var name: String
            var clientConfig: ClientConfig?
        }

        struct ClientConfig: Decodable {
            var caBundle: String?
        }
    }

}
