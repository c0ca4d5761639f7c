import AsyncHTTPClient
public import ChaperoneCore
import Crypto
import Foundation
import JWTKit
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import NIOSSL

/// The claims of a Kubernetes projected service-account token that the collector reads.
struct ServiceAccountTokenClaims: JWTPayload {
    var iss: IssuerClaim?
    var sub: SubjectClaim?
    var aud: AudienceClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var kubernetes: KubernetesClaims?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, nbf
        case kubernetes = "kubernetes.io"
    }

    struct KubernetesClaims: Codable, Sendable {
        var namespace: String?
        var serviceaccount: ObjectReference?
        var pod: ObjectReference?
        var node: ObjectReference?
    }

    struct ObjectReference: Codable, Sendable {
        var name: String
        var uid: String?
    }

    /// Claims are checked by `ProjectedTokenVerifier` so each refusal has its own reason.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies projected service-account tokens offline: signature against the issuer's JWKS
/// (from a URL or a file, re-read periodically and when a token names an unknown key), then
/// audience, expiry, not-before and issuer. Verified tokens are cached until the earlier of
/// their expiry and `cacheTTL`, so a batch costs a hash lookup, not an RSA verification.
public final class ProjectedTokenVerifier: TokenAuthenticator {
    public enum KeySource: Sendable {
        case url(String)
        case file(String)
    }

    private let source: KeySource
    private let audience: String
    private let issuer: String?
    private let cluster: String?
    private let cacheTTL: Double
    /// Seconds between refreshes of the key set.
    let refreshInterval: Double
    private let logger: Logger
    private let httpClient: HTTPClient?
    private let apiTokenFile: String?
    private let state = NIOLockedValueBox(State())
    private let cache = IdentityCache()

    private struct State {
        var keys = JWTKeyCollection()
        /// Key ids in the set: a token naming another is refused (jwt-kit would fall back to a default key).
        var keyIDs: Set<String> = []
        var lastAttempt: Double = -.infinity
    }

    public init(
        source: KeySource, audience: String, issuer: String?, cluster: String?, cacheTTL: Double, refreshInterval: Double,
        kubernetes: KubernetesAPISettings, logger: Logger
    ) throws {
        self.source = source
        self.audience = audience
        self.issuer = issuer
        self.cluster = cluster
        self.cacheTTL = cacheTTL
        self.refreshInterval = refreshInterval
        self.logger = logger
        if case .url(let url) = source {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            // The API server's own JWKS endpoint is served with the cluster CA and wants the
            // collector's token; any other issuer URL is public and uses the system roots.
            let inCluster = URL(string: url)?.host.map { $0.hasPrefix("kubernetes.default") } ?? false
            if inCluster {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(kubernetes.caFile))
                self.apiTokenFile = kubernetes.tokenFile
            } else {
                self.apiTokenFile = nil
            }
            self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        } else {
            self.httpClient = nil
            self.apiTokenFile = nil
        }
    }

    public func shutdown() async throws {
        try await self.httpClient?.shutdown()
    }

    /// Loads the key set; called at start-up (readiness waits for it) and by `run()`.
    public func refresh() async throws {
        let now = Date().timeIntervalSince1970
        self.state.withLockedValue { $0.lastAttempt = now }
        let json = try await self.fetchKeySet()
        let keys = JWTKeyCollection()
        do {
            try await keys.add(jwksJSON: json)
        } catch {
            throw ConfigError(field: "authentication", message: "the JWKS from \(self.sourceDescription) is not a key set: \(error)")
        }
        struct KeySet: Decodable {
            struct Key: Decodable { var kid: String? }
            var keys: [Key]
        }
        let keyIDs = Set(((try? JSONDecoder().decode(KeySet.self, from: Data(json.utf8)))?.keys ?? []).compactMap(\.kid))
        self.state.withLockedValue {
            $0.keys = keys
            $0.keyIDs = keyIDs
        }
    }

    private var sourceDescription: String {
        switch self.source {
        case .url(let url): url
        case .file(let path): path
        }
    }

    private func fetchKeySet() async throws -> String {
        switch self.source {
        case .file(let path):
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigError(field: "authentication.jwks_file", message: "cannot read \(path): \(error.localizedDescription)")
            }
        case .url(let url):
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            if let tokenFile = self.apiTokenFile, let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) {
                request.headers.add(name: "Authorization", value: "Bearer \(token.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            let response = try await self.httpClient!.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else {
                throw ConfigError(field: "authentication.jwks_url", message: "\(url) answered HTTP \(response.status.code)")
            }
            return String(buffer: body)
        }
    }

    public func authenticate(bearer token: String) async throws(TokenRejection) -> PodIdentity {
        let now = Date().timeIntervalSince1970
        if let identity = self.cache.identity(for: token, now: now) { return identity }
        let claims = try await self.verifySignature(token, retryOnUnknownKey: true)
        let identity = try self.check(claims, now: now)
        self.cache.remember(identity, for: token, until: min(now + self.cacheTTL, claims.exp.map { $0.value.timeIntervalSince1970 } ?? now))
        return identity
    }

    private func verifySignature(_ token: String, retryOnUnknownKey: Bool) async throws(TokenRejection) -> ServiceAccountTokenClaims {
        let (keys, keyIDs) = self.state.withLockedValue { ($0.keys, $0.keyIDs) }
        guard let header = Self.header(of: token) else { throw .malformed }
        do {
            guard let kid = header.kid else { throw JWTError.missingKIDHeader }
            guard keyIDs.contains(kid) else { throw JWTError.unknownKID(JWKIdentifier(string: kid)) }
            return try await keys.verify(token, as: ServiceAccountTokenClaims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .signatureVerificationFailed: throw .badSignature
            case .malformedToken: throw .malformed
            case .unknownKID, .missingKIDHeader, .noKeyProvided:
                // A rotated issuer key: re-read the key set once, at most every 10 seconds.
                let lastAttempt = self.state.withLockedValue { $0.lastAttempt }
                guard retryOnUnknownKey, Date().timeIntervalSince1970 - lastAttempt > 10 else { throw .unknownKey }
                do {
                    try await self.refresh()
                } catch {
                    self.logger.warning("auth.jwks_refresh_failed", metadata: ["source": "\(self.sourceDescription)", "error": "\(error)"])
                    throw .unavailable
                }
                return try await self.verifySignature(token, retryOnUnknownKey: false)
            case .unsupportedAlgorithm: throw .unknownKey
            default: throw .malformed
            }
        } catch {
            throw .malformed
        }
    }

    struct Header: Decodable {
        var kid: String?
    }

    /// A JWT's header; nil if the token is not three base64url parts with a JSON header.
    static func header(of token: String) -> Header? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[0].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64) else { return nil }
        return try? JSONDecoder().decode(Header.self, from: data)
    }

    private func check(_ claims: ServiceAccountTokenClaims, now: Double) throws(TokenRejection) -> PodIdentity {
        guard let audience = claims.aud, audience.value.contains(self.audience) else { throw .wrongAudience }
        guard let exp = claims.exp else { throw .malformed }
        guard exp.value.timeIntervalSince1970 > now else { throw .expired }
        if let nbf = claims.nbf, nbf.value.timeIntervalSince1970 > now + 60 { throw .notYetValid }
        if let issuer = self.issuer, claims.iss?.value != issuer { throw .wrongIssuer }
        guard let k8s = claims.kubernetes, let namespace = k8s.namespace, let serviceAccount = k8s.serviceaccount?.name, let pod = k8s.pod else {
            throw .notAPod
        }
        return PodIdentity(
            cluster: self.cluster, namespace: namespace, serviceAccount: serviceAccount, pod: pod.name, podUID: pod.uid,
            node: k8s.node?.name, authenticatedBy: "jwks")
    }
}
