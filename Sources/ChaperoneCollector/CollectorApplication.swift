import ChaperoneAdmin
public import ChaperoneCore
import ChaperoneKubernetes
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOCertificateReloading
public import Logging
import NIOCore
import NIOSSL
import Prometheus
import ServiceLifecycle
import UnixSignals

public enum ChaperoneCollectorVersion {
    public static let current = "0.3.0"
}

struct CollectorStartupError: Error, CustomStringConvertible {
    var description: String
}

/// The collector process: storage, token verification, the Merkle log, the API and admin
/// listeners, and the periodic checkpoint and retention work, run together until SIGTERM/SIGINT.
/// On the way out it signs a last checkpoint, so every stored event is covered.
public struct CollectorApplication: Sendable {
    public let configuration: CollectorConfiguration
    public let logger: Logger

    public init(configuration: CollectorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        // What was opened is closed on every path, in reverse order.
        var cleanups: [@Sendable () async -> Void] = []
        do {
            try await self.run(cleanups: &cleanups)
        } catch {
            for cleanup in cleanups.reversed() { await cleanup() }
            throw error
        }
        for cleanup in cleanups.reversed() { await cleanup() }
    }

    private func run(cleanups: inout [@Sendable () async -> Void]) async throws {
        let config = self.configuration
        let logger = self.logger
        let metrics = CollectorMetrics()
        let readiness = Readiness(waitsForStart: true)
        let output = StandardOutput()

        let database: any SQLDatabase
        switch config.storage.backend {
        case .sqlite:
            database = try await SQLiteEngine.open(directory: config.storage.dataDirectory, durability: config.storage.durability, logger: logger)
        case .postgres:
            database = try PostgresEngine.connect(config.storage.postgres, logger: logger)
        }
        let store = EventStore(database: database)

        cleanups.append { try? await database.close() }

        let authenticator: any TokenAuthenticator
        var jwks: ProjectedTokenVerifier?
        switch config.authentication.mode {
        case .jwks:
            let source: ProjectedTokenVerifier.KeySource
            if let file = config.authentication.jwksFile {
                source = .file(file)
            } else if let url = config.authentication.jwksURL {
                source = .url(url)
            } else {
                throw CollectorStartupError(description: "authentication.mode jwks needs jwks_url or jwks_file")
            }
            let verifier = try ProjectedTokenVerifier(
                source: source, audience: config.authentication.audience, issuer: config.authentication.issuer, cluster: config.cluster,
                cacheTTL: config.authentication.cacheTTL.timeInterval, refreshInterval: config.authentication.jwksRefreshInterval.timeInterval,
                kubernetes: config.authentication.kubernetes, logger: logger)
            cleanups.append { try? await verifier.shutdown() }
            authenticator = verifier
            jwks = verifier
        case .tokenReview:
            let client = try KubernetesAPIClient(
                settings: config.authentication.kubernetes, userAgent: "chaperone-collector/\(ChaperoneCollectorVersion.current)")
            cleanups.append { try? await client.shutdown() }
            authenticator = TokenReviewAuthenticator(
                client: client, audience: config.authentication.audience, cluster: config.cluster, cacheTTL: config.authentication.cacheTTL.timeInterval,
                logger: logger)
        }

        let readers = try ReaderTokenFile(path: config.readers.tokensFile, logger: logger)
        if readers.path == nil {
            logger.warning("api.reading_disabled", metadata: ["hint": "set readers.tokens_file to let chaperonectl read events and verify the log"])
        }
        let key = try SigningKey.load(file: config.log.signingKeyFile, dataDirectory: config.storage.dataDirectory, logger: logger)
        let signer = try CheckpointSigner(keyName: config.log.origin, privateKey: key)
        let log = TransparencyLog(store: store, signer: signer, origin: config.log.origin, logger: logger) { output.write(lines: [$0]) }

        let environment = ProcessInfo.processInfo.environment
        let ownIdentity = PodIdentity(
            cluster: config.cluster, namespace: environment["POD_NAMESPACE"] ?? "chaperone-system",
            serviceAccount: environment["SERVICE_ACCOUNT"] ?? "chaperone-collector", pod: environment["POD_NAME"] ?? environment["HOSTNAME"],
            podUID: environment["POD_UID"], node: environment["NODE_NAME"], authenticatedBy: "collector")
        let planner = LedgerPlanner(streamID: UUIDv7().description, identity: ownIdentity)

        let commits = GroupCommit(store: store, planner: planner, groupSizes: { _ in metrics.transaction() })
        let tail = config.tail.enabled ? LiveTail(maxContentChars: config.tail.maxContentChars) : nil
        let ingest = IngestEndpoint(
            authenticator: authenticator, commits: commits, parsing: Turnstile(permits: IngestEndpoint.parsingSlots), limits: config.limits,
            tail: tail, output: output, metrics: metrics, logger: logger)
        let queries = QueryEndpoints(store: store, log: log, readers: readers, logger: logger)

        var approvers: ApproverVerifier?
        if let oidc = config.approvals.oidc {
            let verifier = try ApproverVerifier(settings: oidc, logger: logger)
            cleanups.append { try? await verifier.keys.shutdown() }
            approvers = verifier
        } else {
            logger.warning("approvals.no_approvers", metadata: [
                "effect": "requests that policy holds for approval are denied at once", "hint": "configure approvals.oidc",
            ])
        }
        var notifier: ApprovalNotifier?
        if let settings = config.approvals.notifications {
            let made = ApprovalNotifier(settings: settings, metrics: metrics, logger: logger)
            cleanups.append { await made.shutdown() }
            notifier = made
        }
        let approvals = ApprovalService(
            store: ApprovalStore(database: database), settings: config.approvals, approvers: approvers, commits: commits, identity: ownIdentity,
            notifier: notifier, tail: tail, output: output, metrics: metrics, logger: logger)
        let approvalEndpoints = ApprovalEndpoints(service: approvals, pods: authenticator, readers: readers, metrics: metrics, logger: logger)

        logger.info("collector.starting", metadata: [
            "version": "\(ChaperoneCollectorVersion.current)", "storage": "\(config.storage.backend.rawValue)",
            "durability": "\(config.storage.durability.rawValue)", "authentication": "\(config.authentication.mode.rawValue)",
            "log_origin": "\(config.log.origin)", "verifier_key": "\(signer.verifierKey.encoded)", "stream_id": "\(planner.streamID)",
        ])

        let router = Router()
        router.post(RouterPath(IngestEndpoint.path)) { request, _ in await ingest.respond(to: request) }
        queries.register(on: router)
        approvalEndpoints.register(on: router)
        let apiAddress = BindAddress.hostname(config.listen.host, port: config.listen.port)
        let onRunning: @Sendable (any Channel) async -> Void = { channel in
            readiness.listening()
            logger.info("listener.started", metadata: ["listener": "api", "address": "\(channel.localAddress?.description ?? "")"])
        }
        let api: any Service
        var reloader: TimedCertificateReloader?
        if let tls = config.tls {
            let loaded: TimedCertificateReloader
            do {
                loaded = try ServingCertificate.reloader(
                    certificate: .file(path: tls.certificateFile), privateKey: .file(path: tls.privateKeyFile),
                    interval: tls.reloadInterval.duration, logger: logger)
            } catch {
                throw CollectorStartupError(description: "cannot load tls.cert_file/key_file (\(tls.certificateFile), \(tls.privateKeyFile)): \(error)")
            }
            var tlsConfiguration = try TLSConfiguration.makeServerConfiguration(certificateReloader: loaded)
            tlsConfiguration.minimumTLSVersion = .tlsv12
            reloader = loaded
            api = Application(
                router: router, server: try .tls(.http1(), tlsConfiguration: tlsConfiguration), configuration: .init(address: apiAddress),
                onServerRunning: onRunning, logger: logger)
        } else {
            api = Application(router: router, configuration: .init(address: apiAddress), onServerRunning: onRunning, logger: logger)
        }
        let admin = AdminListener.service(address: self.configuration.admin, readiness: readiness, registry: metrics.registry, logger: self.logger)
        let background = BackgroundWork(
            configuration: config, store: store, log: log, jwks: jwks, approvals: approvals, metrics: metrics, readiness: readiness, logger: logger)

        let group = ServiceGroup(configuration: .init(
            services: [.init(service: admin), .init(service: background)] + (reloader.map { [.init(service: $0)] } ?? []) + [.init(service: api)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            readiness.draining()
        }
        // Cover everything stored before the listener closed.
        do {
            try await log.checkpoint()
        } catch {
            logger.error("log.final_checkpoint_failed", metadata: ["error": "\(error)"])
        }
    }

}

/// Start-up work that may have to wait (schema, keys), then the periodic jobs: checkpoints,
/// retention, the storage-size gauge, the JWKS refresh and (PostgreSQL) the search indexer.
struct BackgroundWork: Service {
    let configuration: CollectorConfiguration
    let store: EventStore
    let log: TransparencyLog
    let jwks: ProjectedTokenVerifier?
    let approvals: ApprovalService
    let metrics: CollectorMetrics
    let readiness: Readiness
    let logger: Logger

    func run() async throws {
        // The database (PostgreSQL in another pod) and the issuer's keys may come up after the
        // collector: retry both until they answer. An inconsistent store is fatal.
        try await self.retrying("storage.unavailable") {
            try await self.store.prepare()
            try await self.log.resume()
        }
        if let jwks = self.jwks {
            try await self.retrying("auth.jwks_unavailable") { try await jwks.refresh() }
        }
        self.readiness.started()
        let treeSize = await self.log.latestCheckpoint?.size ?? 0
        self.logger.info("collector.ready", metadata: ["tree_size": "\(treeSize)"])

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.every(self.configuration.log.checkpointInterval.timeInterval, "log.checkpoint_failed") {
                if let checkpoint = try await self.log.checkpoint() { self.metrics.checkpoint(size: checkpoint.size) }
            } }
            group.addTask { await self.every(15, "storage.size_failed") {
                self.metrics.storage(bytes: try await self.store.database.storageBytes())
                self.metrics.searchBacklog(events: try await self.store.queuedTextCount())
            } }
            if self.store.database.dialect == .postgres {
                group.addTask { await self.indexText() }
            }
            if self.configuration.retention.contentDays > 0 {
                let days = self.configuration.retention.contentDays
                group.addTask { await self.every(self.configuration.retention.interval.timeInterval, "retention.failed") {
                    let cutoff = WallClock.nowMicroseconds() - Int64(days) * 86_400 * 1_000_000
                    let pruned = try await self.store.pruneContent(olderThan: cutoff)
                    if pruned > 0 { self.logger.info("retention.pruned", metadata: ["events": "\(pruned)", "older_than_days": "\(days)"]) }
                } }
            }
            if let jwks = self.jwks {
                group.addTask { await self.every(jwks.refreshInterval, "auth.jwks_refresh_failed") { try await jwks.refresh() } }
            }
            group.addTask { await self.every(1, "approvals.expiry_failed") { try await self.approvals.expireDue() } }
            if let approvers = self.approvals.approvers {
                // The identity provider is not needed for ingest: its keys load beside it.
                group.addTask {
                    do {
                        try await self.retrying("approvals.oidc_jwks_unavailable") { try await approvers.keys.refresh() }
                    } catch {
                        return
                    }
                    await self.every(approvers.settings.jwksRefreshInterval.timeInterval, "approvals.oidc_jwks_refresh_failed") {
                        try await approvers.keys.refresh()
                    }
                }
            }
        }
    }

    /// PostgreSQL: moves stored events' text into the search index beside the writer, as fast as
    /// it is queued, pausing a moment when there is none (or the database failed).
    private func indexText() async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var indexed = 0
            do {
                indexed = try await self.store.indexPendingText()
            } catch {
                self.logger.error("search.index_failed", metadata: ["error": "\(error)"])
            }
            if indexed < EventStore.textBatch {
                let pause = indexed > 0 ? 20 : 200
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(pause)) }
                } catch {
                    return
                }
            }
        }
    }

    /// Runs `work` until it succeeds, waiting 0.5 s, 1 s, 2 s, … (at most 10 s) after each failure;
    /// a `StoreError` (the data is inconsistent) ends it at once.
    private func retrying(_ failure: String, _ work: @Sendable () async throws -> Void) async throws {
        var delay = 0.5
        while true {
            do {
                return try await work()
            } catch let error as StoreError {
                throw error
            } catch {
                self.logger.warning("\(failure)", metadata: ["error": "\(error)", "retry_in_seconds": "\(delay)"])
                let pause = delay
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(pause * 1000))) }
                delay = min(delay * 2, 10)
            }
        }
    }

    /// Runs `work` every `seconds` until graceful shutdown; failures are logged, not fatal.
    private func every(_ seconds: Double, _ failure: String, _ work: @Sendable () async throws -> Void) async {
        while !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
            } catch {
                return
            }
            do {
                try await work()
            } catch {
                self.logger.error("\(failure)", metadata: ["error": "\(error)"])
            }
        }
    }
}
