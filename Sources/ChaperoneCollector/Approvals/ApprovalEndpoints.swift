import ChaperoneCore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The approvals API (docs/approvals.md). Three kinds of callers, told apart by their bearer
/// token: sidecars (the pod's projected service-account token) open, wait on and cancel their
/// own approvals; approvers (an OIDC ID token from the organisation's identity provider, in an
/// approver group) list, read and decide them; reader tokens may list and read.
struct ApprovalEndpoints: Sendable {
    let service: ApprovalService
    let pods: any TokenAuthenticator
    let readers: ReaderTokenFile
    let metrics: CollectorMetrics
    let logger: Logger

    static let maxBodyBytes = 64 << 10

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/approvals") { request, _ in await self.guarded(request) { try await self.open(request) } }
        router.get("/v1/approvals") { request, _ in await self.guarded(request) { try await self.list(request) } }
        router.get("/v1/approvals/:id") { request, context in
            await self.guarded(request) { try await self.show(request, id: context.parameters.get("id") ?? "") }
        }
        router.post("/v1/approvals/:id/approve") { request, context in
            await self.guarded(request) { try await self.decide(request, id: context.parameters.get("id") ?? "", .approve) }
        }
        router.post("/v1/approvals/:id/deny") { request, context in
            await self.guarded(request) { try await self.decide(request, id: context.parameters.get("id") ?? "", .deny) }
        }
        router.post("/v1/approvals/:id/cancel") { request, context in
            await self.guarded(request) { try await self.cancel(request, id: context.parameters.get("id") ?? "") }
        }
    }

    // MARK: Callers

    private enum Caller {
        case pod(PodIdentity)
        case approver(Approver)
        case reader
    }

    private func caller(_ request: Request) async throws -> Caller {
        guard let token = APIResponse.bearerToken(request) else { throw Self.unauthenticated(.missing) }
        if self.readers.tokens.accepts(token) { return .reader }
        if let approvers = self.service.approvers, approvers.claimsIssuer(token) {
            do {
                return .approver(try await approvers.authenticate(bearer: token))
            } catch {
                self.metrics.rejectedToken(error)
                throw Self.unauthenticated(error, approver: true)
            }
        }
        do {
            return .pod(try await self.pods.authenticate(bearer: token))
        } catch {
            self.metrics.rejectedToken(error)
            throw Self.unauthenticated(error)
        }
    }

    private static func unauthenticated(_ rejection: TokenRejection, approver: Bool = false) -> ApprovalFailure {
        if rejection == .unavailable { return ApprovalFailure(status: 503, code: "authentication_unavailable", message: rejection.description) }
        let hint = approver
            ? "send an ID token from the approvers' identity provider (chaperonectl --token-file)"
            : "send an approver's OIDC ID token, a reader token, or the pod's projected service-account token"
        return ApprovalFailure(status: 401, code: "unauthenticated", message: "\(rejection.description); \(hint)")
    }

    private func approver(_ caller: Caller) throws -> Approver {
        guard case .approver(let approver) = caller else {
            throw ApprovalFailure(status: 403, code: "approvers_only", message: "only approvers decide approvals: sign in with the identity provider and send its ID token")
        }
        return approver
    }

    /// Approvers in an approver group and reader tokens may see approvals (masked prompts).
    private func mayRead(_ caller: Caller) throws {
        switch caller {
        case .reader: return
        case .approver(let approver) where approver.mayApprove: return
        case .approver(let approver):
            throw ApprovalFailure(status: 403, code: "not_an_approver", message: "\(approver.name) is in none of the approver groups (approvals.oidc.approver_groups)")
        case .pod:
            throw ApprovalFailure(status: 403, code: "approvers_only", message: "pods may only read approvals they opened")
        }
    }

    private func guarded(_ request: Request, _ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let query as BadQuery {
            return APIResponse.error(.badRequest, code: "bad_query", query.message)
        } catch let failure as ApprovalFailure {
            return APIResponse.error(
                HTTPResponse.Status(code: failure.status), code: failure.code, failure.message,
                headers: failure.status == 401 ? [.wwwAuthenticate: "Bearer"] : failure.status == 503 ? [.retryAfter: "2"] : [:])
        } catch {
            self.logger.error("approvals.failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return APIResponse.error(.serviceUnavailable, code: "storage_unavailable", "the approval could not be stored or read: \(error)", headers: [.retryAfter: "1"])
        }
    }

    // MARK: Routes

    private func open(_ request: Request) async throws -> Response {
        guard case .pod(let pod) = try await self.caller(request) else {
            throw ApprovalFailure(status: 403, code: "sidecars_only", message: "approvals are opened by sidecars with their pod's service-account token")
        }
        let body: ApprovalRequest = try await Self.decode(request)
        let stored = try await self.service.open(body, by: pod)
        return Self.answer(stored, status: .created)
    }

    private func show(_ request: Request, id: String) async throws -> Response {
        let caller = try await self.caller(request)
        let wait = try APIResponse.integer(request, "wait", default: 0, range: 0...ApprovalService.maxWaitSeconds)
        var pod: PodIdentity?
        if case .pod(let identity) = caller { pod = identity } else { try self.mayRead(caller) }
        return Self.answer(try await self.service.get(id, wait: wait, openedBy: pod))
    }

    private func list(_ request: Request) async throws -> Response {
        try self.mayRead(try await self.caller(request))
        let text = request.uri.queryParameters["status"].map(String.init) ?? "pending"
        guard let filter = ApprovalStore.Filter(rawValue: text) else {
            throw BadQuery(message: "status must be pending, decided or all")
        }
        let limit = try APIResponse.integer(request, "limit", default: 100, range: 1...1_000)
        let wait = try APIResponse.integer(request, "wait", default: 0, range: 0...ApprovalService.maxWaitSeconds)
        var after: Int64?
        if let text = request.uri.queryParameters["after"] {
            guard let value = Int64(text) else { throw BadQuery(message: "after must be a cursor from a previous answer") }
            after = value
        }
        let (rows, cursor) = try await self.service.list(filter, changedAfter: after, wait: wait, limit: limit)
        var w = CanonicalJSONWriter()
        w.object { w in
            w.key("approvals") { w in w.array(rows) { w, row in w.raw(row.approval.json) } }
            w.key("cursor") { $0.string(String(cursor)) }
        }
        return APIResponse.json(w.bytes)
    }

    private struct DecisionBody: Decodable {
        var reason: String?
    }

    private func decide(_ request: Request, id: String, _ decision: Approval.Vote.Decision) async throws -> Response {
        let approver = try self.approver(try await self.caller(request))
        let body: DecisionBody = try await Self.decode(request, emptyAs: DecisionBody(reason: nil))
        return Self.answer(try await self.service.vote(id, by: approver, decision, reason: body.reason))
    }

    private func cancel(_ request: Request, id: String) async throws -> Response {
        guard case .pod(let pod) = try await self.caller(request) else {
            throw ApprovalFailure(status: 403, code: "sidecars_only", message: "only the sidecar that opened an approval cancels it; approvers deny instead")
        }
        let body: DecisionBody = try await Self.decode(request, emptyAs: DecisionBody(reason: nil))
        return Self.answer(try await self.service.cancel(id, by: pod, reason: body.reason ?? "the requester gave up"))
    }

    // MARK: Helpers

    private static func answer(_ stored: ApprovalStore.Stored, status: HTTPResponse.Status = .ok) -> Response {
        var w = CanonicalJSONWriter()
        w.object { w in
            w.key("approval") { w in w.raw(stored.approval.json) }
            w.key("cursor") { $0.string(String(stored.updatedMicros)) }
        }
        return APIResponse.json(w.bytes, status: status)
    }

    private static func decode<T: Decodable>(_ request: Request, emptyAs empty: T? = nil) async throws -> T {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            throw ApprovalFailure(status: 413, code: "too_large", message: "the body is larger than \(Self.maxBodyBytes) bytes")
        }
        if body.readableBytes == 0, let empty { return empty }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw ApprovalFailure(status: 400, code: "bad_request", message: "the body is not the expected JSON: \(error)")
        }
    }
}
