import Foundation
import Yams

extension ProxyConfiguration {
    /// Reads and validates a YAML configuration file. Keys left out take the embedded defaults;
    /// `upstreams`, when given, replaces the default upstream list.
    public static func load(file path: String) throws(ConfigError) -> ProxyConfiguration {
        try ConfigNode.load(file: path, Self.parse(yaml:))
    }

    public static func parse(yaml text: String) throws(ConfigError) -> ProxyConfiguration {
        var config = ProxyConfiguration()
        guard let top = try ConfigNode.root(yaml: text) else { return config }
        try top.rejectUnknownKeys(allowed: ["listen", "admin", "upstreams", "limits", "timeouts", "audit", "masking", "policy"])
        if let value = try top.address("listen", default: config.listen) { config.listen = value }
        if let value = try top.address("admin", default: config.admin) { config.admin = value }
        if let upstreams = try top.child("upstreams") {
            config.upstreams = [:]
            for name in upstreams.keys {
                guard let node = try upstreams.child(name) else {
                    throw ConfigError(field: upstreams.field(name), message: "expected a mapping with base_url")
                }
                config.upstreams[name] = try Self.upstream(name: name, node)
            }
        }
        if let limits = try top.child("limits") {
            try limits.rejectUnknownKeys(allowed: ["max_request_body", "max_header_bytes", "max_headers", "max_audited_response"])
            if let value = try limits.byteSize("max_request_body") { config.limits.maxRequestBodyBytes = value }
            if let value = try limits.byteSize("max_header_bytes") {
                guard value <= 80 * 1024 else {
                    throw ConfigError(field: limits.field("max_header_bytes"), message: "at most 80KiB (the HTTP parser's own bound)")
                }
                config.limits.maxHeaderBytes = value
            }
            if let value = try limits.int("max_headers", range: 1...10_000) { config.limits.maxHeaderCount = value }
            if let value = try limits.byteSize("max_audited_response") { config.limits.maxAuditedResponseBytes = value }
        }
        if let timeouts = try top.child("timeouts") {
            try timeouts.rejectUnknownKeys(allowed: ["connect", "idle", "total", "client_idle", "shutdown_grace"])
            if let value = try timeouts.duration("connect") { config.timeouts.connect = value }
            if let value = try timeouts.duration("idle") { config.timeouts.idle = value }
            if let value = try timeouts.duration("total") { config.timeouts.total = value }
            if let value = try timeouts.duration("client_idle") { config.timeouts.clientIdle = value }
            if let value = try timeouts.duration("shutdown_grace") { config.timeouts.shutdownGrace = value }
        }
        if let audit = try top.child("audit") {
            try audit.rejectUnknownKeys(allowed: ["file", "stdout", "max_content_chars", "default_session_id"])
            if audit.keys.contains("file") { config.audit.file = try audit.string("file") }
            if let value = try audit.bool("stdout") { config.audit.stdout = value }
            if let value = try audit.int("max_content_chars", range: 0...(64 << 20)) { config.audit.maxContentCharacters = value }
            if let value = try audit.string("default_session_id") { config.audit.defaultSessionID = value }
        }
        if let masking = try top.child("masking") {
            try masking.rejectUnknownKeys(allowed: ["fingerprint_key_file", "restore_placeholders"])
            config.masking.fingerprintKeyFile = try masking.string("fingerprint_key_file")
            if let value = try masking.bool("restore_placeholders") { config.masking.restorePlaceholders = value }
        }
        if let policy = try top.child("policy") {
            try policy.rejectUnknownKeys(allowed: ["file", "builtin_rules"])
            config.policy.file = try policy.string("file")
            if let value = try policy.bool("builtin_rules") { config.policy.builtinRules = value }
        }
        return config
    }

    private static func upstream(name: String, _ node: ConfigNode) throws(ConfigError) -> Upstream {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw ConfigError(field: node.path, message: "upstream names may hold letters, digits, '-', '_' and '.' only")
        }
        try node.rejectUnknownKeys(allowed: ["base_url", "provider", "credential", "ca_bundle"])
        guard let baseURL = try node.string("base_url") else {
            throw ConfigError(field: node.field("base_url"), message: "required (e.g. https://api.openai.com)")
        }
        guard let url = URL(string: baseURL), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else {
            throw ConfigError(field: node.field("base_url"), message: "'\(baseURL)' is not an http(s) URL with a host")
        }
        guard url.query == nil, url.fragment == nil, url.user == nil else {
            throw ConfigError(field: node.field("base_url"), message: "must not carry a query, fragment or credentials")
        }
        let provider: Provider
        if let text = try node.string("provider") {
            guard let value = Provider(rawValue: text) else {
                let known = Provider.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigError(field: node.field("provider"), message: "unknown provider '\(text)' (known: \(known))")
            }
            provider = value
        } else {
            provider = Self.guessProvider(name: name, host: host)
        }
        var credential: Credential?
        if let credentialNode = try node.child("credential") {
            try credentialNode.rejectUnknownKeys(allowed: ["file", "header", "prefix"])
            guard let file = try credentialNode.string("file") else {
                throw ConfigError(field: credentialNode.field("file"), message: "required: path of the file holding the key")
            }
            credential = Credential(
                file: file,
                header: try credentialNode.string("header"),
                prefix: try credentialNode.string("prefix")
            )
        }
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return Upstream(baseURL: trimmed, provider: provider, credential: credential, caBundle: try node.string("ca_bundle"))
    }

    private static func guessProvider(name: String, host: String) -> Provider {
        if name.contains("anthropic") || host.hasSuffix("anthropic.com") { return .anthropic }
        if host.hasSuffix(".openai.azure.com") { return .azureOpenAI }
        return .openai
    }
}

extension ProxyConfiguration.Credential {
    /// The header the key goes in and what precedes it, by provider unless configured.
    public func resolvedHeader(for provider: ProxyConfiguration.Provider) -> (name: String, prefix: String) {
        switch provider {
        case .anthropic: (self.header ?? "x-api-key", self.prefix ?? "")
        case .azureOpenAI: (self.header ?? "api-key", self.prefix ?? "")
        case .openai, .generic:
            (self.header ?? "authorization", self.prefix ?? ((self.header ?? "authorization").lowercased() == "authorization" ? "Bearer " : ""))
        }
    }
}
