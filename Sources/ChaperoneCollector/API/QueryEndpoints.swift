import ChaperoneCore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The read side of the API, for `chaperonectl`: events (filters, pages, follow), sessions, and
/// the Merkle log (checkpoints, leaves, records) that `chaperonectl verify` checks offline.
/// Every route needs a reader token.
struct QueryEndpoints: Sendable {
    let store: EventStore
    let log: TransparencyLog
    let readers: ReaderTokenFile
    let logger: Logger

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/events") { request, _ in await self.guarded(request) { try await self.events(request) } }
        router.get("/v1/sessions") { request, _ in await self.guarded(request) { try await self.sessions(request) } }
        router.get("/v1/log/checkpoints") { request, _ in await self.guarded(request) { try await self.checkpoints(request) } }
        router.get("/v1/log/leaves") { request, _ in await self.guarded(request) { try await self.leaves(request) } }
        router.get("/v1/log/records") { request, _ in await self.guarded(request) { try await self.records(request) } }
    }

    private func guarded(_ request: Request, _ body: () async throws -> Response) async -> Response {
        let readers = self.readers.tokens
        guard let token = APIResponse.bearerToken(request), readers.accepts(token) else {
            let hint = readers.isEmpty ? "reading is disabled: set readers.tokens_file in the collector's configuration (or create the file it names)" : "send a reader token (chaperonectl --token-file)"
            return APIResponse.error(.unauthorized, code: "unauthenticated", hint, headers: [.wwwAuthenticate: "Bearer"])
        }
        do {
            return try await body()
        } catch let error as BadQuery {
            return APIResponse.error(.badRequest, code: "bad_query", error.message)
        } catch {
            self.logger.error("query.failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return APIResponse.error(.serviceUnavailable, code: "storage_unavailable", "the query failed: \(error)")
        }
    }

    // MARK: Parameters

    /// RFC 3339, or microseconds since the epoch.
    private func time(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init), !text.isEmpty else { return nil }
        if let micros = Int64(text) { return micros }
        guard let micros = WallClock.microseconds(rfc3339: text) else { throw BadQuery(message: "\(name) must be RFC 3339 UTC (2026-11-22T10:00:00Z) or microseconds") }
        return micros
    }

    private func query(_ request: Request) throws -> EventQuery {
        let p = request.uri.queryParameters
        func text(_ name: String) -> String? { p[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        var query = EventQuery()
        query.namespace = text("namespace")
        query.pod = text("pod")
        query.serviceAccount = text("service_account")
        query.session = text("session")
        query.model = text("model")
        query.kind = text("kind")
        query.detector = text("detector")
        query.action = text("action")
        query.outcome = text("outcome")
        query.text = text("q")
        query.sinceMicros = try self.time(request, "since")
        query.untilMicros = try self.time(request, "until")
        query.limit = try APIResponse.integer(request, "limit", default: 100, range: 1...10_000)
        return query
    }

    // MARK: Routes

    private func events(_ request: Request) async throws -> Response {
        var query = try self.query(request)
        let p = request.uri.queryParameters
        var rows: [EventRow]
        if let after = p["after"] {
            guard let leaf = Int64(after) else { throw BadQuery(message: "after must be a leaf index") }
            query.order = .after(leafIndex: leaf)
            let wait = try APIResponse.integer(request, "wait", default: 0, range: 0...60)
            let deadline = ContinuousClock.now + .seconds(wait)
            rows = try await self.store.events(query)
            while rows.isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(250))
                rows = try await self.store.events(query)
            }
        } else {
            if p["order"] == "oldest" {
                query.order = .oldestFirst
            } else if let before = p["before"] {
                let parts = before.split(separator: ":")
                guard parts.count == 2, let time = Int64(parts[0]), let leaf = Int64(parts[1]) else { throw BadQuery(message: "before must be TIME_US:LEAF from a previous page's next") }
                query.order = .newestFirst(before: (time, leaf))
            }
            rows = try await self.store.events(query)
        }
        var bytes: [UInt8] = Array("{\"events\":[".utf8)
        for (i, row) in rows.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            // The stored line and stamp are JSON already: spliced in, not re-encoded.
            bytes.append(contentsOf: "{\"event\":".utf8)
            bytes.append(contentsOf: (row.line ?? "null").utf8)
            bytes.append(contentsOf: ",\"identity\":".utf8)
            bytes.append(contentsOf: row.stamp.utf8)
            bytes.append(contentsOf: ",\"leaf_index\":\(row.leafIndex)}".utf8)
        }
        bytes.append(contentsOf: "]".utf8)
        if let last = rows.last, rows.count == query.limit {
            if case .after = query.order {
                bytes.append(contentsOf: ",\"next\":\"\(last.leafIndex)\"".utf8)
            } else if case .newestFirst = query.order {
                bytes.append(contentsOf: ",\"next\":\"\(last.timeMicros):\(last.leafIndex)\"".utf8)
            }
        } else if case .after(let leaf) = query.order {
            bytes.append(contentsOf: ",\"next\":\"\(rows.last?.leafIndex ?? leaf)\"".utf8)
        }
        bytes.append(UInt8(ascii: "}"))
        return APIResponse.json(bytes)
    }

    private func sessions(_ request: Request) async throws -> Response {
        let rows = try await self.store.sessions(try self.query(request))
        return APIResponse.json { w in
            w.key("sessions") { w in
                w.array(rows) { w, s in
                    w.object { w in
                        w.key("events") { $0.integer(s.events) }
                        w.key("first") { $0.string(WallClock.rfc3339(microseconds: s.firstMicros)) }
                        w.key("last") { $0.string(WallClock.rfc3339(microseconds: s.lastMicros)) }
                        w.key("models") { $0.strings(s.models) }
                        if let v = s.namespace { w.key("namespace") { $0.string(v) } }
                        if let v = s.pod { w.key("pod") { $0.string(v) } }
                        w.key("requests") { $0.integer(s.requests) }
                        if let v = s.serviceAccount { w.key("service_account") { $0.string(v) } }
                        w.key("session_id") { $0.string(s.sessionID) }
                    }
                }
            }
        }
    }

    private func checkpoints(_ request: Request) async throws -> Response {
        let limit = try APIResponse.integer(request, "limit", default: 100, range: 1...100_000)
        let rows = try await self.store.checkpoints(limit: limit)
        let verifier = await self.log.signer.verifierKey.encoded
        return APIResponse.json { w in
            w.key("checkpoints") { w in
                w.array(rows) { w, c in
                    w.object { w in
                        w.key("note") { $0.string(c.note) }
                        w.key("root_hash") { $0.string(c.rootHash.hexString) }
                        w.key("time") { $0.string(WallClock.rfc3339(microseconds: c.createdMicros)) }
                        w.key("tree_size") { $0.integer(c.size) }
                    }
                }
            }
            w.key("verifier_key") { $0.string(verifier) }
        }
    }

    private func leaves(_ request: Request) async throws -> Response {
        let start = try APIResponse.integer(request, "start", default: 0, range: 0...Int.max)
        let limit = try APIResponse.integer(request, "limit", default: 10_000, range: 1...100_000)
        let rows = try await self.store.leaves(from: Int64(start), limit: limit)
        return APIResponse.json { w in
            w.key("leaves") { w in
                w.array(rows) { w, leaf in
                    w.object { w in
                        w.key("event_id") { $0.string(leaf.eventID) }
                        w.key("hash") { $0.string(leaf.hash.hexString) }
                        w.key("index") { $0.integer(leaf.index) }
                    }
                }
            }
        }
    }

    private func records(_ request: Request) async throws -> Response {
        let start = try APIResponse.integer(request, "start", default: 0, range: 0...Int.max)
        let limit = try APIResponse.integer(request, "limit", default: 5_000, range: 1...50_000)
        let rows = try await self.store.records(from: Int64(start), limit: limit)
        return APIResponse.json { w in
            w.key("records") { w in
                w.array(rows) { w, r in
                    w.object { w in
                        w.key("event_id") { $0.string(r.eventID) }
                        w.key("kind") { $0.string(r.kind) }
                        w.key("leaf_index") { $0.integer(r.leafIndex) }
                        // Exact bytes matter here (hashes): the line and stamp travel as JSON strings.
                        if let line = r.line { w.key("line") { $0.string(line) } }
                        w.key("line_hash") { $0.string(r.lineHash) }
                        w.key("prev_hash") { $0.string(r.prevHash) }
                        w.key("seq") { $0.integer(r.seq) }
                        w.key("stamp") { $0.string(r.stamp) }
                        w.key("stream_id") { $0.string(r.streamID) }
                    }
                }
            }
        }
    }
}
