public import ChaperoneCore
import Foundation
import Yams

extension InjectorConfiguration {
    /// Reads and validates a YAML configuration file; keys left out keep their defaults. Errors
    /// name the file, the dotted field and the line.
    public static func load(file path: String) throws(ConfigError) -> InjectorConfiguration {
        try ConfigNode.load(file: path, Self.parse(yaml:))
    }

    public static func parse(yaml text: String) throws(ConfigError) -> InjectorConfiguration {
        var config = InjectorConfiguration()
        guard let top = try ConfigNode.root(yaml: text) else { return config }
        try top.rejectUnknownKeys(allowed: [
            "listen", "admin", "namespace", "excluded_namespaces", "failure_mode", "max_request_body", "tls", "kubernetes", "sidecar",
        ])
        if let value = try top.address("listen", default: config.listen) { config.listen = value }
        if let value = try top.address("admin", default: config.admin) { config.admin = value }
        if let value = try top.string("namespace") { config.namespace = try Self.dnsLabel(value, field: top.field("namespace")) }
        if let values = try top.strings("excluded_namespaces") { config.excludedNamespaces = values }
        if let value: FailureMode = try top.choice("failure_mode") { config.failureMode = value }
        if let value = try top.byteSize("max_request_body") { config.maxRequestBodyBytes = value }
        if let tls = try top.child("tls") {
            try tls.rejectUnknownKeys(allowed: [
                "mode", "cert_file", "key_file", "reload_interval", "secret", "service", "webhook_configuration",
                "serving_validity", "renew_before", "collector_secret", "collector_service",
            ])
            if let value: TLS.Mode = try tls.choice("mode") { config.tls.mode = value }
            if let value = try tls.string("cert_file") { config.tls.certificateFile = value }
            if let value = try tls.string("key_file") { config.tls.privateKeyFile = value }
            if let value = try tls.duration("reload_interval") { config.tls.reloadInterval = value }
            if let value = try tls.string("secret") { config.tls.secretName = value }
            if let value = try tls.string("service") { config.tls.serviceName = value }
            if let value = try tls.string("webhook_configuration") { config.tls.webhookConfigurationName = value }
            if let value = try tls.duration("serving_validity") { config.tls.servingValidity = value }
            if let value = try tls.duration("renew_before") { config.tls.renewBefore = value }
            if let value = try tls.string("collector_secret") { config.tls.collectorSecretName = value }
            if let value = try tls.string("collector_service") { config.tls.collectorServiceName = value }
            guard config.tls.renewBefore.milliseconds < config.tls.servingValidity.milliseconds else {
                throw ConfigError(field: tls.field("renew_before"), message: "must be shorter than serving_validity")
            }
        }
        if let kubernetes = try top.child("kubernetes") { try kubernetes.kubernetesAPI(into: &config.kubernetes) }
        if let sidecar = try top.child("sidecar") { try Self.sidecar(sidecar, into: &config.sidecar) }
        return config
    }

    private static func sidecar(_ node: ConfigNode, into sidecar: inout Sidecar) throws(ConfigError) {
        try node.rejectUnknownKeys(allowed: [
            "image", "image_pull_policy", "command", "native", "run_as_user", "run_as_group", "proxy_port", "admin_port",
            "resources", "provider_keys_secret", "upstreams", "fingerprint_key_secret", "collector_audience",
            "config_file", "policy_file", "collector_ca_file",
            "token_expiration", "spool_size_limit", "cluster", "agent_env",
        ])
        if let value = try node.string("image") { sidecar.image = value }
        if let value = try node.string("image_pull_policy") {
            guard ["Always", "IfNotPresent", "Never"].contains(value) else {
                throw ConfigError(field: node.field("image_pull_policy"), message: "'\(value)' is not Always, IfNotPresent or Never")
            }
            sidecar.imagePullPolicy = value
        }
        if let value = try node.string("command") { sidecar.command = value }
        if let value = try node.bool("native") { sidecar.native = value }
        if let value = try node.int("run_as_user", range: 1...2_147_483_647) { sidecar.runAsUser = value }
        if let value = try node.int("run_as_group", range: 1...2_147_483_647) { sidecar.runAsGroup = value }
        if let value = try node.int("proxy_port", range: 1...65535) {
            sidecar.proxyPort = value
            sidecar.agentEnvironment = Sidecar.defaultAgentEnvironment(proxyPort: value)
        }
        if let value = try node.int("admin_port", range: 1...65535) { sidecar.adminPort = value }
        guard sidecar.proxyPort != sidecar.adminPort else {
            throw ConfigError(field: node.field("admin_port"), message: "must differ from proxy_port")
        }
        if let resources = try node.child("resources") {
            try resources.rejectUnknownKeys(allowed: ["cpu_request", "memory_request", "cpu_limit", "memory_limit"])
            func quantity(_ key: String) throws(ConfigError) -> String? {
                guard let value = try resources.string(key) else { return nil }
                guard ResourceQuantity.isValid(value) else {
                    throw ConfigError(field: resources.field(key), message: "'\(value)' is not a Kubernetes quantity (e.g. 100m, 128Mi)")
                }
                return value
            }
            sidecar.resources = Resources(
                cpuRequest: try quantity("cpu_request"), memoryRequest: try quantity("memory_request"),
                cpuLimit: try quantity("cpu_limit"), memoryLimit: try quantity("memory_limit")
            )
        }
        if let value = try node.string("provider_keys_secret") { sidecar.providerKeysSecret = value }
        if let values = try node.strings("upstreams") { sidecar.upstreams = values }
        if let value = try node.string("fingerprint_key_secret") { sidecar.fingerprintKeySecret = value }
        if let value = try node.string("collector_audience") { sidecar.collectorAudience = value }
        if let value = try node.duration("token_expiration") {
            // The API server refuses projected tokens shorter than 10 minutes.
            guard value.milliseconds >= 600_000 else {
                throw ConfigError(field: node.field("token_expiration"), message: "at least 10m (the API server's minimum)")
            }
            sidecar.tokenExpirationSeconds = Int(value.milliseconds / 1000)
        }
        if let value = try node.string("spool_size_limit") {
            guard ResourceQuantity.isValid(value) else {
                throw ConfigError(field: node.field("spool_size_limit"), message: "'\(value)' is not a Kubernetes quantity (e.g. 256Mi)")
            }
            sidecar.spoolSizeLimit = value
        }
        if let value = try node.string("cluster") { sidecar.cluster = value }
        if let value = try node.string("config_file") { sidecar.configFile = value }
        if let value = try node.string("policy_file") { sidecar.policyFile = value }
        if let value = try node.string("collector_ca_file") { sidecar.collectorCAFile = value }
        if let env = try node.child("agent_env") {
            var pairs: [(name: String, value: String)] = []
            for name in env.keys {
                guard let value = try env.string(name) else {
                    throw ConfigError(field: env.field(name), message: "expected a string value")
                }
                pairs.append((name, value))
            }
            sidecar.agentEnvironment = pairs
        }
    }

    private static func dnsLabel(_ text: String, field: String) throws(ConfigError) -> String {
        guard !text.isEmpty, text.count <= 63, text.allSatisfy({ ($0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "-" }) else {
            throw ConfigError(field: field, message: "'\(text)' is not a namespace name")
        }
        return text
    }
}

/// Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`).
enum ResourceQuantity {
    static func isValid(_ text: String) -> Bool {
        var rest = Substring(text)
        let digits = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
        guard !digits.isEmpty, digits.filter({ $0 == "." }).count <= 1, digits != "." else { return false }
        rest = rest.dropFirst(digits.count)
        let suffixes: Set<Substring> = ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        if suffixes.contains(rest) { return true }
        // Decimal exponent: e3, E-2.
        guard let first = rest.first, first == "e" || first == "E" else { return false }
        var exponent = rest.dropFirst()
        if exponent.first == "-" || exponent.first == "+" { exponent = exponent.dropFirst() }
        return !exponent.isEmpty && exponent.allSatisfy { $0.isASCII && $0.isNumber }
    }
}
