@testable import ChaperoneCollector
import ChaperoneCore
import Crypto
import Foundation
import Logging
import Testing

/// The same tests against both engines. PostgreSQL is the server `make test` starts
/// (scripts/test-postgres.sh); each test gets a database of its own.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { self.rawValue }

    static let postgresPort = Int(ProcessInfo.processInfo.environment["CHAPERONE_TEST_POSTGRES_PORT"] ?? "") ?? 55432

    func open(textWindow: Int = 1_000) async throws -> EventStore {
        let logger = Logger(label: "test")
        switch self {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chaperone-store-\(UUID().uuidString)").path
            return EventStore(database: try await SQLiteEngine.open(directory: directory, durability: .full, logger: logger), textWindow: textWindow)
        case .postgres:
            var settings = CollectorConfiguration.Postgres()
            settings.host = "127.0.0.1"
            settings.port = Self.postgresPort
            settings.user = "postgres"
            settings.database = "postgres"
            settings.tls = .disable
            let admin = try PostgresEngine.connect(settings, logger: logger)
            let name = "chaperone_unit_\(UUID().uuidString.prefix(8).lowercased())"
            do {
                _ = try await admin.reading { try await $0.run("CREATE DATABASE \(name)", []) }
            } catch {
                try? await admin.close()
                throw StoreError.unavailable("no PostgreSQL on 127.0.0.1:\(Self.postgresPort) (run scripts/test-postgres.sh): \(error)")
            }
            try await admin.close()
            settings.database = name
            return EventStore(database: try PostgresEngine.connect(settings, logger: logger), textWindow: textWindow)
        }
    }
}

@Suite struct EventStoreTests {
    let planner = LedgerPlanner(streamID: "collector-stream", identity: collectorIdentity)

    func withStore(_ backend: Backend, textWindow: Int = 1_000, _ body: (EventStore) async throws -> Void) async throws {
        let store = try await backend.open(textWindow: textWindow)
        do {
            try await store.prepare()
            try await store.prepare()  // migrations run once
            try await body(store)
        } catch {
            try? await store.database.close()
            throw error
        }
        try await store.database.close()
    }

    @Test(arguments: Backend.allCases)
    func batchesAreStoredOnceInLogOrder(_ backend: Backend) async throws {
        try await self.withStore(backend) { store in
            var stream = SidecarStream()
            let events = (0..<5).map { _ in stream.next() }
            let first = try await store.append(IngestBatch(events: events, identity: agentIdentity, receivedMicros: 1), planner: self.planner)
            #expect(first.accepted.count == 5)
            let again = try await store.append(IngestBatch(events: events, identity: agentIdentity, receivedMicros: 2), planner: self.planner)
            #expect(again.accepted.isEmpty && again.duplicates.count == 5)
            let next = stream.next()
            _ = try await store.append(IngestBatch(events: [next], identity: agentIdentity, receivedMicros: 3), planner: self.planner)
            #expect(try await store.leafCount() == 6)
            let leaves = try await store.leaves(from: 0, limit: 100)
            let records = try await store.records(from: 0, limit: 100)
            #expect(leaves.map(\.index) == Array(0..<6))
            #expect(records.map(\.eventID) == (events + [next]).map(\.event.eventID))
            #expect(records.map(\.line) == (events + [next]).map { String(decoding: $0.line, as: UTF8.self) })
            for (leaf, record) in zip(leaves, records) {
                let hash = LogRecord.leafHash(lineHash: [UInt8](hex: record.lineHash) ?? [], stamp: Array(record.stamp.utf8))
                #expect(leaf.hash == hash)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func queriesFilterOnVerifiedIdentityFindingsAndText(_ backend: Backend) async throws {
        try await self.withStore(backend) { store in
            var a = SidecarStream()
            var b = SidecarStream(source: .init(namespace: "docs", selfReported: true))
            let other = PodIdentity(namespace: "docs", serviceAccount: "writer", pod: "agent-2", authenticatedBy: "jwks")
            let finding = AuditEvent.Finding(detector: "github_token", direction: "request", fingerprint: "hmac-sha256:00")
            _ = try await store.append(IngestBatch(events: [a.next(session: "s1", text: "rotate the deploy key"), a.next(session: "s1", findings: [finding])],
                                                   identity: agentIdentity, receivedMicros: 1), planner: self.planner)
            _ = try await store.append(IngestBatch(events: [b.next(session: "s2", text: "write the changelog")], identity: other, receivedMicros: 2),
                                       planner: self.planner)
            var query = EventQuery()
            query.namespace = "agents"
            #expect(try await store.events(query).count == 2)
            query = EventQuery()
            query.detector = "github_token"
            #expect(try await store.events(query).count == 1)
            query = EventQuery()
            query.text = "deploy key"
            #expect(try await store.events(query).map(\.sessionID) == ["s1"])
            query.text = "key deploy"
            #expect(try await store.events(query).isEmpty)
            query = EventQuery()
            query.kind = "llm.*"
            query.limit = 2
            let page = try await store.events(query)
            #expect(page.count == 2)
            query.order = .newestFirst(before: (page[1].timeMicros, page[1].leafIndex))
            let rest = try await store.events(query)
            #expect(rest.count == 1, "\(page.map { ($0.timeMicros, $0.leafIndex) }) then \(rest.map { ($0.timeMicros, $0.leafIndex) })")
            let sessions = try await store.sessions(EventQuery())
            #expect(Set(sessions.map(\.sessionID)) == ["s1", "s2"])
            #expect(sessions.first { $0.sessionID == "s1" }?.requests == 2)
            #expect(sessions.first { $0.sessionID == "s2" }?.namespace == "docs")
        }
    }

    /// PostgreSQL queues stored text and indexes it beside the writer; a search first indexes
    /// what is queued, so it never misses an event stored before it. SQLite indexes in the
    /// writer's transaction and queues nothing.
    @Test(arguments: Backend.allCases)
    func storedTextIsSearchableWhetherOrNotTheIndexerHasRun(_ backend: Backend) async throws {
        try await self.withStore(backend) { store in
            var stream = SidecarStream()
            let texts = ["rotate the deploy key", "write the changelog", "rotate the signing key"]
            for text in texts {
                _ = try await store.append(IngestBatch(events: [stream.next(session: "s", text: text)], identity: agentIdentity, receivedMicros: 1),
                                           planner: self.planner)
            }
            let queued = backend == .postgres ? 3 : 0
            #expect(try await store.queuedTextCount() == Int64(queued))
            #expect(try await store.indexPendingText() == queued)
            #expect(try await store.queuedTextCount() == 0)
            #expect(try await store.indexPendingText() == 0)
            var query = EventQuery()
            query.text = "rotate the"
            #expect(try await store.events(query).count == 2)

            // Stored after the indexer's last run: the search indexes it first.
            _ = try await store.append(IngestBatch(events: [stream.next(session: "t", text: "rotate the root password")], identity: agentIdentity,
                                                   receivedMicros: 2), planner: self.planner)
            #expect(try await store.events(query).map(\.sessionID) == ["t", "s", "s"])
            #expect(try await store.queuedTextCount() == 0)
            #expect(try await store.sessions(query).count == 2)

            // Retention drops indexed and queued text alike.
            _ = try await store.append(IngestBatch(events: [stream.next(session: "u", text: "rotate the queue")], identity: agentIdentity,
                                                   receivedMicros: 3), planner: self.planner)
            #expect(try await store.pruneContent(olderThan: Int64.max) == 5)
            #expect(try await store.queuedTextCount() == 0)
            #expect(try await store.events(query).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func checkpointsAndRetentionKeepTheLogVerifiable(_ backend: Backend) async throws {
        try await self.withStore(backend) { store in
            var stream = SidecarStream()
            _ = try await store.append(IngestBatch(events: [stream.next(), stream.next()], identity: agentIdentity, receivedMicros: 1), planner: self.planner)
            let signer = try CheckpointSigner(keyName: "test/log", privateKey: .init())
            let log = TransparencyLog(store: store, signer: signer, origin: "test/log", logger: Logger(label: "test")) { _ in }
            let first = try #require(try await log.checkpoint())
            #expect(first.size == 2)
            #expect(try await log.checkpoint() == nil)  // nothing new, nothing signed
            let pruned = try await store.pruneContent(olderThan: Int64.max)
            #expect(pruned == 2)
            #expect(try await store.records(from: 0, limit: 10).allSatisfy { $0.line == nil })
            _ = try await store.append(IngestBatch(events: [stream.next()], identity: agentIdentity, receivedMicros: 2), planner: self.planner)
            let resumed = TransparencyLog(store: store, signer: signer, origin: "test/log", logger: Logger(label: "test")) { _ in }
            try await resumed.resume()
            let second = try #require(try await resumed.checkpoint())
            #expect(second.size == 3)
            let leaves = try await store.leaves(from: 0, limit: 10).map(\.hash)
            #expect(second.rootHash == MerkleTree.root(leaves[...]))
            #expect(try signer.verifierKey.verify(note: second.note).size == 3)
        }
    }

    /// A phrase search's first page is the newest by event time, also when the newest event
    /// arrived first (a small window on SQLite makes the search prove its page, and grow when
    /// it cannot).
    @Test(arguments: Backend.allCases)
    func phraseSearchReturnsTheNewestByTimeWhateverTheArrivalOrder(_ backend: Backend) async throws {
        try await self.withStore(backend, textWindow: 4) { store in
            var stream = SidecarStream()
            var events: [ReceivedEvent] = []
            for i in 0..<30 {
                let event = stream.next(session: "s", text: i % 3 == 0 ? "open the vault door" : "close the window")
                events.append(event.at(micros: 1_000_000 + Int64(i) * 1_000))
            }
            events[0] = events[0].at(micros: 9_000_000)  // stored first, newest by its clock
            _ = try await store.append(IngestBatch(events: events, identity: agentIdentity, receivedMicros: 1), planner: self.planner)
            let ids = events.map(\.event.eventID)

            var query = EventQuery()
            query.text = "vault door"
            query.limit = 3
            #expect(try await store.events(query).map(\.eventID) == [ids[0], ids[27], ids[24]])
            query.limit = 20
            #expect(try await store.events(query).map(\.eventID) == stride(from: 27, through: 3, by: -3).reduce(into: [ids[0]]) { $0.append(ids[$1]) })
            query.text = "close the window"
            query.limit = 3
            #expect(try await store.events(query).map(\.eventID) == [ids[29], ids[28], ids[26]])
            query.namespace = "agents"
            #expect(try await store.events(query).map(\.eventID) == [ids[29], ids[28], ids[26]])
            query.namespace = "elsewhere"
            #expect(try await store.events(query).isEmpty)
            query.namespace = nil
            query.text = "no such phrase"
            #expect(try await store.events(query).isEmpty)
        }
    }
}
