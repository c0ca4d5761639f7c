import Foundation
import Yams

/// Everything `chaperone-proxy` needs, read from a YAML file (`--config`) or, without one, the
/// embedded defaults: OpenAI and Anthropic upstreams with keys read from
/// `/var/run/secrets/chaperone/<upstream>/api-key`.
public struct ProxyConfiguration: Sendable, Equatable {
    public var listen: ListenAddress
    public var admin: ListenAddress
    public var upstreams: [String: Upstream]
    public var limits: Limits
    public var timeouts: Timeouts
    public var audit: Audit
    public var masking: Masking = .init()
    public var policy: PolicySettings = .init()
    /// Where audit events are shipped; nil: they stay local (stdout and `audit.file`).
    public var collector: Collector?
    public var spool: Spool = .init()
    /// Requests a policy rule holds for a person's approval (needs `collector`).
    public var approvals: Approvals = .init()

    public init(
        listen: ListenAddress = .init(host: "127.0.0.1", port: 15080),
        admin: ListenAddress = .init(host: "0.0.0.0", port: 15090),
        upstreams: [String: Upstream] = Self.defaultUpstreams,
        limits: Limits = .init(),
        timeouts: Timeouts = .init(),
        audit: Audit = .init()
    ) {
        self.listen = listen
        self.admin = admin
        self.upstreams = upstreams
        self.limits = limits
        self.timeouts = timeouts
        self.audit = audit
    }

    public static let defaultUpstreams: [String: Upstream] = [
        "openai": Upstream(
            baseURL: "https://api.openai.com",
            provider: .openai,
            credential: .init(file: "/var/run/secrets/chaperone/openai/api-key")
        ),
        "anthropic": Upstream(
            baseURL: "https://api.anthropic.com",
            provider: .anthropic,
            credential: .init(file: "/var/run/secrets/chaperone/anthropic/api-key")
        ),
    ]

    public struct ListenAddress: Sendable, Equatable, Codable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `HOST:PORT`, `:PORT` (all interfaces) or `[IPv6]:PORT`, as given to `--listen`/`--admin`.
        public init(parsing text: String, option: String) throws(ConfigError) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
                throw ConfigError(field: option, message: "'\(text)' is not HOST:PORT")
            }
            let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            self.init(host: host.isEmpty ? "0.0.0.0" : host, port: port)
        }
    }

    /// The API family an upstream speaks; picks the adapters, the credential header and the
    /// shape of the errors the proxy itself returns.
    public enum Provider: String, Sendable, Equatable, Codable, CaseIterable {
        /// api.openai.com and OpenAI-compatible servers (vLLM, Ollama, LiteLLM, mocks).
        case openai
        /// Azure OpenAI: OpenAI's API with an `api-key` header.
        case azureOpenAI = "azure-openai"
        case anthropic
        /// Anything else: proxied and recorded generically.
        case generic
    }

    public struct Upstream: Sendable, Equatable {
        /// Scheme, host, optional port and optional path prefix; `/<name>/<path>` goes to `<baseURL>/<path>`.
        public var baseURL: String
        public var provider: Provider
        public var credential: Credential?
        /// PEM bundle of CAs trusted for this upstream instead of the system trust store.
        public var caBundle: String?

        public init(baseURL: String, provider: Provider, credential: Credential? = nil, caBundle: String? = nil) {
            self.baseURL = baseURL
            self.provider = provider
            self.credential = credential
            self.caBundle = caBundle
        }
    }

    /// The real provider key: a file (a mounted Secret), re-read when it changes, sent in `header`
    /// as `prefix + key`. The defaults depend on the provider.
    public struct Credential: Sendable, Equatable {
        public var file: String
        public var header: String?
        public var prefix: String?

        public init(file: String, header: String? = nil, prefix: String? = nil) {
            self.file = file
            self.header = header
            self.prefix = prefix
        }
    }

    public struct Limits: Sendable, Equatable {
        /// Requests with a larger body get 413.
        public var maxRequestBodyBytes: Int = 32 * 1024 * 1024
        /// Total size of a request's header names and values; larger gets 431.
        public var maxHeaderBytes: Int = 64 * 1024
        /// Number of request header fields; more gets 431.
        public var maxHeaderCount: Int = 100
        /// How much of a non-streamed response body is kept in memory for audit extraction; the
        /// rest is still forwarded and hashed.
        public var maxAuditedResponseBytes: Int = 8 * 1024 * 1024
        public init() {}
    }

    public struct Timeouts: Sendable, Equatable {
        /// Establishing the upstream connection (TCP and TLS).
        public var connect: ConfigDuration = .seconds(10)
        /// Longest silence from the upstream, before or between response bytes.
        public var idle: ConfigDuration = .seconds(300)
        /// Whole exchange, first request byte to last response byte.
        public var total: ConfigDuration = .seconds(900)
        /// Keep-alive connections from the agent with no request for this long are closed.
        public var clientIdle: ConfigDuration = .seconds(120)
        /// On SIGTERM, in-flight exchanges get this long to finish before they are cut.
        public var shutdownGrace: ConfigDuration = .seconds(25)
        public init() {}
    }

    /// Secret masking is always on; these say how placeholders are keyed and whether echoes are
    /// put back.
    public struct Masking: Sendable, Equatable {
        /// The per-installation HMAC key for placeholder fingerprints (a Secret shared by every
        /// sidecar, so the same secret maps to the same placeholder cluster-wide). nil: the
        /// default file if present, else a per-process key; a configured file must be readable.
        public var fingerprintKeyFile: String?
        /// Put the agent's own secrets back where the model echoes their placeholders.
        public var restorePlaceholders = false
        public static let defaultFingerprintKeyFile = "/var/run/secrets/chaperone/fingerprint/key"
        public init() {}
    }

    public struct PolicySettings: Sendable, Equatable {
        /// A policy file (rules in YAML), applied before the built-in rule pack.
        public var file: String?
        /// The rules as YAML text, when they come from the environment (`CHAPERONE_POLICY`, set
        /// by the injector) rather than a file. `file` wins when both are set.
        public var text: String?
        public var builtinRules = true
        public init() {}
    }

    public struct Audit: Sendable, Equatable {
        /// A local JSON-lines copy of every event, never rotated; nil (the default) for none. The
        /// spool is the durable copy that reaches the collector.
        public var file: String?
        /// Also print every event as one JSON line on stdout.
        public var stdout: Bool = true
        /// Each message and response text is cut to this many characters in events.
        public var maxContentCharacters: Int = 16 * 1024
        /// Session id used when the agent sends no `X-Chaperone-Session` header.
        public var defaultSessionID: String?
        public init() {}
    }

    /// How requests that policy marks `require_approval` are held. The approval is opened at
    /// `collector.url` with the pod's token; without a collector they are refused at once.
    public struct Approvals: Sendable, Equatable {
        /// How long a request is held for a decision before the agent is told it timed out.
        /// Keep the agent's own HTTP timeout longer (the OpenAI and Anthropic SDKs wait 10 minutes by default).
        public var timeout: ConfigDuration = .seconds(600)
        public init() {}
    }

    /// The collector the shipper delivers the spool to.
    public struct Collector: Sendable, Equatable {
        /// `https://host[:port]` (plain `http://` only to a loopback address); events go to `<url>/v1/events`.
        public var url: String
        /// The pod's projected service-account token (audience `chaperone-collector`), re-read
        /// for every request so the kubelet's rotation is picked up.
        public var tokenFile = "/var/run/secrets/chaperone/collector/token"
        /// PEM bundle of CAs trusted for the collector instead of the system trust store.
        public var caBundle: String?
        /// The same as PEM text, when it comes from the environment (`CHAPERONE_COLLECTOR_CA`,
        /// set by the injector) rather than a file. `caBundle` wins when both are set.
        public var caPEM: String?
        /// A batch is sent once it holds this many events, or this many bytes (before gzip), or
        /// once its oldest event has waited `batchDelay`.
        public var batchEvents = 1000
        public var batchBytes = 1 << 20
        public var batchDelay = ConfigDuration(milliseconds: 200)
        /// One request to the collector, connect to answer.
        public var timeout: ConfigDuration = .seconds(30)
        /// Exponential backoff between failed attempts, with jitter, from `retryInitial` to `retryMax`.
        public var retryInitial = ConfigDuration(milliseconds: 200)
        public var retryMax: ConfigDuration = .seconds(30)
        /// On SIGTERM, after the exchanges are drained, how long the shipper keeps delivering
        /// what is still spooled. What is left stays in the spool for the next start.
        public var shutdownFlush: ConfigDuration = .seconds(5)

        public init(url: String) {
            self.url = url
        }
    }

    /// The on-disk write-ahead log every audit event is appended to before the exchange it
    /// describes is released to the agent (see docs/configuration.md, "Spool").
    public struct Spool: Sendable, Equatable {
        public enum Overflow: String, Sendable, Equatable, CaseIterable {
            /// New requests get a provider-shaped 503 until the collector catches up.
            case failClosed = "fail-closed"
            /// The oldest unshipped events are deleted and an `integrity.gap` event says which.
            case dropOldest = "drop-oldest"
        }

        public enum Sync: String, Sendable, Equatable, CaseIterable {
            /// fdatasync before every event is released (survives power loss; costs a disk flush per event).
            case always
            /// Written before release (survives any crash of the proxy), flushed to disk every `syncInterval`.
            case interval
            /// Written before release; the kernel flushes when it likes.
            case never
        }

        public var directory = "/var/run/chaperone/spool"
        /// Unshipped events may take this much disk; beyond it `overflow` applies. Keep it under
        /// the emptyDir's sizeLimit (256Mi by default), or the kubelet evicts the pod first.
        public var maxBytes = 192 << 20
        /// Readiness turns false above this share of `maxBytes`, true again below it.
        public var highWaterPercent = 80
        public var overflow = Overflow.failClosed
        public var sync = Sync.interval
        public var syncInterval = ConfigDuration(milliseconds: 100)
        /// Events go to files of about this size; a file is deleted once all of it is acknowledged.
        public var segmentBytes = 4 << 20
        public init() {}
    }
}
