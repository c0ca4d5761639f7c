import AsyncHTTPClient
public import ChaperoneCore
public import Foundation
public import NIOCore
import NIOFoundationCompat
public import NIOHTTP1
import NIOSSL

/// A client for the few Kubernetes API calls Chaperone makes from inside the cluster.
/// Authenticates with the pod's service-account token, re-read on every call because the kubelet
/// rotates it, and trusts only the cluster CA.
public final class KubernetesAPIClient: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public let baseURL: String
    private let tokenFile: String
    private let userAgent: String
    private let client: HTTPClient
    private let timeout: TimeAmount = .seconds(10)

    public init(settings: KubernetesAPISettings, userAgent: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let url = settings.apiURL {
            self.baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else {
            guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
                throw Failure(description: "not running in a cluster (KUBERNETES_SERVICE_HOST unset) and kubernetes.api_url not configured")
            }
            self.baseURL = host.contains(":") ? "https://[\(host)]:\(port)" : "https://\(host):\(port)"
        }
        self.tokenFile = settings.tokenFile
        self.userAgent = userAgent
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(settings.caFile))
        } catch {
            throw Failure(description: "cannot read the cluster CA \(settings.caFile): \(error)")
        }
        tls.minimumTLSVersion = .tlsv12
        var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(10))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    }

    public func shutdown() async throws {
        try await self.client.shutdown()
    }

    /// One API call; answers the status and body (errors are the caller's to judge).
    public func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, contentType: String = "application/json") async throws -> (Int, Data) {
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
        request.headers.add(name: "User-Agent", value: self.userAgent)
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await self.client.execute(request, timeout: self.timeout)
        let bytes = try await response.body.collect(upTo: 4 * 1024 * 1024)
        return (Int(response.status.code), Data(buffer: bytes))
    }

    /// Throws unless `status` is one of `accepted`, with the message of the API's Status object.
    public static func expect(_ status: Int, _ accepted: Set<Int>, _ body: Data, _ what: String) throws {
        guard !accepted.contains(status) else { return }
        let message = (try? JSONDecoder().decode(StatusObject.self, from: body))?.message ?? String(decoding: body.prefix(300), as: UTF8.self)
        throw Failure(description: "cannot \(what): HTTP \(status): \(message)")
    }

    private struct StatusObject: Decodable {
        var message: String?
    }
}
