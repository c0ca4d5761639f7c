public import ChaperoneCore
import Crypto
import Foundation

/// One event line as received, checked and hashed; the line's bytes are kept exactly, because
/// the next event's `prev_hash` is the hash of these bytes. Immutable, and shared rather than
/// copied on its way through the queue, the planner and the writer.
public final class ReceivedEvent: Sendable {
    public let line: [UInt8]
    public let lineHash: [UInt8]
    public let event: AuditEvent
    /// The event's `time` in microseconds since the epoch.
    public let timeMicros: Int64
    /// `lineHash` in hex, as chains and the store write it.
    public let lineHashHex: String
    /// What the store indexes, read here so the writer does not.
    public let index: StoredRecord.IndexFields

    public init(line: [UInt8], lineHash: [UInt8], event: AuditEvent, timeMicros: Int64) {
        self.line = line
        self.lineHash = lineHash
        self.event = event
        self.timeMicros = timeMicros
        self.lineHashHex = lineHash.hexString
        self.index = StoredRecord.IndexFields(event)
    }
}

/// A line of a batch that was not stored, and why.
public struct LineRejection: Sendable, Codable, Equatable {
    public var line: Int
    public var eventID: String?
    public var error: String

    enum CodingKeys: String, CodingKey {
        case line
        case eventID = "event_id"
        case error
    }
}

/// Splits a JSON-lines body into checked events and per-line rejections.
enum EventBatchParser {
    struct Parsed: Sendable {
        var events: [ReceivedEvent] = []
        var rejections: [LineRejection] = []
    }

    enum Failure: Error, Equatable {
        case tooManyEvents(Int)
        case empty
    }

    static func parse(_ body: [UInt8], maxEvents: Int, maxEventBytes: Int) throws(Failure) -> Parsed {
        var parsed = Parsed()
        let decoder = JSONDecoder()
        var lineNumber = 0
        var start = body.startIndex
        var nonEmpty = 0
        while start < body.endIndex {
            let end = body[start...].firstIndex(of: 0x0a) ?? body.endIndex
            var slice = body[start..<end]
            start = end + 1
            lineNumber += 1
            if slice.last == 0x0d { slice = slice.dropLast() }
            guard !slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else { continue }
            nonEmpty += 1
            guard nonEmpty <= maxEvents else { throw .tooManyEvents(maxEvents) }
            guard slice.count <= maxEventBytes else {
                parsed.rejections.append(.init(line: lineNumber, eventID: nil, error: "event is \(slice.count) bytes; the limit is \(maxEventBytes)"))
                continue
            }
            let line = Array(slice)
            let event: AuditEvent
            do {
                event = try AuditEvent.decode(jsonLine: line, decoder: decoder)
            } catch {
                parsed.rejections.append(.init(line: lineNumber, eventID: nil, error: "not an audit event: \(Self.describe(error))"))
                continue
            }
            if let problem = Self.problem(with: event) {
                parsed.rejections.append(.init(line: lineNumber, eventID: event.eventID, error: problem))
                continue
            }
            guard let time = Self.micros(rfc3339: event.time) else {
                parsed.rejections.append(.init(line: lineNumber, eventID: event.eventID, error: "time '\(event.time)' is not RFC 3339 UTC"))
                continue
            }
            parsed.events.append(ReceivedEvent(
                line: line, lineHash: Array(SHA256.hash(data: line)), event: event, timeMicros: time))
        }
        guard nonEmpty > 0 else { throw .empty }
        return parsed
    }

    private static func problem(with event: AuditEvent) -> String? {
        guard event.schemaVersion.hasPrefix("1.") else { return "schema_version \(event.schemaVersion) is not 1.x" }
        guard Self.isIdentifier(event.eventID) else { return "event_id must be 1-64 characters of [A-Za-z0-9._:-]" }
        guard Self.isIdentifier(event.streamID) else { return "stream_id must be 1-64 characters of [A-Za-z0-9._:-]" }
        guard event.seq >= 1, event.seq <= UInt64(Int64.max) else { return "seq must be 1 or more" }
        guard event.prevHash.utf8.count == 64, event.prevHash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            return "prev_hash must be 64 lower-case hex digits"
        }
        guard !event.kind.rawValue.isEmpty, event.kind.rawValue.utf8.count <= 64 else { return "kind must be 1-64 characters" }
        guard !event.sessionID.isEmpty, event.sessionID.utf8.count <= 256 else { return "session_id must be 1-256 characters" }
        return nil
    }

    private static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                || byte == 0x2d || byte == 0x2e || byte == 0x5f || byte == 0x3a
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "bad value at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default:
            return "\(error)"
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (or `+00:00`) to microseconds since the epoch.
    static func micros(rfc3339 text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3a, b[16] == 0x3a else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                value = value * 10 + Int(b[i] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var index = 19
        var fraction = 0
        var digits = 0
        if index < b.count, b[index] == 0x2e {
            index += 1
            while index < b.count, (0x30...0x39).contains(b[index]) {
                if digits < 6 {
                    fraction = fraction * 10 + Int(b[index] - 0x30)
                    digits += 1
                }
                index += 1
            }
            guard digits > 0 else { return nil }
            while digits < 6 {
                fraction *= 10
                digits += 1
            }
        }
        let zone = b[index...]
        guard zone.elementsEqual("Z".utf8) || zone.elementsEqual("z".utf8) || zone.elementsEqual("+00:00".utf8) else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        return seconds * 1_000_000 + Int64(fraction)
    }
}
