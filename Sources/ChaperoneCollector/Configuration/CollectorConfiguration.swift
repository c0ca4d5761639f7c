public import ChaperoneCore

/// Everything the collector reads from its YAML file; defaults are what a fresh install runs with.
public struct CollectorConfiguration: Sendable {
    public typealias Address = ProxyConfiguration.ListenAddress

    /// Ingest, query and log API.
    public var listen = Address(host: "0.0.0.0", port: 8080)
    /// /healthz, /readyz, /metrics.
    public var admin = Address(host: "0.0.0.0", port: 8081)
    /// Serve the API over TLS (recommended outside a service mesh).
    public var tls: TLS?
    public var limits = Limits()
    public var authentication = Authentication()
    public var storage = Storage()
    public var log = Log()
    public var tail = Tail()
    public var retention = Retention()
    /// Who may read events, sessions and the log (`chaperonectl`).
    public var readers = Readers()
    /// Who may decide requests held for a person's approval, and how they hear of them.
    public var approvals = Approvals()
    /// Stamped on events whose token does not name a cluster.
    public var cluster: String?

    public init() {}

    public struct TLS: Sendable {
        public var certificateFile: String
        public var privateKeyFile: String
        /// How often the pair is re-read: a renewed certificate (a rotated Secret) is served to
        /// new connections without a restart.
        public var reloadInterval = ConfigDuration.seconds(10)
    }

    public struct Limits: Sendable {
        /// Largest request body as sent (compressed or not).
        public var maxBatchBytes = 16 << 20
        /// Largest body after gunzip.
        public var maxInflatedBatchBytes = 64 << 20
        public var maxBatchEvents = 10_000
        /// Larger lines are refused one by one; the rest of the batch is stored.
        public var maxEventBytes = 1 << 20
    }

    public struct Authentication: Sendable {
        public enum Mode: String, Sendable, CaseIterable {
            /// Verify the projected token's signature against the issuer's JWKS (no API call per token).
            case jwks
            /// Ask the Kubernetes API (TokenReview) about each new token; also rejects tokens of deleted pods.
            case tokenReview = "token-review"
        }

        public var mode = Mode.jwks
        /// Tokens must carry this audience (the sidecar's projected token is minted for it).
        public var audience = "chaperone-collector"
        /// The `iss` tokens must carry; empty accepts the issuer of whatever JWKS verifies them.
        public var issuer: String?
        /// Where the issuer's keys come from: a URL (the API server's /openid/v1/jwks in-cluster)...
        public var jwksURL: String? = "https://kubernetes.default.svc/openid/v1/jwks"
        /// ...or a file (mounted, or fetched by something else); read again on every refresh.
        public var jwksFile: String?
        public var jwksRefreshInterval = ConfigDuration(milliseconds: 300_000)
        /// Verified tokens are remembered this long (never past their expiry) to spare work per batch.
        public var cacheTTL = ConfigDuration(milliseconds: 60_000)
        public var kubernetes = KubernetesAPISettings()
    }

    public struct Storage: Sendable {
        public enum Backend: String, Sendable, CaseIterable {
            case sqlite
            case postgres
        }

        public enum Durability: String, Sendable, CaseIterable {
            /// fsync at every commit: an acknowledged batch survives power loss (SQLite synchronous=FULL).
            case full
            /// fsync at checkpoints only: survives a process crash, may lose the last commits on power loss.
            case normal
        }

        public var backend = Backend.sqlite
        /// SQLite: the data directory (the database is `chaperone.db` inside it).
        public var dataDirectory = "/var/lib/chaperone"
        public var durability = Durability.full
        public var postgres = Postgres()
    }

    public struct Postgres: Sendable {
        public var host = "localhost"
        public var port = 5432
        public var database = "chaperone"
        public var user = "chaperone"
        /// The password is read from a file (a mounted Secret), never from the config itself.
        public var passwordFile: String?
        /// `disable`, `prefer` or `require` (certificate verified against the system roots or `ca_file`).
        public var tls = TLSMode.prefer
        public var caFile: String?
        public var maxConnections = 8

        public enum TLSMode: String, Sendable, CaseIterable {
            case disable, prefer, require
        }
    }

    public struct Log: Sendable {
        /// The log's name in its checkpoints (C2SP origin line) and the signing key's name.
        public var origin = "chaperone.local/collector"
        /// Ed25519 private key (PEM PKCS#8, or 32 raw bytes in base64). Created in the data
        /// directory on first start when not set.
        public var signingKeyFile: String?
        public var checkpointInterval = ConfigDuration(milliseconds: 10_000)
    }

    public struct Tail: Sendable {
        /// Print one JSON line per stored event on stdout.
        public var enabled = true
        /// Characters of prompt/answer text kept per line.
        public var maxContentChars = 200
    }

    public struct Retention: Sendable {
        /// Delete event content older than this many days (hashes stay, so the log verifies). 0 keeps all.
        public var contentDays = 0
        public var interval = ConfigDuration(milliseconds: 3_600_000)
    }

    public struct Readers: Sendable {
        /// Lines `name: token` (or bare tokens); the API answers reads only to these bearers.
        public var tokensFile: String?
    }
}

extension CollectorConfiguration {
    public struct Approvals: Sendable {
        /// The organisation's identity provider; without it nobody can approve, and every
        /// request held for approval is denied at once with that reason.
        public var oidc: OIDC?
        /// Distinct approvers who must approve before a request is released (one deny ends it).
        public var requiredApprovals = 1
        /// Longest hold a sidecar may ask for.
        public var maxTimeout = ConfigDuration.seconds(3_600)
        /// Held requests whose masked prompt matches one of these are denied without asking anyone.
        public var autoDeny: [AutoDeny] = []
        public var notifications: Notifications?
    }

    /// Approvers sign in with an OIDC ID token from the organisation's identity provider.
    public struct OIDC: Sendable {
        /// The token's `iss` must be exactly this.
        public var issuer: String
        /// The token's `aud` must contain this (the client id the tokens are minted for).
        public var audience: String
        public var keys: SigningKeySet.Source
        public var jwksRefreshInterval = ConfigDuration(milliseconds: 300_000)
        /// The claim that names the approver in decisions and is compared with the initiator.
        public var usernameClaim = "email"
        /// The claim listing the approver's groups (a string array, or one string).
        public var groupsClaim = "groups"
        /// Members of any of these groups may decide.
        public var approverGroups: [String]
    }

    public struct AutoDeny: Sendable {
        /// A regular expression (ICU syntax; `(?i)` for case-insensitive).
        public var pattern: String
        public var reason: String
    }

    public struct Notifications: Sendable {
        public enum Format: String, Sendable, CaseIterable {
            /// The approval and how to decide it, as JSON.
            case json
            /// A Slack incoming-webhook message (`text` and `blocks`).
            case slack
        }

        /// Where each new approval is POSTed; `webhook_url_file` reads it from a file (a
        /// mounted Secret), since a Slack webhook URL is itself a credential.
        public var webhookURL: String?
        public var webhookURLFile: String?
        public var format = Format.json
        /// The collector's URL as approvers reach it, for the `chaperonectl` commands in the message.
        public var collectorURL: String?
        /// A link to decide in a browser; `{id}` is replaced by the approval id.
        public var link: String?
        public var timeout = ConfigDuration.seconds(10)
    }
}
