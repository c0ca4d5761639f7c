public import ChaperoneCore
public import ChaperoneKubernetes
import NIOHTTP1
import Foundation
public import Logging

/// Asks the Kubernetes API about each new token (`authentication.k8s.io/v1` TokenReview with the
/// collector's audience). Slower than JWKS, but it refuses tokens of pods that were deleted. Answers
/// are cached for `cacheTTL`; refusals are not cached.
public final class TokenReviewAuthenticator: TokenAuthenticator {
    private let client: KubernetesAPIClient
    private let audience: String
    private let cluster: String?
    private let cacheTTL: Double
    private let logger: Logger
    private let cache = IdentityCache()

    public init(client: KubernetesAPIClient, audience: String, cluster: String?, cacheTTL: Double, logger: Logger) {
        self.client = client
        self.audience = audience
        self.cluster = cluster
        self.cacheTTL = cacheTTL
        self.logger = logger
    }

    public func authenticate(bearer token: String) async throws(TokenRejection) -> PodIdentity {
        let now = Date().timeIntervalSince1970
        if let identity = self.cache.identity(for: token, now: now) { return identity }
        let review = TokenReview(spec: .init(token: token, audiences: [self.audience]))
        let status: Int
        let body: Data
        do {
            (status, body) = try await self.client.call(.POST, "/apis/authentication.k8s.io/v1/tokenreviews", body: try JSONEncoder().encode(review))
        } catch {
            self.logger.warning("auth.token_review_failed", metadata: ["error": "\(error)"])
            throw .unavailable
        }
        guard status == 200 || status == 201, let answer = try? JSONDecoder().decode(TokenReview.self, from: body), let result = answer.status else {
            self.logger.warning("auth.token_review_failed", metadata: ["status": "\(status)", "body": "\(String(decoding: body.prefix(200), as: UTF8.self))"])
            throw .unavailable
        }
        guard result.authenticated == true, let user = result.user else { throw .reviewDenied }
        if let audiences = result.audiences, !audiences.contains(self.audience) { throw .wrongAudience }
        // system:serviceaccount:<namespace>:<name>
        let parts = (user.username ?? "").split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount" else { throw .notAPod }
        let extra = user.extra ?? [:]
        guard let pod = extra["authentication.kubernetes.io/pod-name"]?.first else { throw .notAPod }
        let identity = PodIdentity(
            cluster: self.cluster, namespace: String(parts[2]), serviceAccount: String(parts[3]), pod: pod,
            podUID: extra["authentication.kubernetes.io/pod-uid"]?.first, node: extra["authentication.kubernetes.io/node-name"]?.first,
            authenticatedBy: "token-review")
        self.cache.remember(identity, for: token, until: now + self.cacheTTL)
        return identity
    }

    private struct TokenReview: Codable {
        var apiVersion = "authentication.k8s.io/v1"
        var kind = "TokenReview"
        var spec: Spec?
        var status: Status?

        init(spec: Spec) { self.spec = spec }

        struct Spec: Codable {
            var token: String
            var audiences: [String]
        }

        struct Status: Codable {
            var authenticated: Bool?
            var user: User?
            var audiences: [String]?
            var error: String?
        }

        struct User: Codable {
            var username: String?
            var uid: String?
            var groups: [String]?
            var extra: [String: [String]]?
        }
    }
}
