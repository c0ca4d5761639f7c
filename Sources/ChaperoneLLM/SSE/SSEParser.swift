/// One server-sent event as dispatched by the parser.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, or `message` when absent.
    public var type: String
    /// The `data:` lines joined with "\n".
    public var data: String
    public var id: String?

    public init(type: String = "message", data: String, id: String? = nil) {
        self.type = type
        self.data = data
        self.id = id
    }
}

/// Incremental parser for `text/event-stream` (WHATWG HTML §9.2.6): feed bytes as they arrive,
/// in pieces of any size; events come out exactly as if the whole stream had been parsed at once.
///
/// State kept between pieces: the partial line, whether the last byte was a CR (so a CRLF split
/// across pieces is one line end), and the fields of the event being built.
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var lastWasCR = false
    private var atStreamStart = true
    private var eventType = ""
    private var dataLines: [String] = []
    private var hasData = false
    private var lastEventID: String?

    public init() {}

    /// Consumes `bytes` and returns the events they complete.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [SSEEvent] where Bytes.Element == UInt8 {
        var events: [SSEEvent] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"):
                if self.lastWasCR {
                    self.lastWasCR = false
                    continue
                }
                self.endLine(into: &events)
            case UInt8(ascii: "\r"):
                self.lastWasCR = true
                self.endLine(into: &events)
            default:
                self.lastWasCR = false
                self.line.append(byte)
            }
        }
        return events
    }

    /// The stream ended: a trailing event without its blank line is discarded, as the spec says.
    public mutating func finish() -> [SSEEvent] {
        self.line.removeAll()
        self.resetEvent()
        return []
    }

    private mutating func endLine(into events: inout [SSEEvent]) {
        if self.atStreamStart {
            self.atStreamStart = false
            if self.line.starts(with: [0xEF, 0xBB, 0xBF]) { self.line.removeFirst(3) }
        }
        defer { self.line.removeAll(keepingCapacity: true) }
        if self.line.isEmpty {
            if self.hasData {
                events.append(SSEEvent(
                    type: self.eventType.isEmpty ? "message" : self.eventType,
                    data: self.dataLines.joined(separator: "\n"),
                    id: self.lastEventID
                ))
            }
            self.resetEvent()
            return
        }
        if self.line.first == UInt8(ascii: ":") { return }  // comment
        let field: [UInt8]
        var value: ArraySlice<UInt8>
        if let colon = self.line.firstIndex(of: UInt8(ascii: ":")) {
            field = Array(self.line[..<colon])
            value = self.line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = self.line
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "event": self.eventType = String(decoding: value, as: UTF8.self)
        case "data":
            self.dataLines.append(String(decoding: value, as: UTF8.self))
            self.hasData = true
        case "id":
            if !value.contains(0) { self.lastEventID = String(decoding: value, as: UTF8.self) }
        default: break  // `retry` and unknown fields do not matter to an observer
        }
    }

    private mutating func resetEvent() {
        self.eventType = ""
        self.dataLines.removeAll(keepingCapacity: true)
        self.hasData = false
    }
}
