public import ChaperoneCore
import Foundation
import JWTKit
public import Logging

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
    public typealias KeySource = SigningKeySet.Source

    private let keys: SigningKeySet
    private let audience: String
    private let issuer: String?
    private let cluster: String?
    private let cacheTTL: Double
    /// Seconds between refreshes of the key set.
    let refreshInterval: Double
    private let cache = IdentityCache()

    public init(
        source: KeySource, audience: String, issuer: String?, cluster: String?, cacheTTL: Double, refreshInterval: Double,
        kubernetes: KubernetesAPISettings, logger: Logger
    ) throws {
        self.keys = try SigningKeySet(source: source, field: "authentication", kubernetes: kubernetes, logger: logger)
        self.audience = audience
        self.issuer = issuer
        self.cluster = cluster
        self.cacheTTL = cacheTTL
        self.refreshInterval = refreshInterval
    }

    public func shutdown() async throws {
        try await self.keys.shutdown()
    }

    /// Loads the key set; called at start-up (readiness waits for it) and by `run()`.
    public func refresh() async throws {
        try await self.keys.refresh()
    }

    public func authenticate(bearer token: String) async throws(TokenRejection) -> PodIdentity {
        let now = Date().timeIntervalSince1970
        if let identity = self.cache.identity(for: token, now: now) { return identity }
        let claims = try await self.keys.verify(token, as: ServiceAccountTokenClaims.self)
        let identity = try self.check(claims, now: now)
        self.cache.remember(identity, for: token, until: min(now + self.cacheTTL, claims.exp.map { $0.value.timeIntervalSince1970 } ?? now))
        return identity
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
