import Foundation
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SQLiteNIO

/// The embedded store: one SQLite database in WAL mode in the data directory. One connection
/// writes (one transaction per batch, `synchronous=FULL` by default so an acknowledged batch
/// survives power loss); two more serve reads, which WAL lets run beside the writer.
public final class SQLiteEngine: SQLDatabase {
    public let dialect = SQLDialect.sqlite
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let gate = WriterGate()
    private let nextReader = NIOLockedCounter()
    public let path: String

    public static func open(directory: String, durability: CollectorConfiguration.Storage.Durability, logger: Logger) async throws -> SQLiteEngine {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.unavailable("cannot create the data directory \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent("chaperone.db")
        let writer: SQLiteConnection
        do {
            writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError.unavailable("cannot open \(path): \(error)")
        }
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        for pragma in [
            "PRAGMA journal_mode = WAL", "PRAGMA synchronous = \(synchronous)", "PRAGMA busy_timeout = 10000",
            "PRAGMA cache_size = -65536", "PRAGMA temp_store = MEMORY", "PRAGMA secure_delete = OFF",
        ] {
            _ = try await writer.query(pragma)
        }
        var readers: [SQLiteConnection] = []
        for _ in 0..<2 {
            let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            _ = try await reader.query("PRAGMA busy_timeout = 10000")
            _ = try await reader.query("PRAGMA cache_size = -32768")
            _ = try await reader.query("PRAGMA query_only = 1")
            readers.append(reader)
        }
        return SQLiteEngine(path: path, writer: writer, readers: readers)
    }

    private init(path: String, writer: SQLiteConnection, readers: [SQLiteConnection]) {
        self.path = path
        self.writer = writer
        self.readers = readers
    }

    public func writing<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await self.gate.run {
            let session = Session(connection: self.writer)
            _ = try await self.writer.query("BEGIN IMMEDIATE")
            do {
                let result = try await body(session)
                _ = try await self.writer.query("COMMIT")
                return result
            } catch {
                _ = try? await self.writer.query("ROLLBACK")
                throw error
            }
        }
    }

    public func reading<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        let reader = self.readers[self.nextReader.increment() % self.readers.count]
        return try await body(Session(connection: reader))
    }

    public func storageBytes() async throws -> Int64 {
        var total: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: self.path + suffix)
            total += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return total
    }

    public func close() async throws {
        for reader in self.readers { try? await reader.close() }
        try await self.writer.close()
    }

    struct Session: SQLSession {
        let connection: SQLiteConnection

        func run(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
            let data: [SQLiteData] = binds.map {
                switch $0 {
                case .integer(let v): .integer(Int(v))
                case .text(let v): .text(v)
                case .blob(let v): .blob(ByteBuffer(bytes: v))
                case .null: .null
                }
            }
            let rows = try await self.connection.query(sql, data)
            return rows.map { row in
                row.columns.map { column in
                    switch column.data {
                    case .integer(let v): .integer(Int64(v))
                    case .float(let v): .integer(Int64(v))
                    case .text(let v): .text(v)
                    case .blob(let v): .blob(Array(buffer: v))
                    case .null: .null
                    }
                }
            }
        }
    }
}

/// A counter shared across tasks.
final class NIOLockedCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func increment() -> Int { self.value.withLockedValue { $0 += 1; return $0 } }
}

public enum StoreError: Error, CustomStringConvertible {
    case unavailable(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "storage unavailable: \(why)"
        case .corrupt(let why): "storage inconsistent: \(why)"
        }
    }
}
