import AsyncHTTPClient
public import ChaperoneCore
import Logging
import NIOCore
public import NIOPosix
import NIOSSL

/// A configured upstream at run time: where it is, how to authenticate to it, and the HTTP client
/// (its own connection pool and TLS trust) that reaches it.
public final class Upstream: Sendable {
    public let name: String
    public let config: ProxyConfiguration.Upstream
    public let credential: CredentialStore?
    let client: HTTPClient

    public init(
        name: String, config: ProxyConfiguration.Upstream, timeouts: ProxyConfiguration.Timeouts,
        eventLoopGroup: MultiThreadedEventLoopGroup
    ) throws {
        self.name = name
        self.config = config
        self.credential = config.credential.map { CredentialStore(credential: $0, provider: config.provider) }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let bundle = config.caBundle {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(bundle))
            } catch {
                throw ConfigError(field: "upstreams.\(name).ca_bundle", message: "cannot load CA bundle \(bundle): \(error)")
            }
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(timeouts.connect.milliseconds), read: .milliseconds(timeouts.idle.milliseconds)),
            connectionPool: .init(idleTimeout: .seconds(60)),
            decompression: .disabled
        )
        // A refused connection or a failed TLS handshake is answered at once with a clear 502,
        // instead of being retried silently until `timeouts.connect`: the agent's SDK has its own
        // retry with backoff, and a misconfigured upstream should say so without a wait.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        self.client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    /// `<baseURL><path><query>`.
    func url(for target: UpstreamTarget) -> String {
        self.config.baseURL + target.path + target.query
    }

    public func shutdown() async throws {
        try await self.client.shutdown()
    }
}
