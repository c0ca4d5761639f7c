import ChaperoneCore
import Foundation
import Hummingbird
import NIOCore

/// A query parameter the API cannot use: 400 `bad_query` with this message.
struct BadQuery: Error {
    var message: String
}

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

    /// An integer query parameter within `range`, or `value` when absent.
    static func integer(_ request: Request, _ name: String, default value: Int, range: ClosedRange<Int>) throws(BadQuery) -> Int {
        guard let text = request.uri.queryParameters[Substring(name)] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw BadQuery(message: "\(name) must be a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    static func bearerToken(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
