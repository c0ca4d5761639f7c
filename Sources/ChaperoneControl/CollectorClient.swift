import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// Where the collector is and how to prove we may read from it; shared by every subcommand
/// that talks to the collector.
struct CollectorOptions: ParsableArguments {
    @Option(name: .long, help: "Collector API URL (env CHAPERONE_COLLECTOR).")
    var collector: String = ProcessInfo.processInfo.environment["CHAPERONE_COLLECTOR"] ?? "http://127.0.0.1:8080"

    @Option(name: .long, help: "File holding a reader token, or for approvals your OIDC ID token (env CHAPERONE_TOKEN_FILE; or set CHAPERONE_TOKEN).")
    var tokenFile: String?

    @Option(name: .long, help: "CA certificate (PEM) to trust for an https collector.")
    var caFile: String?

    func token() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let file = self.tokenFile ?? environment["CHAPERONE_TOKEN_FILE"] {
            do {
                return try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw ValidationError("cannot read --token-file \(file): \(error.localizedDescription)")
            }
        }
        if let token = environment["CHAPERONE_TOKEN"], !token.isEmpty { return token }
        throw ValidationError("no reader token: pass --token-file, or set CHAPERONE_TOKEN_FILE or CHAPERONE_TOKEN")
    }
}

struct CollectorError: Error, CustomStringConvertible {
    var description: String
}

/// A small HTTP client for the collector's read API.
final class CollectorClient: Sendable {
    private let base: String
    private let token: String
    private let http: HTTPClient

    init(_ options: CollectorOptions) throws {
        self.base = options.collector.hasSuffix("/") ? String(options.collector.dropLast()) : options.collector
        self.token = try options.token()
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = options.caFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    func shutdown() async {
        try? await self.http.shutdown()
    }

    /// Runs `body` with a client and always shuts it down.
    static func with<T>(_ options: CollectorOptions, _ body: (CollectorClient) async throws -> T) async throws -> T {
        let client = try CollectorClient(options)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    func get<T: Decodable>(_ path: String, _ parameters: [(String, String?)] = [], as type: T.Type = T.self, timeout: Int64 = 60) async throws -> T {
        let body = try await self.raw(path, parameters, timeout: timeout)
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            throw CollectorError(description: "\(path): unexpected answer: \(error)")
        }
    }

    /// POSTs a JSON body and decodes the answer.
    func post<T: Decodable>(_ path: String, json body: [String: String], as type: T.Type = T.self) async throws -> T {
        let data = try await self.raw(path, body: Array(try JSONSerialization.data(withJSONObject: body)))
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw CollectorError(description: "\(path): unexpected answer: \(error)")
        }
    }

    /// The answer's JSON as received (a GET, or a POST of `body`).
    func raw(_ path: String, _ parameters: [(String, String?)] = [], body: [UInt8]? = nil, timeout: Int64 = 60) async throws -> Data {
        var components = URLComponents(string: self.base + path)!
        let items = parameters.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        if !items.isEmpty { components.queryItems = items }
        var request = HTTPClientRequest(url: components.string!)
        request.headers.add(name: "Authorization", value: "Bearer \(self.token)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await self.http.execute(request, timeout: .seconds(timeout))
        } catch {
            throw CollectorError(description: "cannot reach the collector at \(self.base): \(error)")
        }
        let body = try await response.body.collect(upTo: 512 << 20)
        guard response.status == .ok else {
            struct APIError: Decodable { struct Inner: Decodable { var message: String }; var error: Inner }
            let message = (try? JSONDecoder().decode(APIError.self, from: body))?.error.message ?? String(buffer: body)
            throw CollectorError(description: "\(path): HTTP \(response.status.code): \(message)")
        }
        return Data(buffer: body)
    }
}

/// `--since 2h`, `--since 2026-11-22T10:00:00Z`: an RFC 3339 time or a duration before now.
enum TimeArgument {
    static func parse(_ text: String?, option: String) throws -> String? {
        guard let text, !text.isEmpty else { return nil }
        if text.contains("T") { return text }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value >= 0 {
                let micros = Int64((Date().timeIntervalSince1970 - value * scale) * 1_000_000)
                return String(micros)
            }
        }
        throw ValidationError("\(option) '\(text)' is neither an RFC 3339 time nor a duration such as 15m, 2h, 7d")
    }
}
