public import ChaperoneCore
import Foundation

extension CollectorConfiguration {
    /// Reads and validates a YAML configuration file; keys left out keep their defaults. Errors
    /// name the file, the dotted field and the line.
    public static func load(file path: String) throws(ConfigError) -> CollectorConfiguration {
        try ConfigNode.load(file: path, Self.parse(yaml:))
    }

    public static func parse(yaml text: String) throws(ConfigError) -> CollectorConfiguration {
        var config = CollectorConfiguration()
        guard let top = try ConfigNode.root(yaml: text) else { return config }
        try top.rejectUnknownKeys(allowed: [
            "listen", "admin", "tls", "limits", "authentication", "storage", "log", "tail", "retention", "readers", "cluster", "approvals",
        ])
        if let value = try top.address("listen", default: config.listen) { config.listen = value }
        if let value = try top.address("admin", default: config.admin) { config.admin = value }
        if let value = try top.string("cluster") { config.cluster = value }
        if let tls = try top.child("tls") {
            try tls.rejectUnknownKeys(allowed: ["cert_file", "key_file", "reload_interval"])
            guard let cert = try tls.string("cert_file"), let key = try tls.string("key_file") else {
                throw ConfigError(field: tls.field("cert_file"), message: "tls needs both cert_file and key_file")
            }
            config.tls = TLS(certificateFile: cert, privateKeyFile: key)
            if let value = try tls.duration("reload_interval") { config.tls?.reloadInterval = value }
        }
        if let limits = try top.child("limits") {
            try limits.rejectUnknownKeys(allowed: ["max_batch_bytes", "max_inflated_batch_bytes", "max_batch_events", "max_event_bytes"])
            if let value = try limits.byteSize("max_batch_bytes") { config.limits.maxBatchBytes = value }
            if let value = try limits.byteSize("max_inflated_batch_bytes") { config.limits.maxInflatedBatchBytes = value }
            if let value = try limits.int("max_batch_events", range: 1...1_000_000) { config.limits.maxBatchEvents = value }
            if let value = try limits.byteSize("max_event_bytes") { config.limits.maxEventBytes = value }
        }
        if let auth = try top.child("authentication") { try Self.authentication(auth, into: &config.authentication) }
        if let storage = try top.child("storage") { try Self.storage(storage, into: &config.storage) }
        if let log = try top.child("log") {
            try log.rejectUnknownKeys(allowed: ["origin", "signing_key_file", "checkpoint_interval"])
            if let value = try log.string("origin") {
                guard !value.isEmpty, !value.contains(where: { $0 == " " || $0 == "+" || $0.isNewline }) else {
                    throw ConfigError(field: log.field("origin"), message: "'\(value)' must be non-empty without spaces or '+' (it names the signing key too)")
                }
                config.log.origin = value
            }
            if let value = try log.string("signing_key_file") { config.log.signingKeyFile = value }
            if let value = try log.duration("checkpoint_interval") { config.log.checkpointInterval = value }
        }
        if let tail = try top.child("tail") {
            try tail.rejectUnknownKeys(allowed: ["enabled", "max_content_chars"])
            if let value = try tail.bool("enabled") { config.tail.enabled = value }
            if let value = try tail.int("max_content_chars", range: 0...1_000_000) { config.tail.maxContentChars = value }
        }
        if let retention = try top.child("retention") {
            try retention.rejectUnknownKeys(allowed: ["content_days", "interval"])
            if let value = try retention.int("content_days", range: 0...36_500) { config.retention.contentDays = value }
            if let value = try retention.duration("interval") { config.retention.interval = value }
        }
        if let readers = try top.child("readers") {
            try readers.rejectUnknownKeys(allowed: ["tokens_file"])
            if let value = try readers.string("tokens_file") { config.readers.tokensFile = value }
        }
        if let approvals = try top.child("approvals") { try Self.approvals(approvals, into: &config.approvals) }
        return config
    }

    private static func approvals(_ node: ConfigNode, into approvals: inout Approvals) throws(ConfigError) {
        try node.rejectUnknownKeys(allowed: ["oidc", "required_approvals", "max_timeout", "auto_deny", "notifications"])
        if let value = try node.int("required_approvals", range: 1...20) { approvals.requiredApprovals = value }
        if let value = try node.duration("max_timeout") { approvals.maxTimeout = value }
        if let oidc = try node.child("oidc") {
            try oidc.rejectUnknownKeys(allowed: [
                "issuer", "audience", "jwks_url", "jwks_file", "jwks_refresh_interval", "username_claim", "groups_claim", "approver_groups",
            ])
            guard let issuer = try oidc.string("issuer"), !issuer.isEmpty else {
                throw ConfigError(field: oidc.field("issuer"), message: "required: the identity provider's issuer URL (the ID tokens' iss)")
            }
            guard let audience = try oidc.string("audience"), !audience.isEmpty else {
                throw ConfigError(field: oidc.field("audience"), message: "required: the client id the approvers' ID tokens are issued for (their aud)")
            }
            let keys: SigningKeySet.Source
            switch (try oidc.httpURL("jwks_url"), try oidc.string("jwks_file")) {
            case (let url?, nil):
                keys = .url(url)
            case (nil, let file?):
                keys = .file(file)
            case (nil, nil):
                throw ConfigError(field: oidc.field("jwks_url"), message: "required: the identity provider's JWKS (jwks_uri in its /.well-known/openid-configuration), or jwks_file")
            case (_?, _?):
                throw ConfigError(field: oidc.field("jwks_url"), message: "set jwks_url or jwks_file, not both")
            }
            guard let groups = try oidc.strings("approver_groups"), !groups.isEmpty else {
                throw ConfigError(field: oidc.field("approver_groups"), message: "required: the groups whose members may approve (a non-empty list)")
            }
            var settings = OIDC(issuer: issuer, audience: audience, keys: keys, approverGroups: groups)
            if let value = try oidc.duration("jwks_refresh_interval") { settings.jwksRefreshInterval = value }
            if let value = try oidc.string("username_claim") { settings.usernameClaim = value }
            if let value = try oidc.string("groups_claim") { settings.groupsClaim = value }
            approvals.oidc = settings
        }
        for rule in try node.children("auto_deny") ?? [] {
            try rule.rejectUnknownKeys(allowed: ["pattern", "reason"])
            guard let pattern = try rule.string("pattern"), !pattern.isEmpty else {
                throw ConfigError(field: rule.field("pattern"), message: "required: a regular expression")
            }
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                throw ConfigError(field: rule.field("pattern"), message: "'\(pattern)' is not a valid regular expression")
            }
            approvals.autoDeny.append(AutoDeny(pattern: pattern, reason: try rule.string("reason") ?? "matches auto-deny pattern \(pattern)"))
        }
        if let notify = try node.child("notifications") {
            try notify.rejectUnknownKeys(allowed: ["webhook_url", "webhook_url_file", "format", "collector_url", "link", "timeout"])
            var settings = Notifications()
            settings.webhookURL = try notify.httpURL("webhook_url")
            settings.webhookURLFile = try notify.string("webhook_url_file")
            guard (settings.webhookURL == nil) != (settings.webhookURLFile == nil) else {
                throw ConfigError(field: notify.field("webhook_url"), message: "set exactly one of webhook_url and webhook_url_file")
            }
            if let value: Notifications.Format = try notify.choice("format") { settings.format = value }
            settings.collectorURL = try notify.string("collector_url")
            settings.link = try notify.string("link")
            if let value = try notify.duration("timeout") { settings.timeout = value }
            approvals.notifications = settings
        }
    }

    private static func authentication(_ node: ConfigNode, into auth: inout Authentication) throws(ConfigError) {
        try node.rejectUnknownKeys(allowed: [
            "mode", "audience", "issuer", "jwks_url", "jwks_file", "jwks_refresh_interval", "cache_ttl", "kubernetes",
        ])
        if let value: Authentication.Mode = try node.choice("mode") { auth.mode = value }
        if let value = try node.string("audience") { auth.audience = value }
        if let value = try node.string("issuer") { auth.issuer = value }
        if let value = try node.string("jwks_file") {
            auth.jwksFile = value
            auth.jwksURL = nil
        }
        if let value = try node.httpURL("jwks_url") {
            guard auth.jwksFile == nil || node.value("jwks_file") == nil else {
                throw ConfigError(field: node.field("jwks_url"), message: "set jwks_url or jwks_file, not both")
            }
            auth.jwksURL = value
        }
        if let value = try node.duration("jwks_refresh_interval") { auth.jwksRefreshInterval = value }
        if let value = try node.duration("cache_ttl") { auth.cacheTTL = value }
        if let kubernetes = try node.child("kubernetes") { try kubernetes.kubernetesAPI(into: &auth.kubernetes) }
    }

    private static func storage(_ node: ConfigNode, into storage: inout Storage) throws(ConfigError) {
        try node.rejectUnknownKeys(allowed: ["backend", "data_directory", "durability", "postgres"])
        if let value: Storage.Backend = try node.choice("backend") { storage.backend = value }
        if let value = try node.string("data_directory") { storage.dataDirectory = value }
        if let value: Storage.Durability = try node.choice("durability") { storage.durability = value }
        if let pg = try node.child("postgres") {
            try pg.rejectUnknownKeys(allowed: ["host", "port", "database", "user", "password_file", "tls", "ca_file", "max_connections"])
            if let value = try pg.string("host") { storage.postgres.host = value }
            if let value = try pg.int("port", range: 1...65535) { storage.postgres.port = value }
            if let value = try pg.string("database") { storage.postgres.database = value }
            if let value = try pg.string("user") { storage.postgres.user = value }
            if let value = try pg.string("password_file") { storage.postgres.passwordFile = value }
            if let value: Postgres.TLSMode = try pg.choice("tls") { storage.postgres.tls = value }
            if let value = try pg.string("ca_file") { storage.postgres.caFile = value }
            if let value = try pg.int("max_connections", range: 1...256) { storage.postgres.maxConnections = value }
        }
    }
}
