/// How to reach the Kubernetes API from inside the cluster (TokenReview, and the JWKS URL).
public struct KubernetesAPISettings: Sendable {
    /// Empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
    public var apiURL: String?
    public var tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    public var caFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

    public init() {}
}
