// chaperone-masking-bench: throughput, streaming latency and detection quality of the
// secret-masking engine (ChaperoneMasking). bench/masking/run.sh drives it and compares the
// throughput with detect-secrets on the same files; see docs/benchmarks.md, "Masking".
//
//   chaperone-masking-bench --corpus DIR [--labelled FILE] [--runs N] [--min-run-seconds S]
//                           [--seed N] [--out FILE] [--quality-only]
//
// Writes one JSON object (to --out, or stdout) and a readable summary on stderr.
import ChaperoneMasking
import Foundation

struct Options {
    var corpus: String?
    var labelled = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures/masking/labelled.jsonl").path
    var runs = 7
    var minRunSeconds = 0.3
    var seed: UInt64 = 20_251_122
    var out: String?
    var qualityOnly = false
    /// Masks this file for a few seconds and prints MB/s (for profiling); nothing else.
    var profile: String?

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        func value(_ flag: String) -> String {
            guard let next = rest.popFirst() else { fail("\(flag) needs a value") }
            return next
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--corpus": self.corpus = value(flag)
            case "--labelled": self.labelled = value(flag)
            case "--runs": self.runs = Int(value(flag)) ?? self.runs
            case "--min-run-seconds": self.minRunSeconds = Double(value(flag)) ?? self.minRunSeconds
            case "--seed": self.seed = UInt64(value(flag)) ?? self.seed
            case "--out": self.out = value(flag)
            case "--quality-only": self.qualityOnly = true
            case "--profile": self.profile = value(flag)
            case "-h", "--help":
                print("usage: chaperone-masking-bench --corpus DIR [--labelled FILE] [--runs N] [--min-run-seconds S] [--seed N] [--out FILE] [--quality-only]")
                exit(0)
            default: fail("unknown argument \(flag)")
            }
        }
        if self.corpus == nil && !self.qualityOnly && self.profile == nil { fail("--corpus DIR is required (or --quality-only)") }
    }
}

let options = Options(CommandLine.arguments)
let masker = SecretMasker(fingerprinter: Fingerprinter(key: Array("chaperone-masking-bench".utf8)))
if let path = options.profile {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    let text = String(decoding: data, as: UTF8.self)
    var count = 0, findings = 0
    let start = monotonicNanos(), cpuStart = threadCPUNanos()
    while monotonicNanos() - start < UInt64(options.minRunSeconds * 1e9) {
        findings = masker.mask(text).findings.count
        count += 1
    }
    let seconds = Double(monotonicNanos() - start) / 1e9, cpu = Double(threadCPUNanos() - cpuStart) / 1e9
    print(String(format: "%@: %d B, %d findings, %.1f MB/s wall, %.1f MB/s of thread CPU time", path as NSString, data.count, findings,
                 Double(data.count * count) / seconds / 1e6, Double(data.count * count) / cpu / 1e6))
    exit(0)
}
let records = LabelledRecord.load(URL(fileURLWithPath: options.labelled))
var report: [String: Any] = [
    "labelled": options.labelled,
    "detectors": masker.scanner.detectors.count,
]

// MARK: corpus

struct CorpusFile {
    var label: String
    var path: String
    var text: String
    var bytes: Int { self.text.utf8.count }
}

var files: [CorpusFile] = []
if let directory = options.corpus, !options.qualityOnly {
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var builder = CorpusBuilder(seed: options.seed, records: records)
    let largest = 1 << 20
    let stream = builder.build(size: largest + 16_384)
    var corpusJSON: [[String: Any]] = []
    for (label, size) in [("4k", 4096), ("64k", 65536), ("1m", largest)] {
        let text = builder.cut(stream, to: size)
        let path = (directory as NSString).appendingPathComponent("mixed-\(label).txt")
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else { fail("cannot write \(path)") }
        files.append(CorpusFile(label: label, path: path, text: text))
        let masked = masker.mask(text)
        var byDetector: [String: Int] = [:]
        for finding in masked.findings { byDetector[finding.detector, default: 0] += 1 }
        let lines = text.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        corpusJSON.append([
            "size": label, "path": path, "bytes": text.utf8.count, "lines": lines,
            "findings": masked.findings.count, "findings_by_detector": byDetector,
        ])
    }
    report["corpus"] = [
        "files": corpusJSON, "seed": options.seed,
        "mix": "35% source code (Python, Swift, Go, JS, C, Kubernetes YAML), 25% prose (5% of it non-ASCII), 20% JSON (chat requests carrying files, completions, API objects), 20% logs; labelled texts inserted every 8-24 KB (a positive) and every 2-6 KB (a negative)",
        "labelled_texts_inserted": ["positive": builder.insertedPositives, "negative": builder.insertedNegatives],
    ]
    log("corpus: wrote \(files.map { "\($0.path) (\($0.bytes) B)" }.joined(separator: ", "))")
}

// MARK: throughput (whole-text masking, one thread)

var sink = 0
if !files.isEmpty {
    var rows: [[String: Any]] = []
    for file in files {
        let text = file.text
        // Warm-up: page in code and data, let the allocator settle.
        let warmupEnd = monotonicNanos() + 100_000_000
        while monotonicNanos() < warmupEnd { sink &+= masker.mask(text).findings.count }
        var rates: [Double] = []
        var iterationsPerRun: [Int] = []
        for _ in 0..<options.runs {
            var iterations = 0
            let start = monotonicNanos()
            let deadline = start + UInt64(options.minRunSeconds * 1e9)
            var now = start
            repeat {
                sink &+= masker.mask(text).findings.count
                iterations += 1
                now = monotonicNanos()
            } while now < deadline
            let seconds = Double(now - start) / 1e9
            rates.append(Double(file.bytes * iterations) / seconds / 1e6)
            iterationsPerRun.append(iterations)
        }
        let row: [String: Any] = [
            "size": file.label, "bytes": file.bytes, "runs": options.runs,
            "mb_per_s": rounded(median(rates), 1), "mb_per_s_min": rounded(rates.min() ?? 0, 1), "mb_per_s_max": rounded(rates.max() ?? 0, 1),
            "iterations_per_run": iterationsPerRun,
            "us_per_call": rounded(Double(file.bytes) / median(rates), 2),
        ]
        rows.append(row)
        log(String(format: "throughput %-4@ %8d B: median %7.1f MB/s (min %.1f, max %.1f) over %d runs",
                   file.label as NSString, file.bytes, median(rates), rates.min() ?? 0, rates.max() ?? 0, options.runs))
    }
    report["throughput"] = ["unit": "MB/s (10^6 bytes of UTF-8 input per second), whole-text SecretMasker.mask, one thread, all detectors", "results": rows]
}

// MARK: streaming redactor latency

/// Cuts `text` into pieces of `sizes()` bytes, never inside a UTF-8 sequence.
func pieces(of text: String, sizes: () -> Int) -> [String] {
    let bytes = Array(text.utf8)
    var result: [String] = []
    var start = 0
    while start < bytes.count {
        var end = min(bytes.count, start + sizes())
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        result.append(String(decoding: bytes[start..<end], as: UTF8.self))
        start = end
    }
    return result
}

func clockOverheadNanos() -> Double {
    var samples: [Double] = []
    for _ in 0..<10_000 {
        let a = monotonicNanos()
        let b = monotonicNanos()
        samples.append(Double(b - a))
    }
    return median(samples)
}

if let file = files.last {
    let whole = masker.mask(file.text).text
    var rng = SplitMix64(seed: options.seed ^ 0x5EED)
    let chunkings: [(String, [String])] = [
        ("sse-1-20", pieces(of: file.text) { Int.random(in: 1...20, using: &rng) }),
        ("fixed-64", pieces(of: file.text) { 64 }),
    ]
    // Warm-up on the 64 KB file.
    if files.count > 1 {
        var warm = masker.makeRedactor()
        for piece in pieces(of: files[1].text, sizes: { 16 }) { sink &+= warm.feed(piece).utf8.count }
        sink &+= warm.finish().utf8.count
    }
    let overhead = clockOverheadNanos()
    var results: [[String: Any]] = []
    for (name, chunks) in chunkings {
        var redactor = masker.makeRedactor()
        var output = ""
        output.reserveCapacity(whole.utf8.count + 1024)
        var nanos = [Double](repeating: 0, count: chunks.count)
        let started = monotonicNanos()
        for (index, chunk) in chunks.enumerated() {
            let t0 = monotonicNanos()
            let released = redactor.feed(chunk)
            let t1 = monotonicNanos()
            nanos[index] = Double(t1 - t0)
            output += released
        }
        let f0 = monotonicNanos()
        output += redactor.finish()
        let finishNanos = Double(monotonicNanos() - f0)
        let wall = Double(monotonicNanos() - started) / 1e9
        nanos.sort()
        let us = { (p: Double) in rounded(percentile(nanos, p) / 1000, 2) }
        let mean = nanos.reduce(0, +) / Double(max(nanos.count, 1)) / 1000
        let row: [String: Any] = [
            "chunking": name, "input_bytes": file.bytes, "feeds": chunks.count,
            "p50_us": us(50), "p90_us": us(90), "p99_us": us(99), "p999_us": us(99.9), "max_us": rounded((nanos.last ?? 0) / 1000, 2),
            "mean_us": rounded(mean, 3), "finish_us": rounded(finishNanos / 1000, 2),
            "largest_hold_bytes": redactor.largestHold,
            "output_equals_whole_text_masking": output == whole,
            "wall_s": rounded(wall, 3),
        ]
        results.append(row)
        log(String(format: "streaming %@: %d feeds of the %d B file: p50 %.2f µs, p99 %.2f µs, p99.9 %.2f µs, max %.1f µs; largest hold %d B; output %@ whole-text masking",
                   name as NSString, chunks.count, file.bytes, us(50), us(99), us(99.9), (nanos.last ?? 0) / 1000, redactor.largestHold,
                   (output == whole ? "equals" : "DIFFERS FROM") as NSString))
    }
    report["streaming"] = [
        "what": "time of each StreamingRedactor.feed() call (the latency masking adds to one delta), over the 1 MB corpus file",
        "clock_overhead_ns": overhead,
        "results": results,
    ]
}

// MARK: quality

let quality = QualityEvaluation(records: records, masker: masker)
var qualityJSON = quality.json()

// The streaming redactor must give the same output as whole-text masking on every labelled
// record too (the unit tests stream the first 400 records in many chunkings; this streams all).
var streamRNG = SplitMix64(seed: options.seed ^ 0xC0FFEE)
var streamMismatches: [String] = []
for record in records {
    var redactor = masker.makeRedactor()
    var output = ""
    for piece in pieces(of: record.text, sizes: { Int.random(in: 1...20, using: &streamRNG) }) { output += redactor.feed(piece) }
    output += redactor.finish()
    if output != masker.mask(record.text).text { streamMismatches.append(record.id) }
}
qualityJSON["streamed_equals_whole_text"] = ["records": records.count, "mismatches": streamMismatches]
report["quality"] = qualityJSON
log(quality.table())
log("streaming check: \(records.count - streamMismatches.count)/\(records.count) labelled records stream (1–20 byte pieces) to the whole-text output\(streamMismatches.isEmpty ? "" : "; differ: \(streamMismatches.prefix(20))")")

report["sink"] = sink & 1 // keeps the optimiser from dropping the timed work
let text = jsonText(report) + "\n"
if let out = options.out {
    guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else { fail("cannot write \(out)") }
} else {
    FileHandle.standardOutput.write(Data(text.utf8))
}
