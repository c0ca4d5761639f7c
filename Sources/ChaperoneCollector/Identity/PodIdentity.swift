public import ChaperoneCore

/// Who sent a batch, as the collector established it from the bearer token; never from what the
/// sender says about itself.
public struct PodIdentity: Sendable, Equatable, Hashable {
    public var cluster: String?
    public var namespace: String
    public var serviceAccount: String
    public var pod: String?
    public var podUID: String?
    public var node: String?
    /// `jwks` or `token-review`.
    public var authenticatedBy: String

    public init(
        cluster: String? = nil, namespace: String, serviceAccount: String, pod: String? = nil, podUID: String? = nil,
        node: String? = nil, authenticatedBy: String
    ) {
        self.cluster = cluster
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.pod = pod
        self.podUID = podUID
        self.node = node
        self.authenticatedBy = authenticatedBy
    }

    /// The identity in the shape of an event's `source`, marked verified.
    public var source: AuditEvent.Source {
        var source = AuditEvent.Source(selfReported: false)
        source.cluster = self.cluster
        source.namespace = self.namespace
        source.serviceAccount = self.serviceAccount
        source.pod = self.pod
        source.podUID = self.podUID
        source.node = self.node
        return source
    }

    /// The fields of a self-reported source that contradict this identity (absent ones do not).
    public func contradictions(of claimed: AuditEvent.Source) -> [String] {
        var fields: [String] = []
        func check(_ name: String, _ claimedValue: String?, _ verified: String?) {
            if let claimedValue, !claimedValue.isEmpty, let verified, claimedValue != verified { fields.append(name) }
        }
        check("cluster", claimed.cluster, self.cluster)
        check("namespace", claimed.namespace, self.namespace)
        check("service_account", claimed.serviceAccount, self.serviceAccount)
        check("pod", claimed.pod, self.pod)
        check("pod_uid", claimed.podUID, self.podUID)
        check("node", claimed.node, self.node)
        return fields
    }
}

/// Why a bearer token was refused; the raw value labels `chaperone_collector_rejected_tokens_total`.
public enum TokenRejection: String, Error, Sendable, CaseIterable, CustomStringConvertible {
    case missing
    case malformed
    case expired
    case notYetValid = "not_yet_valid"
    case wrongAudience = "wrong_audience"
    case wrongIssuer = "wrong_issuer"
    case badSignature = "bad_signature"
    case unknownKey = "unknown_key"
    case notAPod = "not_a_pod"
    case reviewDenied = "review_denied"
    /// The collector could not check the token (JWKS or API unreachable): 503, not 401.
    case unavailable

    public var description: String {
        switch self {
        case .missing: "no bearer token"
        case .malformed: "the token is not a JWT"
        case .expired: "the token has expired"
        case .notYetValid: "the token is not valid yet"
        case .wrongAudience: "the token is not for this audience"
        case .wrongIssuer: "the token was issued by someone else"
        case .badSignature: "the token's signature does not verify"
        case .unknownKey: "the token is signed by an unknown key"
        case .notAPod: "the token does not belong to a pod's service account"
        case .reviewDenied: "the Kubernetes API did not authenticate the token"
        case .unavailable: "the token cannot be checked right now"
        }
    }
}

/// Turns a bearer token into a verified pod identity.
public protocol TokenAuthenticator: Sendable {
    func authenticate(bearer token: String) async throws(TokenRejection) -> PodIdentity
}
