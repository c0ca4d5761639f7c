import ChaperoneCore
import NIOCore
import NIOHTTP1
import Prometheus

/// The admin listener: `/healthz` (the process answers), `/readyz` (ready for traffic),
/// `/metrics` (Prometheus text format).
struct AdminHandler: HTTPExchangeHandler {
    let readiness: Readiness
    let registry: PrometheusCollectorRegistry

    func handle(head: HTTPRequestHead, parts: InboundParts, connection: ConnectionContext) async -> Bool {
        let body = RequestBody(parts: parts, limit: 64 * 1024)
        guard await body.drain() else { return false }
        let path = head.uri.prefix(while: { $0 != "?" })
        let status: HTTPResponseStatus
        var payload: ByteBuffer
        var contentType = "text/plain; charset=utf-8"
        switch (head.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            status = .ok
            payload = ByteBuffer(string: "ok\n")
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            let ready = self.readiness.isReady
            status = ready ? .ok : .serviceUnavailable
            payload = ByteBuffer(string: ready ? "ready\n" : "not ready: \(self.readiness.reasons.joined(separator: "; "))\n")
        case (.GET, "/metrics"):
            status = .ok
            contentType = "text/plain; version=0.0.4; charset=utf-8"
            payload = ByteBuffer(bytes: self.registry.emitToBuffer())
        default:
            status = .notFound
            payload = ByteBuffer(string: "not found: try /healthz, /readyz or /metrics\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(payload.readableBytes)")
        do {
            try await connection.outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
            if head.method != .HEAD { try await connection.outbound.write(.body(.byteBuffer(payload))) }
            try await connection.outbound.write(.end(nil))
        } catch {
            return false
        }
        return head.isKeepAlive
    }
}
