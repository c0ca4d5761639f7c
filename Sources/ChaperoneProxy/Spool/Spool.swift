package import ChaperoneCore
import Foundation
package import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The sidecar's write-ahead log of audit events, on local disk (an emptyDir in Kubernetes).
///
/// The trail appends every event here, in `seq` order, before the exchange it describes is
/// released to the agent; the shipper claims events in order, sends them, and acknowledges what
/// the collector stored; segments whose events are all acknowledged are deleted. A restarted
/// sidecar finds its stream where it left it (`recover`).
///
/// Durability (`spool.sync`): every event is written with write(2) before `write` returns, so it
/// survives any crash or kill of the proxy (the page cache belongs to the kernel). `interval`
/// (the default) adds an fdatasync every `sync_interval`; `always` one per event; a segment is
/// flushed whenever the spool moves on to the next.
///
/// Full (`spool.max_size`): `fail-closed` keeps every event and closes the gate for new exchanges
/// (`admitsNewExchanges`); `drop-oldest` deletes the oldest segment not yet handed to the shipper
/// and reports exactly which events went (`takeLosses`). When the disk itself refuses a write
/// (ENOSPC), events are held in memory, in order, and written as soon as space frees; the gate is
/// closed meanwhile, whatever the policy.
package final class Spool: AuditSink, @unchecked Sendable {
    package typealias Settings = ProxyConfiguration.Spool

    /// What the spool holds, for metrics, readiness and the shipper.
    package struct Depth: Sendable, Equatable {
        /// Events neither acknowledged by the collector nor dropped, on disk or held in memory.
        package var events: Int
        /// Size of the spool's files.
        package var bytes: Int
        /// When the oldest unacknowledged event was appended (wall-clock µs).
        package var oldestMicros: Int64?
        /// Events the disk refused, held in memory until it takes them.
        package var heldEvents: Int
        package var aboveHighWater: Bool
        package var admitsNewExchanges: Bool
    }

    /// What a restarted spool found.
    package struct Recovery: Sendable {
        /// Where the stream continues; nil when the spool was empty (a new stream starts).
        package var position: AuditTrail.StreamPosition?
        /// `llm.request` events whose exchange never ended: the proxy stopped while they were open.
        package var openExchanges: [AuditEvent]
        package var events: Int
        package var unacknowledged: Int
        /// Bytes cut from the end of the newest segment (a line half-written when the proxy died).
        package var tornBytes: Int
    }

    /// Events handed to the shipper: `firstSeq...lastSeq`, one line each (no newline).
    package struct Claim: Sendable {
        package var firstSeq: UInt64
        package var lines: [ArraySlice<UInt8>]
        package var lastSeq: UInt64 { self.firstSeq + UInt64(self.lines.count) - 1 }
        package var count: Int { self.lines.count }

        /// The lines as a JSON-lines body.
        package var body: [UInt8] {
            var body = [UInt8]()
            body.reserveCapacity(self.lines.reduce(0) { $0 + $1.count + 1 })
            for line in self.lines {
                body += line
                body.append(0x0a)
            }
            return body
        }

        package func prefix(_ count: Int) -> Claim {
            Claim(firstSeq: self.firstSeq, lines: Array(self.lines.prefix(count)))
        }

        package func dropFirst(_ count: Int) -> Claim {
            Claim(firstSeq: self.firstSeq + UInt64(count), lines: Array(self.lines.dropFirst(count)))
        }
    }

    package enum Failure: Error, CustomStringConvertible {
        case directory(String, String)
        case locked(String)
        case io(String, Int32)
        package var description: String {
            switch self {
            case .directory(let path, let why): "cannot use spool directory \(path): \(why)"
            case .locked(let path): "spool \(path) is in use by another chaperone-proxy (lock held)"
            case .io(let what, let code): "\(what): \(String(cString: strerror(code)))"
            }
        }
    }

    package let directory: String
    package let settings: Settings
    private let logger: Logger
    private let lock = NSLock()
    private let lockFile: SpoolFile

    private var segments: [SpoolSegment] = []
    private var current: SpoolFile?
    private var dirty = false
    private var streamID: String?
    /// Every seq up to here is acknowledged by the collector, or was dropped.
    private var acknowledged: UInt64 = 0
    /// Every seq up to here has been handed to the shipper (or dropped).
    private var claimed: UInt64 = 0
    /// Ranges above `acknowledged` that drop-oldest deleted.
    private var dropped: [ClosedRange<UInt64>] = []
    /// Exchange id → first seq of the segment holding its `llm.request`.
    private var openExchanges: [String: UInt64] = [:]
    /// Lines the disk refused, in seq order, with when they were appended.
    private var held: [(seq: UInt64, prevHash: String, line: [UInt8], micros: Int64)] = []
    private var heldBytes = 0
    private var losses: [AuditLoss] = []
    /// `integrity.gap` events written and not yet handed to the shipper, with the loss each
    /// reports: if drop-oldest deletes one of them too, the next report covers its range as well,
    /// so the surviving reports always say everything that was lost.
    private var gapReports: [(seq: UInt64, loss: AuditLoss)] = []
    /// The losses `takeLosses` last returned, whose reports are about to be written.
    private var handedOut: [AuditLoss] = []
    private var reportedDiskFull = false
    private var lastAckWritten: UInt64 = 0
    private var onChange: (@Sendable (Depth) -> Void)?

    /// Opens (creating it if needed) and locks the spool in `settings.directory`, and reads back
    /// what a previous run left: the stream's position, the unacknowledged events, and the
    /// exchanges that were open when it stopped.
    package init(settings: Settings, logger: Logger) throws(Failure) {
        self.directory = settings.directory
        self.settings = settings
        self.logger = logger
        do {
            try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch let error {
            throw Failure.directory(settings.directory, "\(error)")
        }
        guard let lockFile = SpoolFile.open(settings.directory + "/lock", O_RDWR | O_CREAT) else {
            throw .directory(settings.directory, String(cString: strerror(errno)))
        }
        guard flock(lockFile.fd, LOCK_EX | LOCK_NB) == 0 else { throw .locked(settings.directory) }
        self.lockFile = lockFile
    }

    /// Reads the segments a previous run left. Call once, before the first `write`.
    package func recover() throws(Failure) -> Recovery {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try self.recoverLocked()
    }

    /// Called (outside the spool's lock) whenever the depth changes: metrics and readiness.
    package func observe(_ onChange: @escaping @Sendable (Depth) -> Void) {
        self.lock.withLock { self.onChange = onChange }
        onChange(self.depth)
    }

    // MARK: writing (the trail, in seq order)

    package func write(_ record: AuditRecord) throws {
        let depth: Depth = self.lock.withLock {
            var line = [UInt8](record.canonicalJSON)
            line.append(0x0a)
            let seq = record.event.seq
            if self.streamID == nil { self.streamID = record.event.streamID }
            if self.settings.overflow == .dropOldest {
                self.makeRoom(for: line.count)
            }
            if record.event.kind == .integrityGap, let from = record.event.integrity?.missingFrom, let to = record.event.integrity?.missingTo,
                let loss = self.handedOut.first(where: { $0.seqs == from...to }) {
                self.gapReports.append((seq, loss))
            }
            let micros = WallClock.nowMicroseconds()
            if self.held.isEmpty {
                self.append(line, seq: seq, prevHash: record.event.prevHash, micros: micros)
            } else {
                self.hold(line, seq: seq, prevHash: record.event.prevHash, micros: micros)
            }
            if let exchange = record.event.exchangeID {
                if record.event.outcome != nil {
                    self.exchangeEnded(exchange)
                } else if record.event.kind == .llmRequest, let segment = self.segments.last, segment.lastSeq == seq {
                    self.openExchanges[exchange] = segment.firstSeq
                    segment.openExchanges += 1
                }
            }
            return self.depthLocked
        }
        self.onChange?(depth)
    }

    package func takeLosses() -> [AuditLoss] {
        self.lock.withLock {
            defer { self.losses = [] }
            if !self.losses.isEmpty { self.handedOut = self.losses }
            return self.losses
        }
    }

    package func close() throws {
        self.lock.withLock {
            if let current = self.current, self.settings.sync != .never { _ = fdatasync(current.fd) }
            self.writeAcknowledgedLocked()
        }
    }

    /// Whether a new exchange may start: false while the spool is full under `fail-closed`, or
    /// the disk refuses writes.
    package var admitsNewExchanges: Bool { self.lock.withLock { self.admitsLocked } }

    package var depth: Depth { self.lock.withLock { self.depthLocked } }

    /// Flushes the newest segment to disk when `sync: interval` and something was written since
    /// the last flush; retries writing held events. Run every `sync_interval`.
    package func syncNow() {
        let (file, depth): (SpoolFile?, Depth?) = self.lock.withLock {
            let changed = self.retryHeldLocked()
            let file = self.dirty && self.settings.sync == .interval ? self.current : nil
            self.dirty = false
            return (file, changed ? self.depthLocked : nil)
        }
        if let file, fdatasync(file.fd) != 0 {
            self.logger.error("spool.sync_failed", metadata: ["error": "\(String(cString: strerror(errno)))", "directory": "\(self.directory)"])
        }
        if let depth { self.onChange?(depth) }
    }

    // MARK: shipping

    /// Events not yet handed to the shipper: how many, their bytes, and when the oldest arrived.
    package func unclaimed() -> (events: Int, bytes: Int, oldestMicros: Int64?) {
        self.lock.withLock {
            var events = 0
            var bytes = 0
            var oldest: Int64?
            for segment in self.segments where segment.lastSeq > self.claimed {
                events += Int(segment.lastSeq - max(self.claimed, segment.firstSeq - 1))
                bytes += segment.bytes(after: self.claimed)
                if oldest == nil { oldest = segment.appendedMicros[Int(max(self.claimed + 1, segment.firstSeq) - segment.firstSeq)] }
            }
            return (events, bytes, oldest)
        }
    }

    /// Hands the next events to the shipper, in order, at most `maxEvents` and (past the first)
    /// `maxBytes`; never past the end of a segment. nil when nothing is waiting.
    package func claim(maxEvents: Int, maxBytes: Int) -> Claim? {
        let found: (SpoolFile, start: Int, ends: ArraySlice<Int>, first: UInt64)? = self.lock.withLock {
            guard let segment = self.segments.first(where: { $0.lastSeq > self.claimed }),
                let file = SpoolFile.open(segment.path, O_RDONLY)
            else { return nil }
            let first = max(self.claimed + 1, segment.firstSeq)
            let startIndex = Int(first - segment.firstSeq)
            let start = segment.start(of: first)
            var endIndex = startIndex + 1
            while endIndex < segment.count, endIndex - startIndex < maxEvents, segment.ends[endIndex] - start <= maxBytes {
                endIndex += 1
            }
            self.claimed = first + UInt64(endIndex - startIndex) - 1
            self.gapReports.removeAll { $0.seq <= self.claimed }
            return (file, start, segment.ends[startIndex..<endIndex], first)
        }
        guard let (file, start, ends, first) = found, let end = ends.last else { return nil }
        var bytes = [UInt8](repeating: 0, count: end - start)
        var offset = 0
        while offset < bytes.count {
            let read = bytes.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress! + offset, $0.count - offset, off_t(start + offset)) }
            if read < 0 && errno == EINTR { continue }
            guard read > 0 else {
                // The file lost its bytes under us (it cannot, short of disk trouble): hand the
                // events back so the next claim tries again.
                self.logger.error("spool.read_failed", metadata: ["first_seq": "\(first)", "error": "\(String(cString: strerror(errno)))"])
                self.lock.withLock { self.claimed = min(self.claimed, first - 1) }
                return nil
            }
            offset += read
        }
        var lines: [ArraySlice<UInt8>] = []
        lines.reserveCapacity(ends.count)
        var lineStart = 0
        for lineEnd in ends {
            lines.append(bytes[lineStart..<(lineEnd - start - 1)])
            lineStart = lineEnd - start
        }
        return Claim(firstSeq: first, lines: lines)
    }

    /// The collector has every event up to `seq` (stored, duplicate or set aside): they leave the
    /// spool. Segments wholly acknowledged, and holding no open exchange, are deleted.
    package func acknowledge(through seq: UInt64) {
        let depth: Depth = self.lock.withLock {
            if seq > self.acknowledged { self.acknowledged = seq }
            self.absorbDroppedLocked()
            self.deleteAcknowledgedLocked()
            _ = self.retryHeldLocked()
            let depth = self.depthLocked
            if self.acknowledged >= self.lastAckWritten + 1000 || depth.events == 0 { self.writeAcknowledgedLocked() }
            return depth
        }
        self.onChange?(depth)
    }

    // MARK: internals (under the lock)

    private var admitsLocked: Bool {
        self.held.isEmpty && (self.settings.overflow == .dropOldest || self.diskBytes < self.settings.maxBytes)
    }

    private var diskBytes: Int { self.segments.reduce(0) { $0 + $1.bytes } }

    private var depthLocked: Depth {
        var events = self.held.count
        var oldest: Int64? = self.held.first?.micros
        for segment in self.segments where segment.lastSeq > self.acknowledged {
            let first = max(self.acknowledged + 1, segment.firstSeq)
            events += Int(segment.lastSeq - first + 1)
            oldest = oldest.map { min($0, segment.appendedMicros[Int(first - segment.firstSeq)]) } ?? segment.appendedMicros[Int(first - segment.firstSeq)]
        }
        let bytes = self.diskBytes + self.heldBytes
        return Depth(
            events: events, bytes: bytes, oldestMicros: oldest, heldEvents: self.held.count,
            aboveHighWater: !self.held.isEmpty || bytes * 100 >= self.settings.maxBytes * self.settings.highWaterPercent,
            admitsNewExchanges: self.admitsLocked)
    }

    private func exchangeEnded(_ exchange: String) {
        guard let first = self.openExchanges.removeValue(forKey: exchange) else { return }
        if let owner = self.segments.first(where: { $0.firstSeq == first }) {
            owner.openExchanges -= 1
        }
        self.deleteAcknowledgedLocked()
    }

    /// Appends one line to the newest segment (starting a new one when it is full); holds it in
    /// memory when the disk refuses.
    private func append(_ line: [UInt8], seq: UInt64, prevHash: String, micros: Int64) {
        if self.segments.last.map({ $0.bytes + line.count > self.settings.segmentBytes && !$0.isEmpty }) ?? true || self.current == nil {
            guard self.startSegment(firstSeq: seq, prevHash: prevHash) else {
                self.hold(line, seq: seq, prevHash: prevHash, micros: micros)
                return
            }
        }
        guard let segment = self.segments.last, let file = self.current else { return }
        if let code = line.withUnsafeBytes({ writeAll(file.fd, $0) }) {
            _ = ftruncate(file.fd, off_t(segment.bytes))
            self.diskRefused(code)
            self.hold(line, seq: seq, prevHash: prevHash, micros: micros)
            return
        }
        segment.ends.append(segment.bytes + line.count)
        segment.appendedMicros.append(micros)
        self.dirty = true
        if self.settings.sync == .always, fdatasync(file.fd) != 0 {
            self.logger.error("spool.sync_failed", metadata: ["error": "\(String(cString: strerror(errno)))", "seq": "\(seq)"])
        }
    }

    private func hold(_ line: [UInt8], seq: UInt64, prevHash: String, micros: Int64) {
        self.held.append((seq, prevHash, line, micros))
        self.heldBytes += line.count
    }

    /// Writes held lines while the disk takes them. Returns whether any were written.
    private func retryHeldLocked() -> Bool {
        guard !self.held.isEmpty else { return false }
        // When everything on disk is acknowledged, the newest segment goes too: on a disk too
        // small for a second segment, that is the only way to make room. The first held event
        // carries what the next segment's header needs to continue the stream.
        if let newest = self.segments.last, newest.lastSeq <= self.acknowledged, newest.openExchanges == 0, !newest.isEmpty {
            unlink(newest.path)
            self.segments.removeLast()
            self.current = nil
        }
        let before = self.held.count
        var remaining = self.held[...]
        self.held = []
        self.heldBytes = 0
        while let next = remaining.first {
            self.append(next.line, seq: next.seq, prevHash: next.prevHash, micros: next.micros)
            remaining = remaining.dropFirst()
            if !self.held.isEmpty { break }
        }
        for rest in remaining { self.hold(rest.line, seq: rest.seq, prevHash: rest.prevHash, micros: rest.micros) }
        if self.held.isEmpty && self.reportedDiskFull {
            self.reportedDiskFull = false
            self.logger.notice("spool.disk_accepts_writes_again", metadata: ["directory": "\(self.directory)"])
        }
        return self.held.count != before
    }

    private func diskRefused(_ code: Int32) {
        guard !self.reportedDiskFull else { return }
        self.reportedDiskFull = true
        self.logger.error("spool.disk_refused_write", metadata: [
            "directory": "\(self.directory)", "error": "\(String(cString: strerror(code)))",
            "effect": "events are held in memory until the disk takes them; new requests are refused meanwhile",
        ])
    }

    /// Closes the newest segment (flushed) and starts the next, whose header continues the stream.
    private func startSegment(firstSeq: UInt64, prevHash: String) -> Bool {
        if let current = self.current, self.settings.sync != .never { _ = fdatasync(current.fd) }
        let header = SegmentHeader(streamID: self.streamID ?? "", firstSeq: firstSeq, prevHash: prevHash)
        let path = self.directory + "/" + SpoolSegment.fileName(firstSeq: firstSeq)
        guard let file = SpoolFile.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND) else {
            self.diskRefused(errno)
            return false
        }
        let bytes = header.line()
        if let code = bytes.withUnsafeBytes({ writeAll(file.fd, $0) }) {
            unlink(path)
            self.diskRefused(code)
            return false
        }
        if self.settings.sync != .never {
            _ = fdatasync(file.fd)
            if let directory = SpoolFile.open(self.directory, O_RDONLY | O_DIRECTORY) { _ = fsync(directory.fd) }
        }
        // An empty newest segment (its file reopened above when it starts at the same seq) is
        // replaced rather than kept beside the new one.
        if let last = self.segments.last, last.isEmpty {
            if last.path != path { unlink(last.path) }
            self.segments.removeLast()
        }
        self.segments.append(SpoolSegment(header: header, path: path, headerBytes: bytes.count))
        self.current = file
        return true
    }

    /// drop-oldest: deletes the oldest segments until `incoming` more bytes fit, recording which
    /// unshipped events went. The newest segment is never dropped.
    private func makeRoom(for incoming: Int) {
        while self.diskBytes + incoming > self.settings.maxBytes, self.segments.count > 1 {
            let victim = self.segments.removeFirst()
            unlink(victim.path)
            for (exchange, first) in self.openExchanges where first == victim.firstSeq {
                self.openExchanges.removeValue(forKey: exchange)
            }
            guard victim.lastSeq > self.claimed, !victim.isEmpty else { continue }
            let from = max(self.claimed + 1, victim.firstSeq)
            let range = from...victim.lastSeq
            var loss = AuditLoss(
                seqs: range, bytes: victim.bytes(after: from - 1),
                reason: "the spool reached spool.max_size (\(self.settings.maxBytes) bytes) with overflow drop-oldest while the collector was not taking events")
            for report in self.gapReports where range.contains(report.seq) {
                loss.seqs = min(loss.seqs.lowerBound, report.loss.seqs.lowerBound)...range.upperBound
                loss.bytes += report.loss.bytes
            }
            self.gapReports.removeAll { $0.seq <= range.upperBound }
            if let pending = self.losses.last, pending.seqs.upperBound + 1 == loss.seqs.lowerBound {
                self.losses[self.losses.count - 1].seqs = pending.seqs.lowerBound...loss.seqs.upperBound
                self.losses[self.losses.count - 1].bytes += loss.bytes
            } else {
                self.losses.append(loss)
            }
            self.dropped.append(range)
            self.claimed = victim.lastSeq
        }
        self.absorbDroppedLocked()
    }

    private func absorbDroppedLocked() {
        while let first = self.dropped.first, first.lowerBound <= self.acknowledged + 1 {
            self.acknowledged = max(self.acknowledged, first.upperBound)
            self.dropped.removeFirst()
        }
    }

    private func deleteAcknowledgedLocked() {
        while self.segments.count > 1, let oldest = self.segments.first, oldest.lastSeq <= self.acknowledged, oldest.openExchanges == 0 {
            unlink(oldest.path)
            self.segments.removeFirst()
        }
    }

    /// Remembers how far the collector has acknowledged, so a restart does not send it all again
    /// (the collector would only count duplicates). Not flushed: losing it costs duplicates only.
    private func writeAcknowledgedLocked() {
        guard let stream = self.streamID, self.acknowledged != self.lastAckWritten else { return }
        let path = self.directory + "/acknowledged"
        let temporary = path + ".tmp"
        let text = "\(stream) \(self.acknowledged)\n"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)), rename(temporary, path) == 0 else { return }
        self.lastAckWritten = self.acknowledged
    }

    private func recoverLocked() throws(Failure) -> Recovery {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: self.directory)
        } catch {
            throw .directory(self.directory, "\(error)")
        }
        let ordered = names.compactMap { name in SpoolSegment.firstSeq(fileName: name).map { (name, $0) } }.sorted { $0.1 < $1.1 }
        var recovery = Recovery(position: nil, openExchanges: [], events: 0, unacknowledged: 0, tornBytes: 0)
        var openRequests: [String: AuditEvent] = [:]
        var lastLineHash: String?
        for (index, (name, _)) in ordered.enumerated() {
            let path = self.directory + "/" + name
            let isNewest = index == ordered.count - 1
            guard let data = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)", errno) }
            let bytes = [UInt8](data)
            guard let headerEnd = bytes.firstIndex(of: 0x0a),
                let header = try? JSONDecoder().decode(SegmentHeader.self, from: Data(bytes[..<headerEnd])), header.version == 1,
                self.streamID == nil || header.streamID == self.streamID
            else {
                // A segment whose header never made it to disk holds nothing we wrote after it.
                self.logger.error("spool.segment_unreadable", metadata: ["file": "\(path)", "effect": "moved aside as \(name).unreadable"])
                rename(path, path + ".unreadable")
                continue
            }
            self.streamID = header.streamID
            let segment = SpoolSegment(header: header, path: path, headerBytes: headerEnd + 1)
            var position = headerEnd + 1
            var previous = header.prevHash
            while position < bytes.count {
                guard let end = bytes[position...].firstIndex(of: 0x0a),
                    let event = try? AuditEvent.decode(jsonLine: Array(bytes[position..<end])),
                    event.seq == segment.lastSeq + 1, event.streamID == header.streamID
                else { break }
                segment.ends.append(end + 1)
                segment.appendedMicros.append(WallClock.microseconds(rfc3339: event.time) ?? WallClock.nowMicroseconds())
                if let exchange = event.exchangeID {
                    if event.outcome == nil && event.kind == .llmRequest {
                        openRequests[exchange] = event
                    } else if event.outcome != nil {
                        openRequests.removeValue(forKey: exchange)
                    }
                }
                previous = CanonicalJSON.sha256Hex(bytes[position..<end])
                position = end + 1
            }
            if position < bytes.count {
                let cut = bytes.count - position
                self.logger.error("spool.segment_truncated", metadata: [
                    "file": "\(path)", "bytes": "\(cut)",
                    "reason": "\(isNewest ? "a line was half-written when the proxy stopped" : "an unreadable line; later lines of this file are lost")",
                ])
                recovery.tornBytes += cut
                truncate(path, off_t(position))
            }
            self.segments.append(segment)
            lastLineHash = previous
            recovery.events += segment.count
        }
        if let ack = try? String(contentsOfFile: self.directory + "/acknowledged", encoding: .utf8) {
            let parts = ack.split(separator: " ")
            if parts.count == 2, String(parts[0]) == self.streamID, let seq = UInt64(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)) {
                self.acknowledged = seq
                self.lastAckWritten = seq
            }
        }
        if let newest = self.segments.last, let stream = self.streamID, let hash = lastLineHash {
            self.acknowledged = max(self.acknowledged, (self.segments.first?.firstSeq ?? 1) - 1)
            self.claimed = self.acknowledged
            recovery.position = AuditTrail.StreamPosition(streamID: stream, nextSeq: newest.lastSeq + 1, previousHash: hash)
            self.current = SpoolFile.open(newest.path, O_WRONLY | O_APPEND)
            for (exchange, request) in openRequests {
                guard let owner = self.segments.last(where: { $0.firstSeq <= request.seq }) else { continue }
                self.openExchanges[exchange] = owner.firstSeq
                owner.openExchanges += 1
            }
            recovery.openExchanges = openRequests.values.sorted { $0.seq < $1.seq }
            recovery.unacknowledged = self.depthLocked.events
        }
        return recovery
    }
}
