import ChaperoneCore
import Foundation

/// Approvals in the collector's database (table `approvals`, migration SQLite 3 / PostgreSQL 5),
/// so that pending holds and decisions survive a restart and are shared by replicas on
/// PostgreSQL. Every change is a read-modify-write inside the writer's transaction, which the
/// engines serialise (PostgreSQL across replicas too), so two approvers voting at once both count.
struct ApprovalStore: Sendable {
    let database: any SQLDatabase
    private var dialect: SQLDialect { self.database.dialect }

    /// An approval and the change cursor it was last written at.
    struct Stored: Sendable {
        var approval: Approval
        var updatedMicros: Int64
    }

    enum Change: Sendable {
        case unchanged
        case changed
    }

    /// Inserts a new approval, or returns the one already stored under its id.
    func open(_ approval: Approval) async throws -> (stored: Stored, created: Bool) {
        let dialect = self.dialect
        return try await self.database.writing { session in
            if let existing = try await Self.load(approval.id, dialect, session) { return (existing, false) }
            let updated = try await Self.nextCursor(dialect, session)
            var insert = SQLStatement(dialect, "INSERT INTO approvals (approval_id, status, created_us, expires_us, updated_us, namespace, pod_uid, document) VALUES ")
            insert.bindList([
                .text(approval.id), .text(approval.status.rawValue), .integer(WallClock.microseconds(rfc3339: approval.created) ?? 0),
                .integer(approval.expiresMicros), .integer(updated), SQLValue(approval.requester.namespace), SQLValue(approval.requester.podUID),
                .utf8(approval.json),
            ])
            _ = try await insert.run(on: session)
            return (Stored(approval: approval, updatedMicros: updated), true)
        }
    }

    /// Loads an approval, lets `change` modify it, and writes it back if it says so. Returns the
    /// approval as stored afterwards and what `change` returned.
    func update<Result: Sendable>(
        _ id: String, _ change: @escaping @Sendable (inout Approval) throws -> (Change, Result)
    ) async throws -> (stored: Stored, result: Result)? {
        let dialect = self.dialect
        return try await self.database.writing { session in
            guard var stored = try await Self.load(id, dialect, session) else { return nil }
            let (outcome, result) = try change(&stored.approval)
            if case .changed = outcome {
                stored.updatedMicros = try await Self.nextCursor(dialect, session)
                var statement = SQLStatement(dialect, "UPDATE approvals SET status = ")
                statement.bind(.text(stored.approval.status.rawValue))
                statement.append(", updated_us = ")
                statement.bind(.integer(stored.updatedMicros))
                statement.append(", document = ")
                statement.bind(.utf8(stored.approval.json))
                statement.append(" WHERE approval_id = ")
                statement.bind(.text(id))
                _ = try await statement.run(on: session)
            }
            return (stored, result)
        }
    }

    func get(_ id: String) async throws -> Stored? {
        let dialect = self.dialect
        return try await self.database.reading { session in try await Self.load(id, dialect, session) }
    }

    enum Filter: String, Sendable, CaseIterable {
        case pending
        case decided
        case all
    }

    /// Newest first; or, with `changedAfter`, every approval written after that cursor, oldest change first.
    func list(_ filter: Filter, changedAfter: Int64?, limit: Int) async throws -> [Stored] {
        let dialect = self.dialect
        return try await self.database.reading { session in
            var statement = SQLStatement(dialect, "SELECT document, updated_us FROM approvals WHERE 1 = 1")
            switch filter {
            case .pending: statement.append(" AND status = 'pending'")
            case .decided: statement.append(" AND status <> 'pending'")
            case .all: break
            }
            if let changedAfter {
                statement.append(" AND updated_us > ")
                statement.bind(.integer(changedAfter))
                statement.append(" ORDER BY updated_us ASC")
            } else {
                statement.append(" ORDER BY created_us DESC, approval_id DESC")
            }
            statement.append(" LIMIT \(limit)")
            return try await statement.run(on: session).map(Self.row)
        }
    }

    /// Ids of pending approvals whose deadline has passed.
    func due(nowMicros: Int64) async throws -> [String] {
        let dialect = self.dialect
        return try await self.database.reading { session in
            var statement = SQLStatement(dialect, "SELECT approval_id FROM approvals WHERE status = 'pending' AND expires_us <= ")
            statement.bind(.integer(nowMicros))
            return try await statement.run(on: session).compactMap { $0.first?.text }
        }
    }

    /// The newest change cursor (0 when there are none).
    func latestCursor() async throws -> Int64 {
        try await self.database.reading { session in try await Self.lastCursor(session) }
    }

    // MARK: Rows

    private static func load(_ id: String, _ dialect: SQLDialect, _ session: any SQLSession) async throws -> Stored? {
        var select = SQLStatement(dialect, "SELECT document, updated_us FROM approvals WHERE approval_id = ")
        select.bind(.text(id))
        return try await select.run(on: session).first.map(Self.row)
    }

    private static func row(_ row: [SQLValue]) throws -> Stored {
        guard let document = row[0].blob, let updated = row[1].integer else { throw StoreError.corrupt("an approvals row has no document") }
        return Stored(approval: try JSONDecoder().decode(Approval.self, from: Data(document)), updatedMicros: updated)
    }

    private static func lastCursor(_ session: any SQLSession) async throws -> Int64 {
        try await session.run("SELECT COALESCE(MAX(updated_us), 0) FROM approvals", []).first?.first?.integer ?? 0
    }

    /// Larger than every cursor written so far and not before now.
    private static func nextCursor(_ dialect: SQLDialect, _ session: any SQLSession) async throws -> Int64 {
        max(WallClock.nowMicroseconds(), try await Self.lastCursor(session) + 1)
    }
}

extension Approval {
    /// The approval as stored, answered by the API and sent in notifications: sorted keys,
    /// slashes as they are. (Its members are strings, numbers and arrays: encoding cannot fail.)
    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(self))) ?? Array("null".utf8)
    }
}
