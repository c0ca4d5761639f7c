extension ProxyConfiguration {
    /// The environment variables through which chaperone-injector hands a sidecar its
    /// configuration. A sidecar runs in the agent's namespace, where no ConfigMap of the
    /// installation can be mounted, and a pod's env cannot be changed after it is created, so the
    /// injector copies the installation's sidecar configuration into them at admission.
    public enum Environment {
        /// The proxy's YAML configuration (the same format as `--config FILE`).
        public static let configuration = "CHAPERONE_CONFIG"
        /// Policy rules as YAML (the format of `policy.file`).
        public static let policy = "CHAPERONE_POLICY"
        /// PEM CA bundle trusted for the collector.
        public static let collectorCA = "CHAPERONE_COLLECTOR_CA"

        /// Refuses text that holds no PEM certificate, naming `source`.
        public static func checkCertificates(_ pem: String, source: String) throws(ConfigError) {
            guard pem.contains("-----BEGIN CERTIFICATE-----") else {
                throw ConfigError(file: source, field: "", message: "expected PEM certificates (-----BEGIN CERTIFICATE-----)")
            }
        }
    }

    /// The effective configuration: `--config FILE` if given, else the YAML in
    /// `$CHAPERONE_CONFIG`, else the embedded defaults; then the policy rules from
    /// `$CHAPERONE_POLICY` unless `policy.file` is set, and the collector's CA from
    /// `$CHAPERONE_COLLECTOR_CA` unless `collector.ca_bundle` is set. Errors name the file or
    /// the variable.
    public static func resolve(file: String?, environment: [String: String]) throws(ConfigError) -> ProxyConfiguration {
        var config: ProxyConfiguration
        if let file {
            config = try Self.load(file: file)
        } else if let text = environment[Environment.configuration], !text.isEmpty {
            config = try ConfigNode.parse(text, source: "$" + Environment.configuration, Self.parse(yaml:))
        } else {
            config = ProxyConfiguration()
        }
        if config.policy.file == nil, let text = environment[Environment.policy], !text.isEmpty {
            config.policy.text = text
        }
        if var collector = config.collector, collector.caBundle == nil, let pem = environment[Environment.collectorCA], !pem.isEmpty {
            try Environment.checkCertificates(pem, source: "$" + Environment.collectorCA)
            collector.caPEM = pem
            config.collector = collector
        }
        return config
    }
}
