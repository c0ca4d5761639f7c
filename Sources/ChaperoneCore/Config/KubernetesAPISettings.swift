import Foundation

/// How to reach the Kubernetes API from inside the cluster (TokenReview, and the JWKS URL).
public struct KubernetesAPISettings: Sendable {
    /// Empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
    public var apiURL: String?
    public var tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    public var caFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"

    public init() {}
}

extension ConfigNode {
    /// A `kubernetes:` block (`api_url`, `token_file`, `ca_file`) read into `settings`.
    package func kubernetesAPI(into settings: inout KubernetesAPISettings) throws(ConfigError) {
        try self.rejectUnknownKeys(allowed: ["api_url", "token_file", "ca_file"])
        if let value = try self.string("api_url") {
            guard let url = URL(string: value), url.scheme == "https", url.host != nil else {
                throw ConfigError(field: self.field("api_url"), message: "'\(value)' is not an https URL")
            }
            settings.apiURL = value
        }
        if let value = try self.string("token_file") { settings.tokenFile = value }
        if let value = try self.string("ca_file") { settings.caFile = value }
    }
}
