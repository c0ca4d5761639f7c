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
        try top.rejectUnknownKeys(allowed: ["listen", "admin", "upstreams", "limits", "timeouts", "audit", "masking", "policy", "collector", "spool", "approvals"])
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
        if let collector = try top.child("collector") {
            config.collector = try Self.collector(collector)
        }
        if let approvals = try top.child("approvals") {
            try approvals.rejectUnknownKeys(allowed: ["timeout"])
            if let value = try approvals.duration("timeout") {
                guard value.milliseconds >= 1000, value.milliseconds <= 86_400_000 else {
                    throw ConfigError(field: approvals.field("timeout"), message: "between 1s and 24h")
                }
                config.approvals.timeout = value
            }
        }
        if let spool = try top.child("spool") {
            try spool.rejectUnknownKeys(allowed: ["directory", "max_size", "high_water_percent", "overflow", "sync", "sync_interval", "segment_size"])
            if let value = try spool.string("directory") { config.spool.directory = value }
            if let value = try spool.byteSize("max_size") {
                guard value >= 1 << 20 else { throw ConfigError(field: spool.field("max_size"), message: "at least 1MiB") }
                config.spool.maxBytes = value
            }
            if let value = try spool.int("high_water_percent", range: 1...100) { config.spool.highWaterPercent = value }
            if let value = try spool.choice("overflow", as: Spool.Overflow.self) { config.spool.overflow = value }
            if let value = try spool.choice("sync", as: Spool.Sync.self) { config.spool.sync = value }
            if let value = try spool.duration("sync_interval") { config.spool.syncInterval = value }
            if let value = try spool.byteSize("segment_size") {
                guard value >= 4096 else { throw ConfigError(field: spool.field("segment_size"), message: "at least 4KiB") }
                config.spool.segmentBytes = value
            }
            config.spool.segmentBytes = min(config.spool.segmentBytes, max(4096, config.spool.maxBytes / 8))
        }
        return config
    }

    private static func collector(_ node: ConfigNode) throws(ConfigError) -> Collector {
        try node.rejectUnknownKeys(allowed: [
            "url", "token_file", "ca_bundle", "batch_events", "batch_size", "batch_delay", "timeout", "retry_initial", "retry_max", "shutdown_flush",
        ])
        guard let text = try node.string("url") else {
            throw ConfigError(field: node.field("url"), message: "required (e.g. https://chaperone-collector.chaperone-system.svc:8080)")
        }
        var collector = Collector(url: try Self.collectorURL(text, field: node.field("url")))
        if let value = try node.string("token_file") { collector.tokenFile = value }
        collector.caBundle = try node.string("ca_bundle")
        if let value = try node.int("batch_events", range: 1...50_000) { collector.batchEvents = value }
        if let value = try node.byteSize("batch_size") {
            guard (1024...(64 << 20)).contains(value) else { throw ConfigError(field: node.field("batch_size"), message: "between 1KiB and 64MiB") }
            collector.batchBytes = value
        }
        if let value = try node.duration("batch_delay") { collector.batchDelay = value }
        if let value = try node.duration("timeout") { collector.timeout = value }
        if let value = try node.duration("retry_initial") { collector.retryInitial = value }
        if let value = try node.duration("retry_max") { collector.retryMax = value }
        if let value = try node.duration("shutdown_flush") { collector.shutdownFlush = value }
        guard collector.retryInitial.duration <= collector.retryMax.duration else {
            throw ConfigError(field: node.field("retry_initial"), message: "must not exceed retry_max")
        }
        return collector
    }

    /// The collector's base URL, without a trailing slash: https, or http to a loopback address
    /// only (the token must not cross a network in clear).
    public static func collectorURL(_ text: String, field: String) throws(ConfigError) -> String {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty,
            url.query == nil, url.fragment == nil, url.user == nil
        else {
            throw ConfigError(field: field, message: "'\(text)' is not an https URL with a host")
        }
        let loopback = host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw ConfigError(field: field, message: "'\(text)': use https (plain http only to a loopback address, or the token would cross the network in clear)")
        }
        var trimmed = text
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
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
