@testable import ChaperoneCore
import Foundation
import Testing

/// `AuditEvent.decode(jsonLine:)` must give exactly `JSONDecoder`'s answer: the same event for
/// every line `JSONDecoder` takes, an error for every line it refuses. The hand-written reader
/// must take the usual forms itself (that is its point) and decline the rest.
@Suite struct AuditEventReadingTests {
    /// What `JSONDecoder` says about `text`.
    private func reference(_ text: [UInt8]) -> AuditEvent? {
        try? JSONDecoder().decode(AuditEvent.self, from: Data(text))
    }

    private func fastPath(_ text: [UInt8]) -> AuditEvent? { AuditEvent.read(jsonLine: text) }

    private func sameAnswer(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(text.utf8)
        let expected = self.reference(bytes)
        let got = try? AuditEvent.decode(jsonLine: bytes)
        #expect(got == expected, "\(text)", sourceLocation: sourceLocation)
        if expected == nil {
            #expect(self.fastPath(bytes) == nil, "the reader took what JSONDecoder refuses: \(text)", sourceLocation: sourceLocation)
        }
    }

    static func sample(_ variant: Int) -> AuditEvent {
        // A small linear congruential sequence: the same variant number always builds the same event.
        var state = UInt64(variant) &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        func maybe<T>(_ value: @autoclosure () -> T) -> T? { next() % 2 == 0 ? value() : nil }
        let texts = ["plain", "with \"quotes\" and \\ slashes /", "line\nbreak\ttab\r", "ünïcödé — 日本語 🙂", "\u{0001}\u{001F}\u{007F}", "", "a/b</script>"]
        func text() -> String { texts[Int(next() % UInt64(texts.count))] }
        let calls = [AuditEvent.ToolCall(id: maybe("call_1"), name: "run", arguments: "{\"cmd\":\"ls -la\"}")]
        var event = AuditEvent(
            kind: [.llmRequest, .llmResponse, .integrityGap, .httpEgress][variant % 4], sessionID: "session-\(variant)", exchangeID: maybe("ex-\(variant)"),
            source: .init(
                cluster: maybe("prod"), namespace: maybe("team-a"), pod: maybe("agent-0"), podUID: maybe("uid"), container: maybe("agent"),
                node: maybe("node-1"), serviceAccount: maybe("agent"), initiator: maybe(text()), selfReported: next() % 2 == 0),
            http: maybe(.init(
                method: "POST", upstream: maybe("openai"), path: "/v1/chat/completions", status: maybe(200), bytesIn: 1234, bytesOut: 99,
                durationMicros: maybe(12_345), ttfbMicros: maybe(-1), requestSHA256: maybe("ab"), responseSHA256: maybe("cd"),
                responseContentType: maybe("text/event-stream"))),
            genAI: maybe(.init(
                operation: .init(name: "chat"), provider: .init(name: "openai"),
                request: .init(model: maybe("gpt-4o"), stream: maybe(true), maxTokens: maybe(Int.max)),
                response: maybe(.init(model: maybe("gpt-4o-2024"), id: maybe("chatcmpl-1"), finishReasons: ["stop", "length"])),
                usage: maybe(.init(inputTokens: maybe(10), outputTokens: maybe(0))))),
            content: maybe(.init(
                messages: [.init(role: "system", content: text()), .init(role: "assistant", content: text(), name: maybe("bot"), toolCallID: maybe("t1"), toolCalls: maybe(calls))],
                responseText: maybe(text()), toolCalls: next() % 2 == 0 ? calls : [], inputCount: maybe(3), truncated: next() % 2 == 0)),
            findings: next() % 2 == 0 ? [] : [.init(detector: "aws_access_key", direction: "request", fingerprint: "hmac-sha256:00", confidence: maybe("high"))],
            decision: maybe(.init(action: "allow", rules: ["r1"], approvalID: maybe("ap-1"), approvalOutcome: maybe("approved"), severity: maybe("high"), message: maybe(text()))),
            outcome: maybe(.completed),
            error: maybe(.init(type: "timeout", message: text())))
        event.eventID = "0190-\(variant)"
        event.streamID = "stream-\(variant % 3)"
        event.seq = variant % 5 == 0 ? UInt64.max : UInt64(variant + 1)
        event.prevHash = String(repeating: "0", count: 64)
        event.time = "2026-11-22T10:00:00.123456Z"
        if variant % 4 == 2 {
            var integrity = AuditEvent.Integrity(streamID: "s", eventID: maybe("e"), message: text())
            integrity.expectedSeq = maybe(3)
            integrity.receivedSeq = maybe(9)
            integrity.missingFrom = maybe(4)
            integrity.missingTo = maybe(8)
            integrity.expectedPrevHash = maybe("aa")
            integrity.receivedPrevHash = maybe("bb")
            integrity.fields = maybe(["namespace", "pod"])
            integrity.claimed = maybe(.init(namespace: "x"))
            integrity.verified = maybe(.init(namespace: "y", selfReported: false))
            event.integrity = integrity
        }
        return event
    }

    @Test func takesEveryShapeOfEventAsJSONDecoderDoes() throws {
        let encoders: [JSONEncoder] = [JSONEncoder(), JSONEncoder(), JSONEncoder()]
        encoders[1].outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoders[2].outputFormatting = [.prettyPrinted]
        for variant in 0..<200 {
            let event = Self.sample(variant)
            var texts = [event.canonicalJSON()]
            for encoder in encoders { texts.append(Array(try encoder.encode(event))) }
            for text in texts {
                #expect(self.fastPath(text) == event, "the reader declined or misread variant \(variant): \(String(decoding: text, as: UTF8.self))")
                #expect(self.reference(text) == event)
                #expect(try AuditEvent.decode(jsonLine: text) == event)
            }
        }
    }

    private static let minimal = #"{"schema_version":"1.0","event_id":"e1","stream_id":"s1","seq":1,"prev_hash":"00","time":"t","kind":"llm.request","session_id":"x","source":{"self_reported":true},"findings":[]}"#

    @Test func refusesAndAcceptsExactlyWhatJSONDecoderDoes() {
        let m = Self.minimal
        let variants: [String] = [
            m,
            " \t\r\n" + m + " \n",
            m + "x",
            m + "{}",
            String(m.dropLast()),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":-1"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":1.0"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":1e2"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":01"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":"1""#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":18446744073709551615"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":18446744073709551616"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":null"#),
            m.replacingOccurrences(of: #""seq":1,"#, with: ""),
            m.replacingOccurrences(of: #""seq":1"#, with: #""seq":1,"seq":2"#),
            m.replacingOccurrences(of: #""seq":1"#, with: #""s\u0065q":1"#),
            m.replacingOccurrences(of: #""findings":[]"#, with: #""findings":null"#),
            m.replacingOccurrences(of: #""findings":[]"#, with: #""findings":[{"detector":"d","direction":"request"}]"#),
            m.replacingOccurrences(of: #""self_reported":true"#, with: #""self_reported":1"#),
            m.replacingOccurrences(of: #""self_reported":true"#, with: #""self_reported":true,"namespace":null"#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","outcome":"completed""#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","outcome":"exploded""#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","outcome":null,"http":null"#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","extra":{"a":[1,-2.5e-3,true,false,null,"\ud83d\ude00"]}"#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","extra":[1,]"#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","extra":.5"#),
            m.replacingOccurrences(of: #""kind":"llm.request""#, with: #""kind":"llm.request","extra":tru"#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"a\u00e9\n\"b\/""#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"\ud83d\ude00""#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"\ud83d""#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"\ude00x""#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"\x""#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: "\"session_id\":\"tab\there\""),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"x","gen_ai":{"operation":{"name":"chat"},"provider":{"name":"openai"},"request":{}}"#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"x","gen_ai":{"operation":{},"provider":{"name":"openai"},"request":{}}"#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"x","content":{"messages":[],"tool_calls":[],"truncated":false}"#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"x","content":{"messages":[],"tool_calls":[]}"#),
            m.replacingOccurrences(of: #""session_id":"x""#, with: #""session_id":"x","http":{"method":"GET","path":"/","bytes_in":0,"bytes_out":0,"status":99999999999999999999}"#),
            "[]", "null", "", "{}",
        ]
        for variant in variants { self.sameAnswer(variant) }
        // Bytes that are not UTF-8.
        var invalid = Array(m.utf8)
        invalid[invalid.firstIndex(of: UInt8(ascii: "x"))!] = 0xff
        #expect((try? AuditEvent.decode(jsonLine: invalid)) == nil)
        #expect(self.fastPath(invalid) == nil)
    }
}
