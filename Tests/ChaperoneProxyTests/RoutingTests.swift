import ChaperoneCore
import ChaperoneLLM
import NIOCore
import Foundation
import NIOHTTP1
import Testing

@testable import ChaperoneProxy

@Suite("Routing and headers")
struct RoutingTests {
    let known = ["openai", "anthropic", "azure"]

    @Test("/<upstream>/<rest> splits into name, path and query")
    func parse() throws {
        #expect(try UpstreamTarget.parse(uri: "/openai/v1/chat/completions", knownUpstreams: self.known)
            == .init(name: "openai", path: "/v1/chat/completions", query: ""))
        #expect(try UpstreamTarget.parse(uri: "/azure/openai/deployments/gpt/chat/completions?api-version=2024-10-21", knownUpstreams: self.known)
            == .init(name: "azure", path: "/openai/deployments/gpt/chat/completions", query: "?api-version=2024-10-21"))
        #expect(try UpstreamTarget.parse(uri: "/anthropic", knownUpstreams: self.known) == .init(name: "anthropic", path: "/", query: ""))
        #expect(try UpstreamTarget.parse(uri: "/openai/v1/models#frag", knownUpstreams: self.known) == .init(name: "openai", path: "/v1/models", query: ""))
    }

    @Test("bad paths are refused with a reason", arguments: [
        ("/nope/v1/x", RouteError.unknownUpstream("nope")),
        ("http://api.openai.com/v1/x", RouteError.notBaseURLPath),
        ("*", RouteError.notBaseURLPath),
        ("/", RouteError.notBaseURLPath),
        ("/openai/../admin", RouteError.dotSegment),
        ("/openai/v1/%2E%2e/x", RouteError.dotSegment),
        ("/openai/./v1", RouteError.dotSegment),
    ])
    func refused(uri: String, expected: RouteError) {
        #expect(throws: expected) { try UpstreamTarget.parse(uri: uri, knownUpstreams: self.known) }
    }

    @Test("the agent's credentials, hop-by-hop and x-chaperone headers never go upstream")
    func requestHeaders() {
        let agent = HTTPHeaders([
            ("Host", "127.0.0.1:15080"), ("Authorization", "Bearer sk-agent"), ("X-Api-Key", "agent"), ("api-key", "agent"),
            ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"),
            ("Content-Length", "12"), ("Accept-Encoding", "gzip, br"), ("X-Chaperone-Session", "s1"),
            ("Content-Type", "application/json"), ("OpenAI-Beta", "assistants=v2"), ("anthropic-version", "2023-06-01"),
            ("User-Agent", "OpenAI/Python 2.0"), ("X-Stainless-Retry-Count", "0"),
        ])
        let upstream = HeaderPolicy.upstreamRequestHeaders(from: agent)
        let names = Set(upstream.map { $0.name.lowercased() })
        #expect(names == ["content-type", "openai-beta", "anthropic-version", "user-agent", "x-stainless-retry-count", "accept-encoding"])
        #expect(upstream.first(name: "accept-encoding") == "identity")
    }

    @Test("hop-by-hop response headers are dropped, the rest kept in order")
    func responseHeaders() {
        let upstream = HTTPHeaders([
            ("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked"), ("Connection", "close"),
            ("x-request-id", "req_1"), ("openai-processing-ms", "12"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ])
        let agent = HeaderPolicy.agentResponseHeaders(from: upstream)
        #expect(agent.map(\.name) == ["Content-Type", "x-request-id", "openai-processing-ms", "Set-Cookie", "Set-Cookie"])
    }

    @Test("proxy errors are valid JSON in each provider's shape")
    func errorShapes() throws {
        let error = ProxyError.unknownUpstream("x\"y", known: ["openai"])
        let openAI = try #require(try JSONSerialization.jsonObject(with: Data(error.body(for: .openai).utf8)) as? [String: Any])
        let openAIError = try #require(openAI["error"] as? [String: Any])
        #expect(openAIError["code"] as? String == "unknown_upstream")
        #expect((openAIError["message"] as? String)?.contains("x\"y") == true)
        let anthropic = try #require(try JSONSerialization.jsonObject(with: Data(error.body(for: .anthropic).utf8)) as? [String: Any])
        #expect(anthropic["type"] as? String == "error")
        #expect((anthropic["error"] as? [String: Any])?["type"] as? String == "not_found_error")
        #expect(JSONString.quote("a\u{1}\n\"\\") == #""a\u0001\n\"\\""#)
    }
}

@Suite("Credential store")
struct CredentialStoreTests {
    func temporaryFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chaperone-key-\(UUID())").path
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    @Test("reads the key, trims the newline and adds the provider's prefix")
    func reads() throws {
        let path = try self.temporaryFile("sk-real\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let openAI = CredentialStore(credential: .init(file: path), provider: .openai)
        #expect(openAI.headerName == "authorization")
        #expect(try openAI.headerValue() == "Bearer sk-real")
        let anthropic = CredentialStore(credential: .init(file: path), provider: .anthropic)
        #expect(anthropic.headerName == "x-api-key")
        #expect(try anthropic.headerValue() == "sk-real")
    }

    @Test("re-reads the key when the file is replaced, as Kubernetes does with a symlink swap")
    func rotation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chaperone-secret-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = directory.appendingPathComponent("..data-1")
        let second = directory.appendingPathComponent("..data-2")
        try FileManager.default.createDirectory(at: first, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: second, withIntermediateDirectories: true)
        try "key-one".write(to: first.appendingPathComponent("api-key"), atomically: false, encoding: .utf8)
        try "key-two".write(to: second.appendingPathComponent("api-key"), atomically: false, encoding: .utf8)
        let data = directory.appendingPathComponent("..data")
        try FileManager.default.createSymbolicLink(atPath: data.path, withDestinationPath: "..data-1")
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("api-key").path, withDestinationPath: "..data/api-key")
        let store = CredentialStore(credential: .init(file: directory.appendingPathComponent("api-key").path), provider: .anthropic)
        #expect(try store.headerValue() == "key-one")
        #expect(try store.headerValue() == "key-one")
        // Atomic swap of the ..data link, the way kubelet updates a Secret volume.
        let staging = directory.appendingPathComponent("..data_tmp")
        try FileManager.default.createSymbolicLink(atPath: staging.path, withDestinationPath: "..data-2")
        #expect(rename(staging.path, data.path) == 0)
        #expect(try store.headerValue() == "key-two")
    }

    @Test("a missing or empty key file is an error that names the file")
    func failures() throws {
        let missing = CredentialStore(credential: .init(file: "/nonexistent/key"), provider: .openai)
        #expect(throws: CredentialStore.Failure.unreadable(path: "/nonexistent/key", reason: "No such file or directory")) {
            try missing.headerValue()
        }
        let path = try self.temporaryFile("  \n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: CredentialStore.Failure.empty(path: path)) {
            try CredentialStore(credential: .init(file: path), provider: .openai).headerValue()
        }
    }
}

@Suite("Exchange records")
struct ExchangeRecordTests {
    @Test("content is cut to the configured length and marked truncated")
    func limiter() {
        var limiter = ContentLimiter(maxCharacters: 5)
        #expect(limiter.text("abc") == "abc")
        #expect(!limiter.truncated)
        #expect(limiter.text("abcdefgh") == "abcde")
        #expect(limiter.truncated)
    }

    @Test("response observer folds an SSE stream and hashes every byte")
    func observer() {
        var observer = ResponseObserver(operation: .openAIChatCompletions, contentType: "text/event-stream; charset=utf-8", captureLimit: 1024)
        let stream = "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
        for byte in stream.utf8 {
            observer.observe(.init(bytes: [byte]))
        }
        #expect(observer.byteCount == stream.utf8.count)
        #expect(observer.sha256 == CanonicalJSON.sha256Hex(Array(stream.utf8)))
        #expect(observer.summary?.text == "ok")
        #expect(observer.summary?.finishReasons == ["stop"])
    }

    @Test("a non-streamed body larger than the capture limit is forwarded but not read")
    func overflow() {
        var observer = ResponseObserver(operation: .openAIChatCompletions, contentType: "application/json", captureLimit: 8)
        observer.observe(.init(string: "{\"id\":\"0123456789\"}"))
        #expect(observer.captureOverflowed)
        #expect(observer.summary == ResponseSummary())
    }
}
