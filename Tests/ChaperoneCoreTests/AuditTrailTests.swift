import Foundation
import Logging
import Testing

@testable import ChaperoneCore

/// Keeps what it is given, in order.
final class CollectingSink: AuditSink, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [AuditRecord] = []
    var records: [AuditRecord] { self.lock.withLock { self.stored } }
    func write(_ record: AuditRecord) throws { self.lock.withLock { self.stored.append(record) } }
    func close() throws {}
}

/// Foundation's encoder with sorted keys: the definition the hand-written writer must match.
func referenceEncoding(_ event: AuditEvent) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(event)
}

@Suite("Audit trail")
struct AuditTrailTests {
    func event(_ kind: AuditEvent.Kind, text: String = "hi") -> AuditEvent {
        AuditEvent(
            kind: kind, sessionID: "s1", exchangeID: "x1", source: .init(namespace: "agents", pod: "agent-0"),
            http: .init(method: "POST", upstream: "openai", path: "/v1/chat/completions"),
            content: .init(messages: [.init(role: "user", content: text)])
        )
    }

    @Test("events are numbered and chained by the hash of the previous canonical line")
    func chain() async throws {
        let sink = CollectingSink()
        let trail = AuditTrail(sinks: [sink], logger: Logger(label: "test"))
        for index in 0..<5 {
            await trail.record(self.event(index.isMultiple(of: 2) ? .llmRequest : .llmResponse, text: "message \(index)"))
        }
        let records = sink.records
        #expect(records.map(\.event.seq) == [1, 2, 3, 4, 5])
        #expect(records[0].event.prevHash == AuditTrail.genesisHash)
        for index in 1..<records.count {
            #expect(records[index].event.prevHash == CanonicalJSON.sha256Hex(records[index - 1].canonicalJSON))
        }
        #expect(Set(records.map(\.event.eventID)).count == 5)
        #expect(records.allSatisfy { $0.event.streamID == trail.streamID })
        // The stored line is the canonical encoding of the stored event.
        for record in records {
            #expect(try referenceEncoding(record.event) == record.canonicalJSON)
            let decoded = try JSONDecoder().decode(AuditEvent.self, from: record.canonicalJSON)
            #expect(decoded == record.event)
        }
    }

    @Test("records from many concurrent callers reach the sink in seq order")
    func concurrentOrder() async {
        let sink = CollectingSink()
        let trail = AuditTrail(sinks: [sink], logger: Logger(label: "test"))
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask { await trail.record(self.event(.llmRequest, text: "\(index)")) }
            }
        }
        let records = sink.records
        #expect(records.map(\.event.seq) == Array(1...500))
        for index in 1..<records.count {
            #expect(records[index].event.prevHash == CanonicalJSON.sha256Hex(records[index - 1].canonicalJSON))
        }
    }

    @Test("canonical JSON sorts keys, omits absent fields and uses the documented names")
    func canonicalForm() async throws {
        let sink = CollectingSink()
        let trail = AuditTrail(sinks: [sink], logger: Logger(label: "test"))
        var event = self.event(.llmResponse)
        event.genAI = .init(
            operation: .init(name: "chat"), provider: .init(name: "openai"), request: .init(model: "gpt-4o"),
            response: .init(model: "gpt-4o-2024", id: "c1", finishReasons: ["stop"]), usage: .init(inputTokens: 3, outputTokens: 4)
        )
        await trail.record(event)
        let text = String(decoding: try #require(sink.records.first).canonicalJSON, as: UTF8.self)
        #expect(text.hasPrefix(#"{"content":{"messages":[{"content":"hi","role":"user"}]"#))
        #expect(text.contains(#""gen_ai":{"operation":{"name":"chat"},"provider":{"name":"openai"},"request":{"model":"gpt-4o"},"response":{"finish_reasons":["stop"],"id":"c1","model":"gpt-4o-2024"},"usage":{"input_tokens":3,"output_tokens":4}}"#))
        #expect(text.contains(#""schema_version":"1.0""#))
        #expect(text.contains(#""path":"/v1/chat/completions""#))
        #expect(!text.contains("null"))
        #expect(!text.contains("\n"))
    }

    @Test("the hand-written canonical JSON matches Foundation's sorted-keys encoding byte for byte")
    func canonicalWriterMatchesReference() throws {
        let tricky = "quote \" backslash \\ slash / newline \n tab \t cr \r bell \u{07} nul \u{00} del \u{7f} é 漢字 🚀 \u{2028}"
        let call = AuditEvent.ToolCall(id: "call_1", name: "run", arguments: #"{"cmd":"ls -la /tmp"}"#)
        var full = AuditEvent(
            kind: .llmResponse, sessionID: "session \(tricky)", exchangeID: "x1",
            source: .init(cluster: "c", namespace: "ns", pod: "p", podUID: "uid", container: "agent", node: "n",
                          serviceAccount: "sa", initiator: tricky, selfReported: true),
            http: .init(method: "POST", upstream: "openai", path: "/v1/chat/completions", status: 200, bytesIn: 10, bytesOut: 20,
                        durationMicros: 1234, ttfbMicros: 56, requestSHA256: "aa", responseSHA256: "bb", responseContentType: "text/event-stream"),
            genAI: .init(operation: .init(name: "chat"), provider: .init(name: "openai"),
                         request: .init(model: "gpt-4o", stream: true, maxTokens: 100),
                         response: .init(model: "gpt-4o-2024", id: "c1", finishReasons: ["stop", "length"]),
                         usage: .init(inputTokens: 1, outputTokens: 2)),
            content: .init(messages: [.init(role: "user", content: tricky, name: "bob", toolCallID: "t1", toolCalls: [call]),
                                      .init(role: "tool", content: "")],
                           responseText: tricky, toolCalls: [call, .init(id: nil, name: "x", arguments: "")], inputCount: 2, truncated: true),
            findings: [.init(detector: "aws", direction: "request", fingerprint: "0123abcd")],
            decision: .init(action: "allow", rules: ["r1", "r2"], approvalID: "a1", approvalOutcome: "approved"),
            outcome: .completed, error: .init(type: "t", message: tricky)
        )
        full.eventID = "e1"
        full.streamID = "s1"
        full.seq = 42
        full.prevHash = AuditTrail.genesisHash
        full.time = "2026-01-01T00:00:00.000000Z"
        #expect(String(decoding: full.canonicalJSON(), as: UTF8.self) == String(decoding: try referenceEncoding(full), as: UTF8.self))
        var minimal = AuditEvent(kind: .httpEgress, sessionID: "s", source: .init())
        minimal.genAI = .init(operation: .init(name: "embeddings"), provider: .init(name: "openai"), request: .init(model: nil))
        #expect(String(decoding: minimal.canonicalJSON(), as: UTF8.self) == String(decoding: try referenceEncoding(minimal), as: UTF8.self))
    }

    @Test("UUIDv7: version and variant bits, time order")
    func uuid() {
        let earlier = UUIDv7(unixMilliseconds: 1_700_000_000_000)
        let later = UUIDv7(unixMilliseconds: 1_700_000_000_001)
        let text = earlier.description
        #expect(text.count == 36)
        #expect(Array(text)[14] == "7")
        #expect("89ab".contains(Array(text)[19]))
        #expect(earlier.description < later.description)
        #expect(text.hasPrefix("018bcfe5-6800-7"))
    }

    @Test("RFC 3339 timestamps with microseconds")
    func timestamps() {
        #expect(WallClock.rfc3339(nanoseconds: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(WallClock.rfc3339(nanoseconds: 1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456Z")
    }

    @Test("the JSON-lines sink appends whole lines to a 0600 file")
    func fileSink() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chaperone-sink-\(UUID())")
        let path = directory.appendingPathComponent("nested/audit.jsonl").path
        let sink = try JSONLinesSink(path: path)
        let trail = AuditTrail(sinks: [sink], logger: Logger(label: "test"))
        await trail.record(self.event(.llmRequest))
        await trail.record(self.event(.llmResponse))
        await trail.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(CanonicalJSON.sha256Hex(Array(lines[0].utf8)) == (try JSONDecoder().decode(AuditEvent.self, from: Data(lines[1].utf8))).prevHash)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try? FileManager.default.removeItem(at: directory)
    }
}
