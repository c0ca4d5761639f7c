/// A value bound into, or read out of, a SQL statement.
public enum SQLValue: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null

    var integer: Int64? { if case .integer(let v) = self { v } else { nil } }
    var text: String? { if case .text(let v) = self { v } else { nil } }
    var blob: [UInt8]? {
        switch self {
        case .blob(let v): v
        case .text(let v): Array(v.utf8)
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
}

/// One engine: its dialect, a transaction for writers and a session for readers.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` in one transaction, serialised against other writers (of this and, for
    /// PostgreSQL, every other collector replica); commits if it returns.
    func writing<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    func reading<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T
    /// Bytes on disk (database files, or the PostgreSQL database).
    func storageBytes() async throws -> Int64
    func close() async throws
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
