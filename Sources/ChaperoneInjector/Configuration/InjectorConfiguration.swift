public import ChaperoneCore

/// Everything `chaperone-injector` needs, from a YAML file (`--config`) or the embedded defaults.
/// docs/injector.md describes every key.
public struct InjectorConfiguration: Sendable {
    public typealias Address = ProxyConfiguration.ListenAddress

    /// The webhook listener (HTTPS).
    public var listen = Address(host: "0.0.0.0", port: 8443)
    /// /healthz, /readyz, /metrics (plain HTTP).
    public var admin = Address(host: "0.0.0.0", port: 8081)
    /// The namespace the injector runs in; never injected.
    public var namespace = "chaperone-system"
    /// Namespaces never injected, whatever their labels say (the injector's own is added).
    public var excludedNamespaces: [String] = ["kube-system", "kube-public", "kube-node-lease"]
    /// What the webhook answers when it cannot build a patch for a pod it should inject.
    public var failureMode: FailureMode = .deny
    /// Largest AdmissionReview body accepted (the API server sends at most about 3 MiB).
    public var maxRequestBodyBytes = 4 * 1024 * 1024
    public var tls = TLS()
    public var kubernetes = KubernetesAPI()
    public var sidecar = Sidecar()

    public init() {}

    public enum FailureMode: String, Sendable, CaseIterable {
        /// Refuse the pod, with a message saying why (fail closed: no pod runs unaudited).
        case deny
        /// Admit the pod unchanged, with an admission warning (fail open).
        case allow
    }

    public struct TLS: Sendable {
        public enum Mode: String, Sendable, CaseIterable {
            /// A certificate and key mounted from a Secret (cert-manager or your own), re-read when they change.
            case files
            /// The injector keeps its own CA and serving certificate in a Secret and publishes the
            /// CA into its MutatingWebhookConfiguration's caBundle.
            case selfSigned = "self-signed"
        }

        public var mode: Mode = .files
        public var certificateFile = "/etc/chaperone/injector/tls/tls.crt"
        public var privateKeyFile = "/etc/chaperone/injector/tls/tls.key"
        /// How often the files (or the Secret, in self-signed mode) are checked for a new certificate.
        public var reloadInterval = ConfigDuration.seconds(10)
        /// Self-signed mode: the Secret that holds the CA and the serving certificate.
        public var secretName = "chaperone-injector-tls"
        /// Self-signed mode: the Service in front of the injector (the certificate's DNS names).
        public var serviceName = "chaperone-injector"
        /// Self-signed mode: the MutatingWebhookConfiguration whose caBundle is kept current.
        public var webhookConfigurationName = "chaperone-injector"
        /// Self-signed mode: how long a serving certificate is valid, and when it is renewed.
        public var servingValidity = ConfigDuration.seconds(365 * 86400)
        public var renewBefore = ConfigDuration.seconds(30 * 86400)
        /// Self-signed mode: the Secret in which the injector also keeps a serving certificate for
        /// the collector, issued by the same CA (which the sidecars are given); empty: none.
        public var collectorSecretName = "chaperone-collector-tls"
        /// Self-signed mode: the collector's Service (that certificate's DNS names).
        public var collectorServiceName = "chaperone-collector"
    }

    /// How the injector reaches the Kubernetes API (self-signed mode only). The defaults are the
    /// in-cluster service-account credentials.
    public typealias KubernetesAPI = KubernetesAPISettings

    /// The sidecar added to each pod.
    public struct Sidecar: Sendable {
        public var image = "ghcr.io/chaperone-dev/chaperone:\(ChaperoneInjectorVersion.current)"
        public var imagePullPolicy = "IfNotPresent"
        /// The proxy binary inside the image.
        public var command = "/usr/local/bin/chaperone-proxy"
        /// Native sidecar (an init container with `restartPolicy: Always`; Kubernetes ≥ 1.29),
        /// else the first app container with a postStart hook that waits for readiness.
        public var native = true
        public var runAsUser = 15080
        public var runAsGroup = 15080
        public var proxyPort = 15080
        public var adminPort = 15090
        public var resources = Resources()
        /// The Secret (in the pod's namespace) with one key per upstream holding its provider key.
        public var providerKeysSecret = "chaperone-provider-keys"
        /// Upstream names: each becomes /var/run/secrets/chaperone/<name>/api-key in the sidecar.
        public var upstreams = ["openai", "anthropic"]
        /// The Secret (in the pod's namespace) with the installation's fingerprint key (`key`).
        public var fingerprintKeySecret = "chaperone-fingerprint-key"
        /// Audience of the projected service-account token the sidecar presents to the collector.
        public var collectorAudience = "chaperone-collector"
        public var tokenExpirationSeconds = 3600
        /// Size limit of the emptyDir that holds the audit spool.
        public var spoolSizeLimit = "256Mi"
        /// Set as CHAPERONE_CLUSTER in the sidecar when not empty.
        public var cluster = ""
        /// The sidecar's proxy configuration (YAML, as `chaperone-proxy --config`) and policy
        /// rules, normally the installation's `chaperone-sidecar` ConfigMap mounted into the
        /// injector. Validated at start and whenever they change; handed to each sidecar as
        /// CHAPERONE_CONFIG and CHAPERONE_POLICY. nil: the proxy's embedded defaults.
        public var configFile: String?
        public var policyFile: String?
        /// PEM CA bundle the sidecars trust for the collector (CHAPERONE_COLLECTOR_CA). nil: in
        /// self-signed mode the injector's own CA (it issues the collector's certificate too);
        /// in files mode none (the system trust store).
        public var collectorCAFile: String?
        /// Environment set in every app container unless the container sets the name itself.
        public var agentEnvironment = Self.defaultAgentEnvironment(proxyPort: 15080)

        /// The official SDKs' base-URL and key variables, pointed at the proxy on `proxyPort`.
        public static func defaultAgentEnvironment(proxyPort: Int) -> [(name: String, value: String)] {
            [
                ("OPENAI_BASE_URL", "http://127.0.0.1:\(proxyPort)/openai/v1"),
                ("OPENAI_API_KEY", Self.placeholderKey),
                ("ANTHROPIC_BASE_URL", "http://127.0.0.1:\(proxyPort)/anthropic"),
                ("ANTHROPIC_API_KEY", Self.placeholderKey),
            ]
        }

        /// What the agent holds instead of a provider key; the sidecar replaces it.
        public static let placeholderKey = "chaperone-managed-placeholder"
    }

    public struct Resources: Sendable, Hashable {
        public var cpuRequest: String? = "50m"
        public var memoryRequest: String? = "64Mi"
        public var cpuLimit: String?
        public var memoryLimit: String? = "256Mi"
    }

    /// Every namespace the injector must leave alone.
    public var neverInjected: Set<String> { Set(self.excludedNamespaces + [self.namespace]) }
}

public enum ChaperoneInjectorVersion {
    public static let current = "0.1.0"
}
