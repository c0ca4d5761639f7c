import ChaperoneMasking
import Foundation

/// One line of Tests/Fixtures/masking/labelled.jsonl.
struct LabelledRecord {
    struct Secret {
        var detector: String
        var value: String
        var also: [String]
    }

    var id: String
    var positive: Bool
    var category: String
    var text: String
    var secrets: [Secret]
    var also: [String]

    static func load(_ url: URL) -> [LabelledRecord] {
        guard let data = try? Data(contentsOf: url) else { fail("cannot read \(url.path)") }
        var records: [LabelledRecord] = []
        for (number, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let id = object["id"] as? String, let kind = object["kind"] as? String,
                  let category = object["category"] as? String, let text = object["text"] as? String,
                  let secrets = object["secrets"] as? [[String: Any]]
            else { fail("\(url.path):\(number + 1): not a labelled record") }
            records.append(LabelledRecord(
                id: id, positive: kind == "positive", category: category, text: text,
                secrets: secrets.map {
                    Secret(detector: $0["detector"] as? String ?? "", value: $0["value"] as? String ?? "", also: $0["also"] as? [String] ?? [])
                },
                also: object["also"] as? [String] ?? []
            ))
        }
        return records
    }
}

/// Recall and precision of whole-text masking on the labelled corpus, as defined in
/// Tests/Fixtures/masking/README.md (mirrored in Tests/ChaperoneMaskingTests/QualityTests.swift):
///
/// - a labelled secret is *found* when its value no longer occurs in the output and a finding
///   names its detector, one of the secret's `also` ids or one of the record's `also` ids;
/// - a finding is *true* when what it masked overlaps a labelled secret in the text; every
///   finding in a negative record is false;
/// - a negative record passes when it has no finding and its text is unchanged.
///
/// recall = found secrets / labelled secrets; precision = true findings / all findings.
struct QualityEvaluation {
    struct Miss {
        var record: String
        var category: String
        var detector: String
        var value: String
        var reason: String
        var found: [String]
    }

    struct FalsePositive {
        var record: String
        var category: String
        var detector: String
        var excerpt: String
    }

    var secrets: [String: Int] = [:]
    var found: [String: Int] = [:]
    var trueFindings: [String: Int] = [:]
    var falseFindings: [String: Int] = [:]
    var misses: [Miss] = []
    var falsePositives: [FalsePositive] = []
    var positiveRecords = 0
    var negativeRecords = 0
    var negativesFailed = 0
    var seconds = 0.0

    var totalSecrets: Int { self.secrets.values.reduce(0, +) }
    var totalFound: Int { self.found.values.reduce(0, +) }
    var totalTrue: Int { self.trueFindings.values.reduce(0, +) }
    var totalFalse: Int { self.falseFindings.values.reduce(0, +) }
    var recall: Double { self.totalSecrets == 0 ? 1 : Double(self.totalFound) / Double(self.totalSecrets) }
    var precision: Double { self.totalTrue + self.totalFalse == 0 ? 1 : Double(self.totalTrue) / Double(self.totalTrue + self.totalFalse) }

    init(records: [LabelledRecord], masker: SecretMasker) {
        let started = monotonicNanos()
        for record in records {
            let masked = masker.mask(record.text, keepOriginals: true)
            if !record.positive {
                self.negativeRecords += 1
                if !masked.findings.isEmpty || masked.text != record.text { self.negativesFailed += 1 }
                for finding in masked.findings {
                    self.falseFindings[finding.detector, default: 0] += 1
                    self.falsePositives.append(FalsePositive(
                        record: record.id, category: record.category, detector: finding.detector,
                        excerpt: Self.excerpt(of: finding, in: record.text, masker: masker)
                    ))
                }
                continue
            }
            self.positiveRecords += 1
            let secretRanges = record.secrets.flatMap { Self.ranges(of: $0.value, in: record.text) }
            for secret in record.secrets {
                self.secrets[secret.detector, default: 0] += 1
                let allowed = Set([secret.detector] + secret.also + record.also)
                let gone = !masked.text.contains(secret.value)
                let named = masked.findings.contains { allowed.contains($0.detector) }
                if gone && named {
                    self.found[secret.detector, default: 0] += 1
                } else {
                    self.misses.append(Miss(
                        record: record.id, category: record.category, detector: secret.detector, value: secret.value,
                        reason: gone ? "masked, but by \(masked.findings.map(\.detector))" : (named ? "value survives" : "not found"),
                        found: masked.findings.map(\.detector)
                    ))
                }
            }
            for finding in masked.findings {
                let original = masked.originals[finding.placeholder] ?? ""
                let maskedRanges = Self.ranges(of: original, in: record.text)
                if maskedRanges.contains(where: { m in secretRanges.contains { $0.overlaps(m) } }) {
                    self.trueFindings[finding.detector, default: 0] += 1
                } else {
                    self.falseFindings[finding.detector, default: 0] += 1
                    self.falsePositives.append(FalsePositive(
                        record: record.id, category: record.category, detector: finding.detector,
                        excerpt: Self.excerpt(of: finding, in: record.text, masker: masker)
                    ))
                }
            }
        }
        self.seconds = Double(monotonicNanos() - started) / 1e9
    }

    /// Every occurrence of `needle` in `text`, as UTF-8 offsets.
    static func ranges(of needle: String, in text: String) -> [Range<Int>] {
        let haystack = Array(text.utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty, pattern.count <= haystack.count else { return [] }
        var result: [Range<Int>] = []
        for start in 0...(haystack.count - pattern.count) where haystack[start] == pattern[0] {
            if haystack[start..<(start + pattern.count)].elementsEqual(pattern) { result.append(start..<(start + pattern.count)) }
        }
        return result
    }

    /// The words around a false positive, with the placeholder in place of what was masked.
    static func excerpt(of finding: Finding, in text: String, masker: SecretMasker) -> String {
        let masked = masker.mask(text).text
        guard let range = masked.range(of: finding.placeholder) else { return String(masked.prefix(120)) }
        let before = masked[..<range.lowerBound].suffix(60)
        let after = masked[range.upperBound...].prefix(40)
        return (before + finding.placeholder + after).replacingOccurrences(of: "\n", with: "⏎")
    }

    var detectorIDs: [String] {
        Set(self.secrets.keys).union(self.trueFindings.keys).union(self.falseFindings.keys).sorted()
    }

    func json() -> [String: Any] {
        var perDetector: [String: Any] = [:]
        for id in self.detectorIDs {
            let secrets = self.secrets[id, default: 0], found = self.found[id, default: 0]
            let tp = self.trueFindings[id, default: 0], fp = self.falseFindings[id, default: 0]
            perDetector[id] = [
                "secrets": secrets, "found": found,
                "recall": secrets == 0 ? NSNull() : rounded(Double(found) / Double(secrets), 4) as Any,
                "true_findings": tp, "false_findings": fp,
                "precision": tp + fp == 0 ? NSNull() : rounded(Double(tp) / Double(tp + fp), 4) as Any,
            ]
        }
        return [
            "records": ["positive": self.positiveRecords, "negative": self.negativeRecords],
            "secrets": self.totalSecrets, "found": self.totalFound,
            "true_findings": self.totalTrue, "false_findings": self.totalFalse,
            "negatives_with_findings": self.negativesFailed,
            "recall": rounded(self.recall, 4), "precision": rounded(self.precision, 4),
            "per_detector": perDetector,
            "misses": self.misses.map {
                ["record": $0.record, "category": $0.category, "detector": $0.detector, "reason": $0.reason,
                 "value_prefix": String($0.value.prefix(12)) + "…", "found": $0.found] as [String: Any]
            },
            "false_positives": self.falsePositives.map {
                ["record": $0.record, "category": $0.category, "detector": $0.detector, "excerpt": $0.excerpt]
            },
            "seconds": rounded(self.seconds, 3),
        ]
    }

    func table() -> String {
        var lines = ["quality: \(self.positiveRecords) positive records (\(self.totalSecrets) secrets), \(self.negativeRecords) negative records"]
        lines.append(String(format: "  recall %.2f%% (%d/%d)  precision %.2f%% (%d true, %d false findings)",
                            self.recall * 100, self.totalFound, self.totalSecrets, self.precision * 100, self.totalTrue, self.totalFalse))
        lines.append("  " + "detector".padding(toLength: 36, withPad: " ", startingAt: 0) + " secrets  found  recall   TP   FP  precision")
        for id in self.detectorIDs {
            let secrets = self.secrets[id, default: 0], found = self.found[id, default: 0]
            let tp = self.trueFindings[id, default: 0], fp = self.falseFindings[id, default: 0]
            let recall = secrets == 0 ? "     -" : String(format: "%5.1f%%", Double(found) / Double(secrets) * 100)
            let precision = tp + fp == 0 ? "     -" : String(format: "%5.1f%%", Double(tp) / Double(tp + fp) * 100)
            lines.append("  " + id.padding(toLength: 36, withPad: " ", startingAt: 0)
                         + String(format: " %7d %6d ", secrets, found) + recall + String(format: " %4d %4d ", tp, fp) + "   " + precision)
        }
        for miss in self.misses {
            lines.append("  miss  \(miss.detector) [\(miss.record), \(miss.category)]: \(miss.reason); value \(miss.value.prefix(16))…")
        }
        for fp in self.falsePositives {
            lines.append("  false \(fp.detector) [\(fp.record), \(fp.category)]: \(fp.excerpt)")
        }
        return lines.joined(separator: "\n")
    }
}
