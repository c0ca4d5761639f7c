import Foundation
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// The scale-out store: PostgreSQL through postgres-nio's connection pool. Writers take a
/// transaction-scoped advisory lock, so collector replicas sharing one database append to one
/// log in turn and never hand out the same leaf index twice.
public final class PostgresEngine: SQLDatabase {
    public let dialect = SQLDialect.postgres
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let gate = Turnstile()
    private let logger: Logger
    /// Any 64-bit number that no other application sharing the database uses for advisory locks.
    static let writerLockKey: Int64 = 0x6368_6170_6572_6f6e

    public static func connect(_ settings: CollectorConfiguration.Postgres, logger: Logger) throws -> PostgresEngine {
        var password: String?
        if let file = settings.passwordFile {
            do {
                password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
            } catch {
                throw StoreError.unavailable("cannot read storage.postgres.password_file \(file): \(error.localizedDescription)")
            }
        }
        let tls: PostgresClient.Configuration.TLS
        switch settings.tls {
        case .disable: tls = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile = settings.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            tls = settings.tls == .prefer ? .prefer(configuration) : .require(configuration)
        }
        var configuration: PostgresClient.Configuration
        if settings.host.hasPrefix("/") {
            configuration = .init(unixSocketPath: settings.host, username: settings.user, password: password, database: settings.database)
        } else {
            configuration = .init(host: settings.host, port: settings.port, username: settings.user, password: password, database: settings.database, tls: tls)
        }
        configuration.options.maximumConnections = settings.maxConnections
        configuration.options.minimumConnections = 1
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return PostgresEngine(client: client, logger: logger)
    }

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
    }

    public func writing<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await self.gate.run {
            try await self.client.withTransaction(logger: self.logger) { connection in
                let session = Session(connection: connection, logger: self.logger)
                _ = try await session.run("SELECT pg_advisory_xact_lock(\(Self.writerLockKey))", [])
                return try await body(session)
            }
        }
    }

    public func reading<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await self.client.withConnection { connection in
            try await body(Session(connection: connection, logger: self.logger))
        }
    }

    /// A pooled connection, as readers use, outside the writers' lock.
    public func besideWriter<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await self.reading(body)
    }

    public func storageBytes() async throws -> Int64 {
        let rows = try await self.reading { try await $0.run("SELECT pg_database_size(current_database())", []) }
        return rows.first?.first?.integer ?? 0
    }

    public func close() async throws {
        self.runner.cancel()
        _ = await self.runner.value
    }

    struct Session: SQLSession {
        let connection: PostgresConnection
        let logger: Logger

        func run(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
            var bindings = PostgresBindings(capacity: binds.count)
            for bind in binds {
                switch bind {
                case .integer(let v): bindings.append(v)
                case .text(let v): bindings.append(v)
                case .utf8(let v): bindings.append(String(decoding: v, as: UTF8.self))
                case .blob(let v): bindings.append(ByteBuffer(bytes: v))
                case .null: bindings.appendNull()
                }
            }
            let rows = try await self.connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: self.logger).collect()
            return try Self.values(rows)
        }

        /// One statement whatever the number of rows: each column travels as one binary array
        /// and `unnest` turns them back into rows. The text of the statement does not depend on
        /// the row count, so the server parses and plans a short statement instead of thousands
        /// of placeholders.
        func insert(_ insert: SQLInsert, rows: [[SQLValue]]) async throws {
            guard !rows.isEmpty else { return }
            var bindings = PostgresBindings(capacity: insert.columns.count)
            var selected: [String] = []
            var arrays: [String] = []
            var names: [String] = []
            for (index, column) in insert.columns.enumerated() {
                let values = rows.map { $0[index] }
                // A column that is null in every row has no element type to send: it is a NULL
                // literal, which the column's own type takes.
                var name = "NULL"
                if let array = ColumnArray(values: values) {
                    try bindings.append(array)
                    arrays.append("$\(arrays.count + 1)::\(array.element.name)[]")
                    names.append("c\(index)")
                    name = "u.c\(index)"
                }
                selected.append(insert.expressions[column].map { $0.replacingOccurrences(of: "?", with: name) } ?? name)
            }
            let sql = """
                INSERT INTO \(insert.table) (\(insert.columns.joined(separator: ", "))) SELECT \(selected.joined(separator: ", ")) \
                FROM unnest(\(arrays.joined(separator: ", "))) AS u(\(names.joined(separator: ", ")))\(insert.suffix)
                """
            _ = try await self.connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: self.logger).collect()
        }

        private static func values(_ rows: [PostgresRow]) throws -> [[SQLValue]] {
            return try rows.map { row in
                try row.map { cell -> SQLValue in
                    guard cell.bytes != nil else { return .null }
                    switch cell.dataType {
                    case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
                    case .bytea: return .blob(Array(buffer: try cell.decode(ByteBuffer.self)))
                    case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
                    default: return .text(try cell.decode(String.self))
                    }
                }
            }
        }
    }
}

/// One column of an insert as a PostgreSQL array in the binary wire format (`int8[]`, `text[]`
/// or `bytea[]`, nulls allowed), for `unnest`.
struct ColumnArray: PostgresDynamicTypeEncodable {
    enum Element {
        case int8, text, bytea

        var name: String {
            switch self {
            case .int8: "int8"
            case .text: "text"
            case .bytea: "bytea"
            }
        }

        /// The element type's OID, and its array type.
        var types: (element: UInt32, array: PostgresDataType) {
            switch self {
            case .int8: (20, .int8Array)
            case .text: (25, .textArray)
            case .bytea: (17, .byteaArray)
            }
        }
    }

    let values: [SQLValue]
    let element: Element

    /// Nil when every value is null.
    init?(values: [SQLValue]) {
        let element = values.lazy.compactMap { value -> Element? in
            switch value {
            case .integer: .int8
            case .text, .utf8: .text
            case .blob: .bytea
            case .null: nil
            }
        }.first
        guard let element else { return nil }
        self.values = values
        self.element = element
    }

    var psqlType: PostgresDataType { self.element.types.array }

    var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(Int32(1))  // dimensions
        buffer.writeInteger(Int32(self.values.contains(.null) ? 1 : 0))
        buffer.writeInteger(self.element.types.element)
        buffer.writeInteger(Int32(self.values.count))
        buffer.writeInteger(Int32(1))  // lower bound
        for value in self.values {
            switch value {
            case .null:
                buffer.writeInteger(Int32(-1))
            case .integer(let v):
                buffer.writeInteger(Int32(8))
                buffer.writeInteger(v)
            case .text(let v):
                buffer.writeInteger(Int32(v.utf8.count))
                buffer.writeString(v)
            case .utf8(let v), .blob(let v):
                buffer.writeInteger(Int32(v.count))
                buffer.writeBytes(v)
            }
        }
    }
}
