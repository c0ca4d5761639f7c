/// The collector's tables, as numbered migrations per engine. A migration runs once, inside the
/// writer transaction, and is recorded in `schema_migrations`; never edit one that shipped, add
/// the next.
enum Schema {
    static func migrations(_ dialect: SQLDialect) -> [(version: Int, statements: [String])] {
        switch dialect {
        case .sqlite: [(1, Self.sqliteV1), (2, Self.unusedStreamIndex), (3, Self.approvals(integer: "INTEGER"))]
        case .postgres: [
            (1, Self.postgresV1), (2, Self.postgresV2), (3, Self.unusedStreamIndex), (4, Self.postgresTextBesideWriter),
            (5, Self.approvals(integer: "BIGINT")),
        ]
        }
    }

    /// Columns of `events` written per stored record, in bind order.
    static let eventColumns = [
        "leaf_index", "event_id", "stream_id", "seq", "prev_hash", "line_hash", "time_us", "received_us", "kind", "session_id",
        "exchange_id", "namespace", "pod", "service_account", "node", "model", "outcome", "action", "status", "stamp", "line",
    ]

    private static let sqliteV1 = [
        """
        CREATE TABLE events (
            leaf_index INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            stream_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            prev_hash TEXT NOT NULL,
            line_hash TEXT NOT NULL,
            time_us INTEGER NOT NULL,
            received_us INTEGER NOT NULL,
            kind TEXT NOT NULL,
            session_id TEXT NOT NULL,
            exchange_id TEXT,
            namespace TEXT,
            pod TEXT,
            service_account TEXT,
            node TEXT,
            model TEXT,
            outcome TEXT,
            action TEXT,
            status INTEGER,
            stamp TEXT NOT NULL,
            line TEXT
        )
        """,
        "CREATE INDEX events_time ON events (time_us)",
        "CREATE INDEX events_namespace_time ON events (namespace, time_us)",
        "CREATE INDEX events_session_time ON events (session_id, time_us)",
        "CREATE INDEX events_stream_seq ON events (stream_id, seq)",
        "CREATE TABLE findings (leaf_index INTEGER NOT NULL, detector TEXT NOT NULL, direction TEXT NOT NULL, PRIMARY KEY (detector, leaf_index, direction)) WITHOUT ROWID",
        "CREATE TABLE log_leaves (leaf_index INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, event_id TEXT NOT NULL)",
        """
        CREATE TABLE streams (
            stream_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, last_line_hash TEXT NOT NULL,
            namespace TEXT, pod TEXT, pod_uid TEXT, updated_us INTEGER NOT NULL
        )
        """,
        "CREATE TABLE checkpoints (tree_size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL, frontier BLOB NOT NULL, created_us INTEGER NOT NULL)",
        "CREATE VIRTUAL TABLE events_text USING fts5 (body, content='', contentless_delete=1)",
    ]

    /// Requests held for approval (docs/approvals.md). The approval itself (request, requester,
    /// votes) is one JSON document; the columns beside it are what lists and sweeps select on.
    /// `updated_us` only grows (the writer takes the larger of now and the last value plus one),
    /// so `chaperonectl approvals watch` can follow changes with it as a cursor.
    private static func approvals(integer: String) -> [String] { [
        """
        CREATE TABLE approvals (
            approval_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            created_us \(integer) NOT NULL,
            expires_us \(integer) NOT NULL,
            updated_us \(integer) NOT NULL,
            namespace TEXT,
            pod_uid TEXT,
            document TEXT NOT NULL
        )
        """,
        "CREATE INDEX approvals_status_expires ON approvals (status, expires_us)",
        "CREATE UNIQUE INDEX approvals_updated ON approvals (updated_us)",
    ] }

    /// No query reads events by stream and sequence (the planner keeps stream heads in
    /// `streams`); the index only cost every insert.
    private static let unusedStreamIndex = ["DROP INDEX IF EXISTS events_stream_seq"]

    /// Turning text into a tsvector and adding it to the GIN index took most of a PostgreSQL
    /// writer's time. The writer now queues the plain text (`event_text_queue`, in the same
    /// transaction, so nothing is lost) and `EventStore.indexPendingText` moves it into
    /// `event_text` on other connections, beside the writer.
    private static let postgresTextBesideWriter = [
        "CREATE TABLE event_text_queue (leaf_index BIGINT PRIMARY KEY, body TEXT NOT NULL)",
        "CREATE TABLE event_text (leaf_index BIGINT PRIMARY KEY, body tsvector NOT NULL)",
        "INSERT INTO event_text (leaf_index, body) SELECT leaf_index, body FROM events WHERE body IS NOT NULL",
        "CREATE INDEX event_text_body ON event_text USING gin (body)",
        "DROP INDEX IF EXISTS events_body",
        "ALTER TABLE events DROP COLUMN body",
    ]

    /// Event rows pass PostgreSQL's 2 KB TOAST threshold; lz4 compresses them several times
    /// faster than the default pglz (about a tenth of the ingest cost). Servers without lz4
    /// (before 14, or built without it) keep pglz.
    private static let postgresV2 = [
        """
        DO $$ BEGIN
            ALTER TABLE events ALTER COLUMN line SET COMPRESSION lz4, ALTER COLUMN stamp SET COMPRESSION lz4, ALTER COLUMN body SET COMPRESSION lz4;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'events keep the default compression: %', SQLERRM;
        END $$
        """,
    ]

    private static let postgresV1 = [
        """
        CREATE TABLE events (
            leaf_index BIGINT PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            stream_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            prev_hash TEXT NOT NULL,
            line_hash TEXT NOT NULL,
            time_us BIGINT NOT NULL,
            received_us BIGINT NOT NULL,
            kind TEXT NOT NULL,
            session_id TEXT NOT NULL,
            exchange_id TEXT,
            namespace TEXT,
            pod TEXT,
            service_account TEXT,
            node TEXT,
            model TEXT,
            outcome TEXT,
            action TEXT,
            status BIGINT,
            stamp TEXT NOT NULL,
            line TEXT,
            body tsvector
        )
        """,
        "CREATE INDEX events_time ON events (time_us)",
        "CREATE INDEX events_namespace_time ON events (namespace, time_us)",
        "CREATE INDEX events_session_time ON events (session_id, time_us)",
        "CREATE INDEX events_stream_seq ON events (stream_id, seq)",
        "CREATE INDEX events_body ON events USING gin (body)",
        "CREATE TABLE findings (leaf_index BIGINT NOT NULL, detector TEXT NOT NULL, direction TEXT NOT NULL, PRIMARY KEY (detector, leaf_index, direction))",
        "CREATE TABLE log_leaves (leaf_index BIGINT PRIMARY KEY, leaf_hash BYTEA NOT NULL, event_id TEXT NOT NULL)",
        """
        CREATE TABLE streams (
            stream_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL, last_line_hash TEXT NOT NULL,
            namespace TEXT, pod TEXT, pod_uid TEXT, updated_us BIGINT NOT NULL
        )
        """,
        "CREATE TABLE checkpoints (tree_size BIGINT PRIMARY KEY, root_hash BYTEA NOT NULL, note TEXT NOT NULL, frontier BYTEA NOT NULL, created_us BIGINT NOT NULL)",
    ]
}
