import ChaperoneCore
import Foundation
import Hummingbird
import NIOCore

/// JSON answers and errors of the collector's API.
enum APIResponse {
    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func json(status: HTTPResponse.Status = .ok, _ body: (inout CanonicalJSONWriter) -> Void) -> Response {
        var w = CanonicalJSONWriter()
        w.object(body)
        return Self.json(w.bytes, status: status)
    }

    /// `{"error": {"code": ..., "message": ...}}`
    static func error(_ status: HTTPResponse.Status, code: String, _ message: String, headers: HTTPFields = [:]) -> Response {
        var response = Self.json(status: status) { w in
            w.key("error") { w in
                w.object { w in
                    w.key("code") { $0.string(code) }
                    w.key("message") { $0.string(message) }
                }
            }
        }
        for field in headers { response.headers.append(field) }
        return response
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
