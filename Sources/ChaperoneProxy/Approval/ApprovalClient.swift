import AsyncHTTPClient
import ChaperoneCore
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The sidecar's side of the collector's approvals API: open an approval, long-poll it, cancel
/// it; with the pod's projected token, over the collector's TLS.
struct ApprovalClient: Sendable {
    let client: HTTPClient
    let settings: ProxyConfiguration.Collector

    enum Failure: Error, CustomStringConvertible {
        /// No answer (connection refused, reset, timed out) or a 5xx: worth trying again.
        case unreachable(String)
        /// The collector answered, and no: a configuration problem or a bad request.
        case refused(status: Int, code: String, message: String)

        var description: String {
            switch self {
            case .unreachable(let why): "the collector could not be reached: \(why)"
            case .refused(let status, let code, let message): "the collector refused (HTTP \(status) \(code)): \(message)"
            }
        }

        var isTransient: Bool {
            if case .unreachable = self { return true }
            return false
        }
    }

    private struct Answer: Decodable {
        var approval: Approval
    }

    private struct APIError: Decodable {
        struct Inner: Decodable {
            var code: String
            var message: String
        }

        var error: Inner
    }

    func open(_ request: ApprovalRequest) async throws(Failure) -> Approval {
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw .refused(status: 0, code: "encoding", message: "\(error)")
        }
        return try await self.call(.POST, "/v1/approvals", body: Array(body), timeout: .seconds(15))
    }

    /// The approval once decided, or as it stands after `seconds`.
    func wait(_ id: String, seconds: Int) async throws(Failure) -> Approval {
        try await self.call(.GET, "/v1/approvals/\(id)?wait=\(seconds)", timeout: .seconds(Int64(seconds) + 10))
    }

    func cancel(_ id: String, reason: String) async throws(Failure) -> Approval {
        let body = (try? JSONEncoder().encode(["reason": reason])).map { Array($0) } ?? []
        return try await self.call(.POST, "/v1/approvals/\(id)/cancel", body: body, timeout: .seconds(5))
    }

    private func call(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, timeout: TimeAmount) async throws(Failure) -> Approval {
        let token: String
        do {
            token = try self.settings.bearerToken()
        } catch {
            throw .unreachable("the pod's token \(self.settings.tokenFile) cannot be read: \(error)")
        }
        var request = HTTPClientRequest(url: self.settings.url + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        request.headers.add(name: "accept", value: "application/json")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let status: Int
        let answer: ByteBuffer
        do {
            let response = try await self.client.execute(request, timeout: timeout)
            status = Int(response.status.code)
            answer = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw .unreachable("\(error)")
        }
        let data = Data(answer.readableBytesView)
        guard (200..<300).contains(status) else {
            let detail = try? JSONDecoder().decode(APIError.self, from: data)
            if status >= 500 || status == 429 { throw .unreachable("HTTP \(status): \(detail?.error.message ?? String(buffer: answer).prefix(200).description)") }
            throw .refused(status: status, code: detail?.error.code ?? "http_\(status)", message: detail?.error.message ?? String(buffer: answer).prefix(300).description)
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: data).approval
        } catch {
            throw .unreachable("unexpected answer from the collector: \(error)")
        }
    }
}
