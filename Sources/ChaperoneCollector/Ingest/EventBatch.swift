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
            guard let time = WallClock.microseconds(rfc3339: event.time) else {
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
}
