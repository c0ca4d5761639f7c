/// A value bound into, or read out of, a SQL statement.
public enum SQLValue: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    /// Text given as its UTF-8 bytes (stored as text, read back as `.text`).
    case utf8([UInt8])
    case blob([UInt8])
    case null

    var integer: Int64? { if case .integer(let v) = self { v } else { nil } }
    var text: String? {
        switch self {
        case .text(let v): v
        case .utf8(let v): String(decoding: v, as: UTF8.self)
        default: nil
        }
    }
    var blob: [UInt8]? {
        switch self {
        case .blob(let v): v
        case .text(let v): Array(v.utf8)
        case .utf8(let v): v
        default: nil
        }
    }

    init(_ text: String?) { self = text.map { .text($0) } ?? .null }
    init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
}

/// The two SQL engines differ in a handful of places; the store asks the dialect.
public enum SQLDialect: Sendable {
    case sqlite
    case postgres

    func placeholder(_ number: Int) -> String {
        switch self {
        case .sqlite: "?"
        case .postgres: "$\(number)"
        }
    }
}

/// A connection (or a transaction on one) that runs statements with positional parameters.
public protocol SQLSession: Sendable {
    func run(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]]
    /// Inserts rows, each in `insert.columns` order, the engine's fastest way.
    func insert(_ insert: SQLInsert, rows: [[SQLValue]]) async throws
}

/// An `INSERT` of whole rows into one table.
public struct SQLInsert: Sendable {
    var table: String
    var columns: [String]
    /// SQL for a column's value in terms of its parameter `?`, where the value is not stored as
    /// given (`to_tsvector('simple', ?)`).
    var expressions: [String: String] = [:]
    /// After the values (`ON CONFLICT …`).
    var suffix = ""

    /// The statement for one row with `?` parameters (SQLite).
    var singleRow: String {
        "INSERT INTO \(self.table) (\(self.columns.joined(separator: ", "))) VALUES ("
            + self.columns.map { self.expressions[$0] ?? "?" }.joined(separator: ", ") + ")" + self.suffix
    }
}

/// One engine: its dialect, a transaction for writers and a session for readers.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` in one transaction, serialised against other writers (of this and, for
    /// PostgreSQL, every other collector replica); commits if it returns.
    func writing<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    func reading<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    /// Runs `body` on a connection of its own, not in the writer's turn: each statement is its
    /// own transaction. For upkeep that must not hold up ingest (PostgreSQL's search index);
    /// an engine with a single writer runs it as a writer.
    func besideWriter<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    /// Bytes on disk (database files, or the PostgreSQL database).
    func storageBytes() async throws -> Int64
    func close() async throws
    /// Where `writing` runs its transactions, if on an executor of its own: work that leads
    /// into a transaction starts there to save a hop.
    var writerExecutor: (any TaskExecutor)? { get }
}

extension SQLDatabase {
    public var writerExecutor: (any TaskExecutor)? { nil }
}

/// Builds a statement and its parameters together, numbering placeholders for the dialect.
struct SQLStatement {
    let dialect: SQLDialect
    private(set) var sql = ""
    private(set) var binds: [SQLValue] = []

    init(_ dialect: SQLDialect, _ sql: String = "") {
        self.dialect = dialect
        self.sql = sql
    }

    mutating func append(_ text: String) { self.sql += text }

    /// Appends a placeholder for `value`.
    mutating func bind(_ value: SQLValue) {
        self.binds.append(value)
        self.sql += self.dialect.placeholder(self.binds.count)
    }

    /// `(?, ?, ?)` for a list.
    mutating func bindList(_ values: [SQLValue]) {
        self.sql += "("
        for (i, value) in values.enumerated() {
            if i > 0 { self.sql += ", " }
            self.bind(value)
        }
        self.sql += ")"
    }

    func run(on session: any SQLSession) async throws -> [[SQLValue]] {
        try await session.run(self.sql, self.binds)
    }
}
