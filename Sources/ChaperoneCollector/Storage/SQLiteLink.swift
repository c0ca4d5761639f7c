import NIOConcurrencyHelpers
import VaporCSQLite

/// One open SQLite database connection, driven through the C API directly: statements are
/// prepared once and kept, values are bound straight from Swift, and a whole transaction runs on
/// one thread without a hop per statement (sqlite-nio's per-query thread-pool round trip cost
/// more than the inserts themselves).
///
/// Not for concurrent use: the engine gives each link to one task at a time (the library is
/// built thread-safe, so the thread it runs on may change between uses).
final class SQLiteLink: @unchecked Sendable {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    let path: String

    init(path: String) throws(StoreError) {
        self.path = path
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        var handle: OpaquePointer?
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite_nio_sqlite3_close(handle)
            throw StoreError.unavailable("cannot open \(path): \(message)")
        }
        self.handle = handle
        sqlite_nio_sqlite3_extended_result_codes(handle, 1)
    }

    deinit { self.close() }

    func close() {
        for statement in self.statements.values { sqlite_nio_sqlite3_finalize(statement) }
        self.statements = [:]
        if let handle = self.handle { sqlite_nio_sqlite3_close_v2(handle) }
        self.handle = nil
    }

    /// Runs statements without parameters or results (pragmas, BEGIN, COMMIT).
    func execute(_ sql: String) throws(StoreError) {
        guard let handle = self.handle else { throw StoreError.unavailable("the database \(self.path) is closed") }
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite_nio_sqlite3_exec(handle, sql, nil, nil, &message)
        defer { sqlite_nio_sqlite3_free(message) }
        guard status == SQLITE_OK else {
            throw Self.failure(status, message.map { String(cString: $0) } ?? self.lastError, sql: sql)
        }
    }

    /// Runs one statement with positional parameters and returns its rows.
    func run(_ sql: String, _ binds: [SQLValue]) throws(StoreError) -> [[SQLValue]] {
        let statement = try self.prepared(sql)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        try self.bind(binds, to: statement, sql: sql)
        var rows: [[SQLValue]] = []
        let columns = sqlite_nio_sqlite3_column_count(statement)
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return rows }
            guard status == SQLITE_ROW else { throw Self.failure(status, self.lastError, sql: sql) }
            var row: [SQLValue] = []
            row.reserveCapacity(Int(columns))
            for column in 0..<columns { row.append(Self.value(statement, column)) }
            rows.append(row)
        }
    }

    /// Runs one statement once per row of parameters (an INSERT), prepared once.
    func runEach(_ sql: String, _ rows: [[SQLValue]]) throws(StoreError) {
        let statement = try self.prepared(sql)
        defer { sqlite_nio_sqlite3_clear_bindings(statement) }
        for row in rows {
            try self.bind(row, to: statement, sql: sql)
            let status = sqlite_nio_sqlite3_step(statement)
            sqlite_nio_sqlite3_reset(statement)
            guard status == SQLITE_DONE || status == SQLITE_ROW else { throw Self.failure(status, self.lastError, sql: sql) }
        }
    }

    private func prepared(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let statement = self.statements[sql] { return statement }
        guard let handle = self.handle else { throw StoreError.unavailable("the database \(self.path) is closed") }
        var statement: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw Self.failure(status, self.lastError, sql: sql) }
        // Statements built per call (IN lists of varying length) are not worth keeping.
        if self.statements.count < 64 { self.statements[sql] = statement }
        return statement
    }

    private func bind(_ values: [SQLValue], to statement: OpaquePointer, sql: String) throws(StoreError) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .integer(let v):
                status = sqlite_nio_sqlite3_bind_int64(statement, index, v)
            case .text(var v):
                status = v.withUTF8 { sqlite_nio_sqlite3_bind_text64(statement, index, $0.baseAddress, UInt64($0.count), Self.transient, UInt8(SQLITE_UTF8)) }
            case .utf8(let v) where v.isEmpty:
                status = sqlite_nio_sqlite3_bind_text64(statement, index, "", 0, Self.transient, UInt8(SQLITE_UTF8))
            case .utf8(let v):
                status = v.withUnsafeBytes {
                    sqlite_nio_sqlite3_bind_text64(statement, index, $0.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64($0.count), Self.transient, UInt8(SQLITE_UTF8))
                }
            case .blob(let v):
                status = v.withUnsafeBytes { sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64($0.count), Self.transient) }
            case .null:
                status = sqlite_nio_sqlite3_bind_null(statement, index)
            }
            guard status == SQLITE_OK else { throw Self.failure(status, self.lastError, sql: sql) }
        }
    }

    private static func value(_ statement: OpaquePointer, _ column: Int32) -> SQLValue {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER:
            return .integer(sqlite_nio_sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT:
            return .integer(Int64(sqlite_nio_sqlite3_column_double(statement, column)))
        case SQLITE_TEXT:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard let text = sqlite_nio_sqlite3_column_text(statement, column) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard let blob = sqlite_nio_sqlite3_column_blob(statement, column) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: blob, count: count)))
        default:
            return .null
        }
    }

    private var lastError: String {
        self.handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "closed"
    }

    private static func failure(_ status: Int32, _ message: String, sql: String) -> StoreError {
        let statement = sql.count > 120 ? String(sql.prefix(120)) + "…" : sql
        return StoreError.unavailable("SQLite error \(status): \(message) (in \(statement))")
    }

    /// SQLITE_TRANSIENT: SQLite copies bound values before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
