import ChaperoneCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file descriptor, closed when its last holder lets go: the syncer and a shipper's read
/// may still hold one while the spool moves on to the next segment or deletes this one.
final class SpoolFile: @unchecked Sendable {
    let fd: Int32

    init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        _ = close(self.fd)
    }

    static func open(_ path: String, _ flags: Int32) -> SpoolFile? {
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o600)
        return fd >= 0 ? SpoolFile(fd: fd) : nil
    }
}

/// The first line of every segment file: which stream it continues and from where, so a spool
/// is readable on its own after a restart.
struct SegmentHeader: Codable, Equatable {
    var version = 1
    var streamID: String
    var firstSeq: UInt64
    /// The hash of the event before `firstSeq` (that event's successor carries it as `prev_hash`).
    var prevHash: String

    enum CodingKeys: String, CodingKey {
        case version = "chaperone_spool"
        case streamID = "stream_id"
        case firstSeq = "first_seq"
        case prevHash = "prev_hash"
    }

    func line() -> [UInt8] {
        Array("{\"chaperone_spool\":1,\"first_seq\":\(self.firstSeq),\"prev_hash\":\"\(self.prevHash)\",\"stream_id\":\(JSONString.quote(self.streamID))}\n".utf8)
    }
}

/// One file of the spool: a header line, then one canonical JSON line per event, `firstSeq`
/// upwards without holes. Only the newest segment is appended to.
final class SpoolSegment {
    let header: SegmentHeader
    let path: String
    let headerBytes: Int
    /// Where each event's line ends in the file; event `i` is seq `firstSeq + i`.
    var ends: [Int] = []
    /// When each event was appended (wall-clock microseconds), for the age of the oldest unshipped one.
    var appendedMicros: [Int64] = []
    /// `llm.request`s in this segment whose exchange has not ended yet: kept until they do, so a
    /// restart can record them as incomplete.
    var openExchanges = 0

    init(header: SegmentHeader, path: String, headerBytes: Int) {
        self.header = header
        self.path = path
        self.headerBytes = headerBytes
    }

    var firstSeq: UInt64 { self.header.firstSeq }
    var count: Int { self.ends.count }
    var isEmpty: Bool { self.ends.isEmpty }
    /// The last event's seq; `firstSeq - 1` while empty.
    var lastSeq: UInt64 { self.header.firstSeq + UInt64(self.ends.count) - 1 }
    var bytes: Int { self.ends.last ?? self.headerBytes }

    func contains(_ seq: UInt64) -> Bool { seq >= self.firstSeq && seq <= self.lastSeq }

    /// Byte offset where event `seq`'s line starts.
    func start(of seq: UInt64) -> Int {
        let index = Int(seq - self.firstSeq)
        return index == 0 ? self.headerBytes : self.ends[index - 1]
    }

    /// Bytes of the events after `seq` (all of them when `seq` is before the segment).
    func bytes(after seq: UInt64) -> Int {
        if seq >= self.lastSeq { return 0 }
        return self.bytes - (seq < self.firstSeq ? self.headerBytes : self.ends[Int(seq - self.firstSeq)])
    }

    static func fileName(firstSeq: UInt64) -> String {
        let digits = String(firstSeq)
        return "segment-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".jsonl"
    }

    static func firstSeq(fileName: String) -> UInt64? {
        guard fileName.hasPrefix("segment-"), fileName.hasSuffix(".jsonl") else { return nil }
        return UInt64(fileName.dropFirst("segment-".count).dropLast(".jsonl".count))
    }
}
