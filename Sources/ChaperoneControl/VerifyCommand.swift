import ArgumentParser
import ChaperoneCore
import Foundation

/// What `verify` found, each problem naming the row it concerns.
struct VerificationReport {
    var checkpoints = 0
    var leaves = 0
    var records = 0
    var streams = 0
    var pruned = 0
    var uncovered = 0
    var knownGaps: [String] = []
    var problems: [String] = []

    var passed: Bool { self.problems.isEmpty }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the collector's log offline: signatures, Merkle roots, every stored event, every stream's hash chain.",
        discussion: """
            verify downloads the signed checkpoints, the log's leaves and every stored record, and checks:
              · each checkpoint's Ed25519 signature against the verifier key you pin (--key or --key-file);
              · that the leaves reproduce every checkpoint's root, and each checkpoint is consistent with the next (RFC 6962);
              · that each stored event hashes to its leaf (an altered row, a deleted row, an inserted row);
              · that every stream's events are numbered without gaps and chained by prev_hash, except gaps and breaks the
                collector already recorded as integrity.* events when they arrived.
            Exit status 0 when everything verifies, 1 when anything does not (each problem is listed).
            Without --key the key the collector announces is used, which proves consistency, not authenticity.
            """)

    @OptionGroup var collector: CollectorOptions
    @Option(help: "The log's verifier key, NAME+HASH+BASE64 (printed by the collector at start).") var key: String?
    @Option(help: "File holding the verifier key.") var keyFile: String?
    @Option(help: "table or json.") var output: OutputFormat = .table

    func run() async throws {
        var pinned: CheckpointVerifier?
        if let text = try self.key ?? self.keyFile.map({ try String(contentsOfFile: $0, encoding: .utf8) }) {
            do {
                pinned = try CheckpointVerifier(encoded: text)
            } catch {
                throw ValidationError("--key: \(error)")
            }
        }
        let report = try await CollectorClient.with(self.collector) { client in
            try await Self.verify(client: client, pinned: pinned)
        }
        switch self.output {
        case .json:
            let object: [String: Any] = [
                "passed": report.passed, "checkpoints": report.checkpoints, "leaves": report.leaves, "records": report.records,
                "streams": report.streams, "pruned": report.pruned, "uncovered": report.uncovered, "known_gaps": report.knownGaps,
                "problems": report.problems,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        case .table:
            print("checkpoints: \(report.checkpoints) signed and consistent\(report.problems.isEmpty ? "" : " (see problems)")")
            print("log: \(report.leaves) leaves; \(report.records) stored events; \(report.streams) streams")
            if report.uncovered > 0 { print("not yet covered by a checkpoint: \(report.uncovered) newest events") }
            if report.pruned > 0 { print("content removed by retention: \(report.pruned) events (their hashes still verify)") }
            for gap in report.knownGaps { print("recorded at ingest: \(gap)") }
            if report.passed {
                print("OK: every stored event is in the signed log and every chain is intact")
            } else {
                print("FAILED: \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")")
                for problem in report.problems { print("  - \(problem)") }
            }
        }
        if !report.passed { throw ExitCode(1) }
    }

    static func verify(client: CollectorClient, pinned: CheckpointVerifier?) async throws -> VerificationReport {
        var report = VerificationReport()

        // 1. Checkpoints: signatures, then sizes in order.
        let page: CheckpointsPage = try await client.get("/v1/log/checkpoints", [("limit", "100000")])
        let verifier: CheckpointVerifier
        if let pinned {
            verifier = pinned
            if pinned.encoded != page.verifierKey {
                report.problems.append("the collector announces verifier key \(page.verifierKey), not the pinned \(pinned.encoded)")
            }
        } else {
            FileHandle.standardError.write(Data("warning: no --key given; trusting the key the collector announces (\(page.verifierKey))\n".utf8))
            verifier = try CheckpointVerifier(encoded: page.verifierKey)
        }
        var checkpoints: [Checkpoint] = []
        for row in page.checkpoints.reversed() {
            do {
                let checkpoint = try verifier.verify(note: row.note)
                guard checkpoint.size == row.treeSize, checkpoint.rootHash.hexString == row.rootHash else {
                    report.problems.append("checkpoint \(row.treeSize): the stored size or root differs from its signed note")
                    continue
                }
                if let previous = checkpoints.last, checkpoint.size < previous.size {
                    report.problems.append("checkpoint \(checkpoint.size) is older than \(previous.size) but listed after it")
                }
                checkpoints.append(checkpoint)
            } catch {
                report.problems.append("checkpoint \(row.treeSize) (\(row.time)): \(error)")
            }
        }
        report.checkpoints = checkpoints.count

        // 2. Leaves: contiguous, and reproducing every checkpoint's root.
        var leaves: [MerkleTree.Hash] = []
        var leafEvents: [String] = []
        var start: Int64 = 0
        while true {
            let batch: LeavesPage = try await client.get("/v1/log/leaves", [("start", String(start)), ("limit", "20000")])
            guard let last = batch.leaves.last else { break }
            for leaf in batch.leaves {
                while Int64(leaves.count) < leaf.index {
                    report.problems.append("leaf \(leaves.count) is missing from the log (deleted)")
                    leaves.append([])
                    leafEvents.append("")
                }
                leaves.append([UInt8](hex: leaf.hash) ?? [])
                leafEvents.append(leaf.eventID)
            }
            start = last.index + 1
        }
        report.leaves = leaves.count
        var frontier = MerkleFrontier()
        var roots: [Int: MerkleTree.Hash] = [0: MerkleTree.emptyRoot]
        for checkpoint in checkpoints where checkpoint.size > leaves.count {
            report.problems.append("checkpoint \(checkpoint.size) covers \(checkpoint.size) leaves but the log holds \(leaves.count): leaves were deleted")
        }
        let sizes = Set(checkpoints.map(\.size))
        for leaf in leaves {
            frontier.append(leaf)
            if sizes.contains(frontier.size) { roots[frontier.size] = frontier.root }
        }
        for checkpoint in checkpoints {
            guard let root = roots[checkpoint.size] else { continue }
            if root != checkpoint.rootHash {
                report.problems.append("the leaves do not reproduce signed checkpoint \(checkpoint.size): the log's leaves before index \(checkpoint.size) were altered, deleted or inserted")
            }
        }
        // A later checkpoint extends an earlier one when the same leaves reproduce both roots:
        // what an RFC 6962 consistency proof built from these leaves shows, read off `roots`
        // instead of rehashing the log for every pair.
        for (old, new) in zip(checkpoints, checkpoints.dropFirst()) where old.size <= leaves.count && new.size <= leaves.count {
            let extends: Bool
            if old.size > new.size {
                extends = false
            } else if old.size == new.size {
                extends = old.rootHash == new.rootHash
            } else {
                extends = old.size == 0 || (roots[old.size] == old.rootHash && roots[new.size] == new.rootHash)
            }
            if !extends {
                report.problems.append("checkpoint \(new.size) does not extend checkpoint \(old.size) (the log was rewritten between them)")
            }
        }
        report.uncovered = max(0, leaves.count - (checkpoints.last?.size ?? 0))

        // 3. Records: each hashes to its leaf; every leaf has its record.
        var seen = Set<Int64>()
        var streams: [String: [RecordRow]] = [:]
        var recorded: [String: [(from: Int64, to: Int64)]] = [:]
        var recordedBreaks: Set<String> = []
        start = 0
        while true {
            let batch: RecordsPage = try await client.get("/v1/log/records", [("start", String(start)), ("limit", "10000")])
            guard let last = batch.records.last else { break }
            for record in batch.records {
                report.records += 1
                let what = "event \(record.eventID) (leaf \(record.leafIndex), stream \(record.streamID) seq \(record.seq))"
                guard seen.insert(record.leafIndex).inserted else {
                    report.problems.append("inserted: a second row claims leaf \(record.leafIndex): \(what)")
                    continue
                }
                let index = Int(record.leafIndex)
                guard index >= 0, index < leaves.count, !leaves[index].isEmpty else {
                    report.problems.append("inserted: \(what) is not in the log")
                    continue
                }
                if leafEvents[index] != record.eventID {
                    report.problems.append("inserted or replaced: leaf \(index) belongs to event \(leafEvents[index]), but the stored row is \(what)")
                    continue
                }
                if let line = record.line {
                    let lineBytes = Array(line.utf8)
                    if CanonicalJSON.sha256Hex(lineBytes) != record.lineHash {
                        report.problems.append("altered: the content of \(what) no longer matches its hash")
                    } else if let fields = Self.envelope(of: lineBytes),
                              fields.eventID != record.eventID || fields.streamID != record.streamID || fields.seq != record.seq || fields.prevHash != record.prevHash {
                        report.problems.append("altered: the indexed columns of \(what) differ from its content")
                    }
                    if record.kind.hasPrefix("integrity."), let detail = Self.integrity(of: lineBytes) {
                        if let from = detail.missingFrom, let to = detail.missingTo {
                            recorded[detail.streamID, default: []].append((Int64(from), Int64(to)))
                        }
                        if record.kind == "integrity.chain_break" || record.kind == "integrity.out_of_order", let seq = detail.receivedSeq {
                            recordedBreaks.insert("\(detail.streamID)#\(seq)")
                        }
                    }
                } else {
                    report.pruned += 1
                }
                let leafHash = LogRecord.leafHash(lineHash: [UInt8](hex: record.lineHash) ?? [], stamp: Array(record.stamp.utf8))
                if leafHash != leaves[index] {
                    report.problems.append("altered: \(what) does not hash to its leaf (its hashes or verified identity were changed)")
                }
                streams[record.streamID, default: []].append(record)
            }
            start = last.leafIndex + 1
        }
        for (index, eventID) in leafEvents.enumerated() where !eventID.isEmpty && !seen.contains(Int64(index)) {
            report.problems.append("deleted: event \(eventID) (leaf \(index)) is in the log but not in the store")
        }

        // 4. Chains, per stream, against what was recorded when events arrived.
        report.streams = streams.count
        for (stream, var records) in streams {
            records.sort { ($0.seq, $0.leafIndex) < ($1.seq, $1.leafIndex) }
            let known = recorded[stream] ?? []
            var expected: Int64 = 1
            var previousHash = String(repeating: "0", count: 64)
            for record in records {
                if record.seq < expected {
                    if !recordedBreaks.contains("\(stream)#\(record.seq)") {
                        report.problems.append("stream \(stream): seq \(record.seq) appears twice (event \(record.eventID))")
                    }
                    continue
                }
                if record.seq > expected {
                    let gap = (expected, record.seq - 1)
                    if known.contains(where: { $0.from <= gap.0 && $0.to >= gap.1 }) {
                        report.knownGaps.append("stream \(stream): events \(gap.0)...\(gap.1) never arrived")
                    } else {
                        report.problems.append("deleted: stream \(stream) lacks seq \(gap.0)...\(gap.1) (before event \(record.eventID))")
                    }
                } else if record.prevHash != previousHash && !recordedBreaks.contains("\(stream)#\(record.seq)") {
                    report.problems.append("chain broken: stream \(stream) seq \(record.seq) (event \(record.eventID)) does not follow seq \(record.seq - 1)")
                }
                expected = record.seq + 1
                previousHash = record.lineHash
            }
        }
        report.knownGaps.sort()
        return report
    }

    private struct Envelope: Decodable {
        var eventID: String
        var streamID: String
        var seq: Int64
        var prevHash: String
        enum CodingKeys: String, CodingKey {
            case eventID = "event_id"
            case streamID = "stream_id"
            case seq
            case prevHash = "prev_hash"
        }
    }

    private static func envelope(of line: [UInt8]) -> Envelope? {
        try? JSONDecoder().decode(Envelope.self, from: Data(line))
    }

    private struct IntegrityHolder: Decodable {
        var integrity: AuditEvent.Integrity?
    }

    private static func integrity(of line: [UInt8]) -> AuditEvent.Integrity? {
        (try? JSONDecoder().decode(IntegrityHolder.self, from: Data(line)))?.integrity
    }
}
