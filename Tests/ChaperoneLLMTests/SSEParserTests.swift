import Testing

@testable import ChaperoneLLM

@Suite("SSE parser")
struct SSEParserTests {
    static let stream = """
        : a comment line\r
        event: message_start\r
        data: {"type":"message_start"}\r
        \r
        data: first line\n\
        data: second line\n\
        id: 7\n\
        \n\
        event: ping\rdata:no-space\r\r\
        data: {"text":"héllo wörld ✓"}\n\n\
        retry: 100\n\
        data\n\n\
        data: [DONE]\n\n
        """

    static let expected: [SSEEvent] = [
        .init(type: "message_start", data: #"{"type":"message_start"}"#),
        .init(type: "message", data: "first line\nsecond line", id: "7"),
        .init(type: "ping", data: "no-space", id: "7"),
        .init(type: "message", data: #"{"text":"héllo wörld ✓"}"#, id: "7"),
        .init(type: "message", data: "", id: "7"),
        .init(type: "message", data: "[DONE]", id: "7"),
    ]

    @Test("whole stream parses to the expected events")
    func whole() {
        var parser = SSEParser()
        #expect(parser.feed(Array(Self.stream.utf8)) == Self.expected)
    }

    @Test("split at every byte boundary, the events are identical")
    func everySplit() {
        let bytes = Array(Self.stream.utf8)
        for cut in 0...bytes.count {
            var parser = SSEParser()
            let events = parser.feed(bytes[..<cut]) + parser.feed(bytes[cut...])
            #expect(events == Self.expected, "split at byte \(cut)")
        }
    }

    @Test("one byte at a time and in random pieces, the events are identical")
    func randomPieces() {
        let bytes = Array(Self.stream.utf8)
        var oneByOne = SSEParser()
        #expect(bytes.flatMap { oneByOne.feed([$0]) } == Self.expected)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var parser = SSEParser()
            var events: [SSEEvent] = []
            var index = 0
            while index < bytes.count {
                let size = Int.random(in: 1...17, using: &generator)
                let end = min(bytes.count, index + size)
                events += parser.feed(bytes[index..<end])
                index = end
            }
            #expect(events == Self.expected)
        }
    }

    @Test("a CRLF split across two pieces is one line end")
    func crlfAcrossPieces() {
        var parser = SSEParser()
        var events = parser.feed(Array("data: a\r".utf8))
        events += parser.feed(Array("\n\r".utf8))
        events += parser.feed(Array("\ndata: b\r\n\r\n".utf8))
        #expect(events == [.init(data: "a"), .init(data: "b")])
    }

    @Test("a leading byte-order mark is ignored and an unterminated last event is dropped")
    func bomAndTrailing() {
        var parser = SSEParser()
        let events = parser.feed([0xEF, 0xBB, 0xBF] + Array("data: x\n\ndata: partial".utf8))
        #expect(events == [.init(data: "x")])
        #expect(parser.finish().isEmpty)
    }
}
