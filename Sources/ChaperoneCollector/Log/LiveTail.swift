public import ChaperoneCore
import Foundation
import NIOConcurrencyHelpers

/// Writes whole lines to stdout, one `write(2)` per batch so lines from concurrent batches never
/// interleave.
public final class StandardOutput: Sendable {
    private let lock = NIOLock()

    public init() {}

    public func write(lines: [String]) {
        self.write(lines: lines.map { Array($0.utf8) })
    }

    public func write(lines: [[UInt8]]) {
        guard !lines.isEmpty else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(lines.reduce(0) { $0 + $1.count + 1 })
        for line in lines {
            bytes.append(contentsOf: line)
            bytes.append(0x0a)
        }
        self.lock.withLock {
            _ = bytes.withUnsafeBytes { writeAll(STDOUT_FILENO, $0) }
        }
    }
}

/// The live audit trail: one JSON line per stored event, with the verified identity and the
/// text shortened to `maxContentChars`, so `kubectl logs -f deploy/chaperone-collector` reads as
/// the trail itself.
public struct LiveTail: Sendable {
    public var maxContentChars: Int

    public init(maxContentChars: Int) {
        self.maxContentChars = maxContentChars
    }

    /// The line as UTF-8, as stdout takes it.
    public func line(for record: StoredRecord) -> [UInt8] {
        var w = CanonicalJSONWriter()
        let index = record.index
        w.object { w in
            if let v = index.action { w.key("action") { $0.string(v) } }
            w.key("event_id") { $0.string(record.eventID) }
            if !index.findings.isEmpty {
                w.key("findings") { $0.strings(Array(Set(index.findings.map(\.detector))).sorted()) }
            }
            w.key("kind") { $0.string(record.kind) }
            w.key("leaf_index") { $0.integer(record.leafIndex) }
            if let v = index.model { w.key("model") { $0.string(v) } }
            w.key("namespace") { $0.string(record.identity.namespace) }
            if let v = index.outcome { w.key("outcome") { $0.string(v) } }
            if let v = record.identity.pod { w.key("pod") { $0.string(v) } }
            w.key("seq") { $0.integer(record.seq) }
            w.key("service_account") { $0.string(record.identity.serviceAccount) }
            w.key("session_id") { $0.string(record.sessionID) }
            if let v = index.status { w.key("status") { $0.integer(v) } }
            w.key("stream_id") { $0.string(record.streamID) }
            if !index.preview.isEmpty, self.maxContentChars > 0 { w.key("text") { $0.string(self.shorten(index.preview)) } }
            w.key("time") { $0.string(WallClock.rfc3339(microseconds: record.timeMicros)) }
        }
        return w.bytes
    }

    /// The first `maxContentChars` Unicode scalars on one line (line breaks become spaces), with
    /// `…` when something was cut. Reads no more of the text than it keeps.
    func shorten(_ text: String) -> String {
        var kept: [UInt8] = []
        var scalars = 0
        for byte in text.utf8 {
            if byte & 0xc0 != 0x80 {  // the first byte of a scalar
                guard scalars < self.maxContentChars else {
                    kept.append(contentsOf: "…".utf8)
                    break
                }
                scalars += 1
            }
            kept.append(byte == 0x0a || byte == 0x0d ? 0x20 : byte)
        }
        return String(decoding: kept, as: UTF8.self)
    }
}
