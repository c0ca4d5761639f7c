import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// The few Kubernetes API calls the injector makes (self-signed mode): read and write its TLS
/// Secret, read and patch its MutatingWebhookConfiguration. Authenticates with the pod's
/// service-account token, re-read on every call because the kubelet rotates it, and trusts only
/// the cluster CA.
public final class KubernetesAPIClient: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    struct Secret: Sendable {
        var data: [String: Data]
        var resourceVersion: String
    }

    struct WebhookConfiguration: Sendable {
        var resourceVersion: String
        var webhooks: [(name: String, caBundle: String?)]
    }

    private let baseURL: String
    private let tokenFile: String
    private let client: HTTPClient
    private let timeout: TimeAmount = .seconds(10)

    public init(configuration: InjectorConfiguration.KubernetesAPI, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let url = configuration.apiURL {
            self.baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else {
            guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
                throw Failure(description: "not running in a cluster (KUBERNETES_SERVICE_HOST unset) and kubernetes.api_url not configured")
            }
            self.baseURL = host.contains(":") ? "https://[\(host)]:\(port)" : "https://\(host):\(port)"
        }
        self.tokenFile = configuration.tokenFile
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(configuration.caFile))
        } catch {
            throw Failure(description: "cannot read the cluster CA \(configuration.caFile): \(error)")
        }
        tls.minimumTLSVersion = .tlsv12
        var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    }

    public func shutdown() async throws {
        try await self.client.shutdown()
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

    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json") async throws -> (Int, Data) {
        let token: String
        do {
            token = try String(contentsOfFile: self.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw Failure(description: "cannot read the service-account token \(self.tokenFile): \(error.localizedDescription)")
        }
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "chaperone-injector/\(ChaperoneInjectorVersion.current)")
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await self.client.execute(request, timeout: self.timeout)
        let bytes = try await response.body.collect(upTo: 4 * 1024 * 1024)
        return (Int(response.status.code), Data(buffer: bytes))
    }

    private static func expect(_ status: Int, _ accepted: Set<Int>, _ body: Data, _ what: String) throws {
        guard !accepted.contains(status) else { return }
        // The API server answers errors with a Status object; its message is the useful part.
        let message = (try? JSONDecoder().decode(StatusObject.self, from: body))?.message ?? String(decoding: body.prefix(300), as: UTF8.self)
        throw Failure(description: "cannot \(what): HTTP \(status): \(message)")
    }

    private struct ObjectMeta: Codable {
        var name: String?
        var namespace: String?
        var resourceVersion: String?
        var labels: [String: String]?
    }

    private struct SecretObject: Codable {
        var apiVersion: String? = "v1"
        var kind: String? = "Secret"
        var metadata: ObjectMeta
        var type: String? = "Opaque"
        var data: [String: Data]?
    }

    private struct WebhookObject: Decodable {
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

    private struct StatusObject: Decodable {
        var message: String?
    }
}
