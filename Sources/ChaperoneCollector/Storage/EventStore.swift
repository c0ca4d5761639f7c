public import ChaperoneCore
import Foundation

/// One leaf of the Merkle log as stored.
public struct LogLeaf: Sendable, Equatable {
    public var index: Int64
    public var hash: [UInt8]
    public var eventID: String
}

/// A signed tree head as stored, with the frontier that lets the next one be computed without
/// rehashing the log.
public struct StoredCheckpoint: Sendable, Equatable {
    public var size: Int64
    public var rootHash: [UInt8]
    public var note: String
    public var frontier: [UInt8]
    public var createdMicros: Int64
}

/// An event as the query API returns it.
public struct EventRow: Sendable, Equatable {
    public var leafIndex: Int64
    public var eventID: String
    public var streamID: String
    public var seq: Int64
    public var prevHash: String
    public var lineHash: String
    public var timeMicros: Int64
    public var kind: String
    public var sessionID: String
    public var stamp: String
    /// Nil once retention has dropped the content.
    public var line: String?
}

/// Filters for `events` and `sessions`; nil means "any".
public struct EventQuery: Sendable {
    public var namespace: String?
    public var pod: String?
    public var serviceAccount: String?
    public var session: String?
    public var model: String?
    /// A kind, or a prefix ending in `*` (`integrity.*`).
    public var kind: String?
    public var detector: String?
    public var action: String?
    public var outcome: String?
    /// Words or a phrase in the masked prompt and answer text.
    public var text: String?
    public var sinceMicros: Int64?
    public var untilMicros: Int64?
    public var limit = 100
    public var order = Order.newestFirst(before: nil)

    public enum Order: Sendable {
        /// By event time, newest first; page on with the last row's (time, leaf).
        case newestFirst(before: (timeMicros: Int64, leafIndex: Int64)? = nil)
        /// By event time, oldest first (replay).
        case oldestFirst
        /// By arrival in the log, after a leaf index (follow / tail).
        case after(leafIndex: Int64)

    }

    public init() {}
}

public struct SessionSummary: Sendable, Equatable {
    public var sessionID: String
    public var firstMicros: Int64
    public var lastMicros: Int64
    public var events: Int64
    public var requests: Int64
    public var namespace: String?
    public var pod: String?
    public var serviceAccount: String?
    public var models: [String]
}

/// The collector's storage, the same over SQLite and PostgreSQL: the engines run statements,
/// this type knows the tables.
public final class EventStore: Sendable {
    public let database: any SQLDatabase
    private var dialect: SQLDialect { self.database.dialect }
    /// Values per `IN (…)` list.
    private let valuesPerList = 500

    /// Latest phrase matches read first for a newest-first search on SQLite (grows ×4 as needed).
    let textWindow: Int

    public init(database: any SQLDatabase, textWindow: Int = 1_000) {
        self.database = database
        self.textWindow = textWindow
    }

    /// Creates or upgrades the schema.
    public func prepare() async throws {
        let dialect = self.dialect
        try await self.database.writing { session in
            _ = try await session.run("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_us BIGINT NOT NULL)", [])
            let applied = Set(try await session.run("SELECT version FROM schema_migrations", []).compactMap { $0.first?.integer })
            for migration in Schema.migrations(dialect) where !applied.contains(Int64(migration.version)) {
                for statement in migration.statements { _ = try await session.run(statement, []) }
                var insert = SQLStatement(dialect, "INSERT INTO schema_migrations (version, applied_us) VALUES ")
                insert.bindList([.integer(Int64(migration.version)), .integer(WallClock.nowMicroseconds())])
                _ = try await insert.run(on: session)
            }
        }
    }

    // MARK: Writing

    /// Stores a batch in one transaction: reads what it depends on, lets `planner` decide, writes
    /// the records, their leaves and the stream heads. Nothing is stored if anything fails.
    public func append(_ batch: IngestBatch, planner: LedgerPlanner) async throws -> LedgerPlan {
        try await self.append([batch], planner: planner)[0]
    }

    /// Stores several batches in one transaction (one commit, one sync to disk), planned in
    /// order, each seeing the ones before it. All or nothing.
    public func append(_ batches: [IngestBatch], planner: LedgerPlanner) async throws -> [LedgerPlan] {
        try await self.database.writing { session in
            var state = try await self.readState(batches, planner: planner, session)
            var plans: [LedgerPlan] = []
            for batch in batches {
                let plan = planner.plan(batch, state: state)
                state = state.advanced(by: plan)
                plans.append(plan)
            }
            try await self.write(plans, batches.map(\.receivedMicros), session)
            return plans
        }
    }

    private func readState(_ batches: [IngestBatch], planner: LedgerPlanner, _ session: any SQLSession) async throws -> LedgerState {
        let next = try await Self.nextLeaf(session)
        var streams: [String: StreamHead] = [:]
        var streamSet: Set<String> = [planner.streamID]
        var eventSet: Set<String> = []
        for batch in batches {
            for received in batch.events {
                streamSet.insert(received.event.streamID)
                eventSet.insert(received.event.eventID)
            }
        }
        let streamIDs = Array(streamSet)
        for chunk in streamIDs.chunked(self.valuesPerList) {
            var select = SQLStatement(self.dialect, "SELECT stream_id, last_seq, last_line_hash, pod_uid, namespace, pod FROM streams WHERE stream_id IN ")
            select.bindList(chunk.map { .text($0) })
            for row in try await select.run(on: session) {
                guard let id = row[0].text, let seq = row[1].integer, let hash = row[2].text else { continue }
                streams[id] = StreamHead(lastSeq: seq, lastLineHash: hash, podUID: row[3].text, namespace: row[4].text, pod: row[5].text)
            }
        }
        var stored: [String: String] = [:]
        for chunk in Array(eventSet).chunked(self.valuesPerList) {
            var select = SQLStatement(self.dialect, "SELECT event_id, line_hash FROM events WHERE event_id IN ")
            select.bindList(chunk.map { .text($0) })
            for row in try await select.run(on: session) {
                if let id = row[0].text, let hash = row[1].text { stored[id] = hash }
            }
        }
        return LedgerState(nextLeafIndex: next, streams: streams, storedLineHashes: stored)
    }

    private func write(_ plans: [LedgerPlan], _ receivedMicros: [Int64], _ session: any SQLSession) async throws {
        let dialect = self.dialect
        try await session.insert(SQLInsert(table: "events", columns: Schema.eventColumns), rows: plans.flatMap { plan in
            plan.records.map { r in
                [
                    .integer(r.leafIndex), .text(r.eventID), .text(r.streamID), .integer(r.seq), .text(r.prevHash), .text(r.lineHash),
                    .integer(r.timeMicros), .integer(r.receivedMicros), .text(r.kind), .text(r.sessionID), SQLValue(r.exchangeID),
                    .text(r.identity.namespace), SQLValue(r.identity.pod), .text(r.identity.serviceAccount), SQLValue(r.identity.node),
                    SQLValue(r.index.model), SQLValue(r.index.outcome), SQLValue(r.index.action), SQLValue(r.index.status.map(Int64.init)),
                    .utf8(r.stamp), .utf8(r.line),
                ] as [SQLValue]
            }
        })
        try await session.insert(
            SQLInsert(table: "log_leaves", columns: ["leaf_index", "leaf_hash", "event_id"]),
            rows: plans.flatMap { $0.records.map { [.integer($0.leafIndex), .blob($0.leafHash), .text($0.eventID)] } })
        // SQLite indexes the words in the transaction; PostgreSQL queues them for
        // `indexPendingText`.
        try await session.insert(
            dialect == .sqlite ? SQLInsert(table: "events_text", columns: ["rowid", "body"]) : SQLInsert(table: "event_text_queue", columns: ["leaf_index", "body"]),
            rows: plans.flatMap { $0.records.compactMap { $0.index.text.isEmpty ? nil : [.integer($0.leafIndex), .text($0.index.text)] } })
        // One row per (event, detector, direction): the table's key.
        struct FindingRow: Hashable {
            var leaf: Int64
            var detector: String
            var direction: String
        }
        var findings = Set<FindingRow>()
        for plan in plans {
            for r in plan.records where !r.index.findings.isEmpty {
                for finding in r.index.findings { findings.insert(FindingRow(leaf: r.leafIndex, detector: finding.detector, direction: finding.direction)) }
            }
        }
        try await session.insert(
            SQLInsert(table: "findings", columns: ["leaf_index", "detector", "direction"]),
            rows: findings.map { [.integer($0.leaf), .text($0.detector), .text($0.direction)] })

        // Each stream's head after the last batch that moved it.
        var heads: [String: (head: StreamHead, receivedMicros: Int64)] = [:]
        for (plan, received) in zip(plans, receivedMicros) {
            for (id, head) in plan.streamHeads { heads[id] = (head, received) }
        }
        try await session.insert(
            SQLInsert(
                table: "streams", columns: ["stream_id", "last_seq", "last_line_hash", "namespace", "pod", "pod_uid", "updated_us"],
                suffix: " ON CONFLICT (stream_id) DO UPDATE SET last_seq = excluded.last_seq, last_line_hash = excluded.last_line_hash, updated_us = excluded.updated_us"),
            rows: heads.map { id, value in
                [.text(id), .integer(value.head.lastSeq), .text(value.head.lastLineHash), SQLValue(value.head.namespace), SQLValue(value.head.pod),
                 SQLValue(value.head.podUID), .integer(value.receivedMicros)]
            })
    }

    // MARK: The log

    public func leafCount() async throws -> Int64 {
        try await self.database.reading(Self.nextLeaf)
    }

    private static func nextLeaf(_ session: any SQLSession) async throws -> Int64 {
        try await session.run("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_leaves", []).first?.first?.integer ?? 0
    }

    public func leaves(from start: Int64, limit: Int) async throws -> [LogLeaf] {
        var select = SQLStatement(self.dialect, "SELECT leaf_index, leaf_hash, event_id FROM log_leaves WHERE leaf_index >= ")
        select.bind(.integer(start))
        select.append(" ORDER BY leaf_index LIMIT ")
        select.bind(.integer(Int64(limit)))
        let statement = select
        return try await self.database.reading { session in
            try await statement.run(on: session).compactMap { row in
                guard let index = row[0].integer, let hash = row[1].blob, let id = row[2].text else { return nil }
                return LogLeaf(index: index, hash: hash, eventID: id)
            }
        }
    }

    public func saveCheckpoint(_ checkpoint: StoredCheckpoint) async throws {
        var insert = SQLStatement(self.dialect, "INSERT INTO checkpoints (tree_size, root_hash, note, frontier, created_us) VALUES ")
        insert.bindList([
            .integer(checkpoint.size), .blob(checkpoint.rootHash), .text(checkpoint.note), .blob(checkpoint.frontier), .integer(checkpoint.createdMicros),
        ])
        insert.append(" ON CONFLICT (tree_size) DO NOTHING")
        let statement = insert
        try await self.database.writing { session in _ = try await statement.run(on: session) }
    }

    /// Checkpoints, newest first.
    public func checkpoints(limit: Int) async throws -> [StoredCheckpoint] {
        var select = SQLStatement(self.dialect, "SELECT tree_size, root_hash, note, frontier, created_us FROM checkpoints ORDER BY tree_size DESC LIMIT ")
        select.bind(.integer(Int64(limit)))
        let statement = select
        return try await self.database.reading { session in
            try await statement.run(on: session).compactMap { row in
                guard let size = row[0].integer, let root = row[1].blob, let note = row[2].text, let frontier = row[3].blob, let created = row[4].integer else {
                    return nil
                }
                return StoredCheckpoint(size: size, rootHash: root, note: note, frontier: frontier, createdMicros: created)
            }
        }
    }

    // MARK: Queries

    private static let rowColumns = "leaf_index, event_id, stream_id, seq, prev_hash, line_hash, time_us, kind, session_id, stamp, line"

    private static func eventRow(_ row: [SQLValue]) -> EventRow? {
        guard row.count == 11, let leaf = row[0].integer, let id = row[1].text, let stream = row[2].text, let seq = row[3].integer,
              let prev = row[4].text, let lineHash = row[5].text, let time = row[6].integer, let kind = row[7].text,
              let session = row[8].text, let stamp = row[9].text else { return nil }
        return EventRow(
            leafIndex: leaf, eventID: id, streamID: stream, seq: seq, prevHash: prev, lineHash: lineHash, timeMicros: time, kind: kind,
            sessionID: session, stamp: stamp, line: row[10].text)
    }

    public func events(_ query: EventQuery) async throws -> [EventRow] {
        let textPlan = try await self.textPlan(query)
        if textPlan == .fromIndex, self.dialect == .sqlite, case .newestFirst(before: nil) = query.order,
           let rows = try await self.newestFromLatestMatches(query) {
            return rows
        }
        var select = SQLStatement(self.dialect, "SELECT \(Self.rowColumns) FROM events")
        self.filter(query, textPlan: textPlan, into: &select)
        switch query.order {
        case .newestFirst(let before):
            if let before {
                select.append(" AND (time_us < ")
                select.bind(.integer(before.timeMicros))
                select.append(" OR (time_us = ")
                select.bind(.integer(before.timeMicros))
                select.append(" AND leaf_index < ")
                select.bind(.integer(before.leafIndex))
                select.append("))")
            }
            select.append(" ORDER BY time_us DESC, leaf_index DESC")
        case .oldestFirst:
            select.append(" ORDER BY time_us, leaf_index")
        case .after(let leaf):
            select.append(" AND leaf_index > ")
            select.bind(.integer(leaf))
            select.append(" ORDER BY leaf_index")
        }
        select.append(" LIMIT ")
        select.bind(.integer(Int64(query.limit)))
        let statement = select
        return try await self.database.reading { try await statement.run(on: $0).compactMap(Self.eventRow) }
    }

    /// Every stored event from `start` in log order (for `verify`).
    public func records(from start: Int64, limit: Int) async throws -> [EventRow] {
        var select = SQLStatement(self.dialect, "SELECT \(Self.rowColumns) FROM events WHERE leaf_index >= ")
        select.bind(.integer(start))
        select.append(" ORDER BY leaf_index LIMIT ")
        select.bind(.integer(Int64(limit)))
        let statement = select
        return try await self.database.reading { try await statement.run(on: $0).compactMap(Self.eventRow) }
    }

    public func sessions(_ query: EventQuery) async throws -> [SessionSummary] {
        let models = self.dialect == .sqlite ? "GROUP_CONCAT(DISTINCT model)" : "string_agg(DISTINCT model, ',')"
        var select = SQLStatement(self.dialect, """
            SELECT session_id, MIN(time_us), MAX(time_us), COUNT(*), SUM(CASE WHEN kind = 'llm.request' THEN 1 ELSE 0 END),
            MIN(namespace), MIN(pod), MIN(service_account), \(models) FROM events
            """)
        self.filter(query, textPlan: try await self.textPlan(query), into: &select)
        select.append(" AND kind NOT LIKE 'integrity.%' GROUP BY session_id ORDER BY MAX(time_us) DESC LIMIT ")
        select.bind(.integer(Int64(query.limit)))
        let statement = select
        return try await self.database.reading { session in
            try await statement.run(on: session).compactMap { row in
                guard let id = row[0].text, let first = row[1].integer, let last = row[2].integer, let count = row[3].integer else { return nil }
                return SessionSummary(
                    sessionID: id, firstMicros: first, lastMicros: last, events: count, requests: row[4].integer ?? 0, namespace: row[5].text,
                    pod: row[6].text, serviceAccount: row[7].text,
                    models: (row[8].text ?? "").split(separator: ",").map(String.init).sorted())
            }
        }
    }

    /// How SQLite finds events by their text. A phrase that few events hold is read from the
    /// full-text index and those events fetched (`fromIndex`). One that many recent events hold
    /// is found faster the other way round: walk the events in the query's order and ask the
    /// index about each (`perEvent`), stopping when the page is full. Which one is decided from
    /// the phrase's share of the latest `textSample` events (one bounded look at the index).
    enum TextPlan {
        case none
        case fromIndex
        case perEvent
    }

    static let textSample = 1_000
    /// At 10 % or more, a page of 100 is found within about 1,000 events.
    static let denseTextMatches = 100

    private func textPlan(_ query: EventQuery) async throws -> TextPlan {
        guard let text = query.text, !text.isEmpty else { return .none }
        guard self.dialect == .sqlite else {
            try await self.indexQueuedText()
            return .fromIndex
        }
        let rows = try await self.database.reading { session in
            try await session.run(
                """
                SELECT COUNT(*) FROM events_text WHERE events_text MATCH ?
                AND rowid > (SELECT COALESCE(MAX(leaf_index), 0) FROM log_leaves) - \(Self.textSample)
                """, [.text(Self.ftsPhrase(text))])
        }
        return (rows.first?.first?.integer ?? 0) >= Int64(Self.denseTextMatches) ? .perEvent : .fromIndex
    }

    /// The first page, newest first, of events holding a phrase, found from the phrase's latest
    /// matches in the index (a window of the highest leaf indexes) instead of all of them: FTS5
    /// reads its matches newest-first and stops at the window. The page is proven, not guessed:
    /// it stands when the window held every match, or when no event outside the window (an
    /// older leaf) is newer by time than the page's last row — a late arrival would be, and then
    /// the window grows. Nil sends the caller to the full match set.
    private func newestFromLatestMatches(_ query: EventQuery) async throws -> [EventRow]? {
        guard let text = query.text else { return nil }
        let phrase = SQLValue.text(Self.ftsPhrase(text))
        var others = query
        others.text = nil
        var window = self.textWindow
        while window <= self.textWindow * 64 {
            let latest = "SELECT MIN(rowid), COUNT(*) FROM (SELECT rowid FROM events_text WHERE events_text MATCH ? ORDER BY rowid DESC LIMIT \(window))"
            let bound = try await self.database.reading { try await $0.run(latest, [phrase]) }
            guard let oldest = bound.first?[0].integer, let matches = bound.first?[1].integer else { return [] }
            var select = SQLStatement(self.dialect, "SELECT \(Self.rowColumns) FROM events")
            self.filter(others, textPlan: .none, into: &select)
            select.append(" AND leaf_index >= ")
            select.bind(.integer(oldest))
            select.append(" AND leaf_index IN (SELECT rowid FROM events_text WHERE events_text MATCH ")
            select.bind(phrase)
            select.append(" AND rowid >= ")
            select.bind(.integer(oldest))
            select.append(") ORDER BY time_us DESC, leaf_index DESC LIMIT ")
            select.bind(.integer(Int64(query.limit)))
            let page = select
            let rows = try await self.database.reading { try await page.run(on: $0).compactMap(Self.eventRow) }
            if matches < Int64(window) { return rows }  // the window is every match
            if rows.count == query.limit, let last = rows.last {
                var check = SQLStatement(self.dialect, "SELECT 1 FROM events")
                self.filter(query, textPlan: .perEvent, into: &check)
                check.append(" AND time_us > ")
                check.bind(.integer(last.timeMicros))
                check.append(" AND leaf_index < ")
                check.bind(.integer(oldest))
                check.append(" LIMIT 1")
                let probe = check
                if try await self.database.reading({ try await probe.run(on: $0) }).isEmpty { return rows }
            }
            window *= 4
        }
        return nil
    }

    /// One FTS5 phrase: the words in order, quotes doubled.
    private static func ftsPhrase(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private func filter(_ query: EventQuery, textPlan: TextPlan, into select: inout SQLStatement) {
        select.append(" WHERE 1 = 1")
        let equalities: [(String, String?)] = [
            ("namespace", query.namespace), ("pod", query.pod), ("service_account", query.serviceAccount), ("session_id", query.session),
            ("model", query.model), ("action", query.action), ("outcome", query.outcome),
        ]
        for (column, value) in equalities {
            guard let value else { continue }
            select.append(" AND \(column) = ")
            select.bind(.text(value))
        }
        if let kind = query.kind {
            if kind.hasSuffix("*") {
                select.append(" AND kind LIKE ")
                select.bind(.text(kind.dropLast().replacingOccurrences(of: "%", with: "") + "%"))
            } else {
                select.append(" AND kind = ")
                select.bind(.text(kind))
            }
        }
        if let since = query.sinceMicros {
            select.append(" AND time_us >= ")
            select.bind(.integer(since))
        }
        if let until = query.untilMicros {
            select.append(" AND time_us < ")
            select.bind(.integer(until))
        }
        if let detector = query.detector {
            select.append(" AND leaf_index IN (SELECT leaf_index FROM findings WHERE detector = ")
            select.bind(.text(detector))
            select.append(")")
        }
        if let text = query.text, !text.isEmpty {
            switch self.dialect {
            case .sqlite where textPlan == .perEvent:
                // A scalar subquery, not EXISTS: SQLite would turn EXISTS into a join driven by
                // the index, which is the plan this one is here to avoid.
                select.append(" AND (SELECT 1 FROM events_text WHERE events_text MATCH ")
                select.bind(.text(Self.ftsPhrase(text)))
                select.append(" AND events_text.rowid = events.leaf_index) IS NOT NULL")
            case .sqlite:
                select.append(" AND leaf_index IN (SELECT rowid FROM events_text WHERE events_text MATCH ")
                select.bind(.text(Self.ftsPhrase(text)))
                select.append(")")
            case .postgres:
                select.append(" AND leaf_index IN (SELECT leaf_index FROM event_text WHERE body @@ phraseto_tsquery('simple', ")
                select.bind(.text(text))
                select.append("))")
            }
        }
    }

    // MARK: PostgreSQL's search index

    /// Events whose text one `indexPendingText` call indexes at most.
    static let textBatch = 5_000
    /// PostgreSQL indexes the first 256 K characters of an event's text: a `tsvector` may not
    /// pass 1 MB, and one that did would fail the whole indexing statement, every time.
    static let indexedTextCharacters = 262_144

    /// PostgreSQL: moves up to `textBatch` queued texts into the search index, oldest first, in
    /// one statement (its own transaction) beside the writer, and says how many. Background
    /// runs skip texts another replica is indexing; `waitForOthers` waits for them instead, so
    /// that when it returns, every text queued before the call is searchable. SQLite indexes
    /// in the writer's transaction and has nothing queued.
    @discardableResult
    public func indexPendingText(waitForOthers: Bool = false) async throws -> Int {
        guard self.dialect == .postgres else { return 0 }
        let statement = """
            WITH taken AS (
                DELETE FROM event_text_queue WHERE leaf_index IN (
                    SELECT leaf_index FROM event_text_queue ORDER BY leaf_index LIMIT \(Self.textBatch) FOR UPDATE\(waitForOthers ? "" : " SKIP LOCKED"))
                RETURNING leaf_index, body),
            indexed AS (
                INSERT INTO event_text (leaf_index, body) SELECT leaf_index, to_tsvector('simple', left(body, \(Self.indexedTextCharacters))) FROM taken
                ON CONFLICT (leaf_index) DO NOTHING)
            SELECT COUNT(*) FROM taken
            """
        let rows = try await self.database.besideWriter { try await $0.run(statement, []) }
        return Int(rows.first?.first?.integer ?? 0)
    }

    /// Texts stored but not yet searchable (PostgreSQL; 0 on SQLite).
    public func queuedTextCount() async throws -> Int64 {
        guard self.dialect == .postgres else { return 0 }
        return try await self.database.reading { try await $0.run("SELECT COUNT(*) FROM event_text_queue", []) }.first?.first?.integer ?? 0
    }

    /// Before a text search on PostgreSQL: indexes what is queued (a few batches at most), so a
    /// search sees the events stored before it even while the background indexer is behind.
    private func indexQueuedText() async throws {
        for _ in 0..<4 {
            if try await self.indexPendingText(waitForOthers: true) < Self.textBatch { return }
        }
    }

    // MARK: Retention

    /// Drops the content (line and search text) of events older than `micros`; their hashes,
    /// leaves and stamps stay, so the log and the chains still verify. Returns how many.
    public func pruneContent(olderThan micros: Int64) async throws -> Int {
        let dialect = self.dialect
        return try await self.database.writing { session in
            var select = SQLStatement(dialect, "SELECT leaf_index FROM events WHERE time_us < ")
            select.bind(.integer(micros))
            select.append(" AND line IS NOT NULL")
            let leaves = try await select.run(on: session).compactMap { $0.first?.integer }
            for chunk in leaves.chunked(self.valuesPerList) {
                var update = SQLStatement(dialect, "UPDATE events SET line = NULL WHERE leaf_index IN ")
                update.bindList(chunk.map { .integer($0) })
                _ = try await update.run(on: session)
                // PostgreSQL: the queue first. Its delete waits for an indexer holding those
                // rows; the next statement then sees what that indexer inserted.
                let searchText = dialect == .sqlite ? ["events_text WHERE rowid"] : ["event_text_queue WHERE leaf_index", "event_text WHERE leaf_index"]
                for table in searchText {
                    var delete = SQLStatement(dialect, "DELETE FROM \(table) IN ")
                    delete.bindList(chunk.map { .integer($0) })
                    _ = try await delete.run(on: session)
                }
            }
            return leaves.count
        }
    }

}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: self.count, by: size).map { self[$0..<Swift.min($0 + size, self.count)] }
    }
}
