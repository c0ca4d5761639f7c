import Foundation
import Testing
@testable import ChaperoneMasking

/// Recall and precision of whole-text masking on the labelled corpus in
/// Tests/Fixtures/masking/labelled.jsonl, as its README defines them (the same definitions as
/// `chaperone-masking-bench`, which reports them per detector in docs/benchmarks.md):
///
/// - a labelled secret is found when its value no longer occurs in the output and a finding names
///   its detector, one of its `also` ids or one of the record's `also` ids;
/// - a finding is true when what it masked overlaps a labelled secret; every finding in a
///   negative record is false.
@Suite struct QualityTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/masking/labelled.jsonl")

    let masker = SecretMasker(fingerprinter: Fingerprinter(key: Array("quality-key".utf8)))

    struct Record {
        var id: String
        var positive: Bool
        var category: String
        var text: String
        /// (detector, value, acceptable ids)
        var secrets: [(String, String, Set<String>)]
    }

    static func records() throws -> [Record] {
        let data = try Data(contentsOf: Self.fixture)
        return try data.split(separator: UInt8(ascii: "\n")).map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            let recordAlso = object["also"] as? [String] ?? []
            let secrets = (object["secrets"] as? [[String: Any]] ?? []).map { secret in
                let detector = secret["detector"] as? String ?? ""
                return (detector, secret["value"] as? String ?? "", Set([detector] + (secret["also"] as? [String] ?? []) + recordAlso))
            }
            return Record(
                id: object["id"] as? String ?? "", positive: object["kind"] as? String == "positive",
                category: object["category"] as? String ?? "", text: object["text"] as? String ?? "", secrets: secrets
            )
        }
    }

    /// Every occurrence of `needle` in `text`, as UTF-8 offsets.
    static func ranges(of needle: String, in text: String) -> [Range<Int>] {
        let haystack = Array(text.utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty, pattern.count <= haystack.count else { return [] }
        return (0...(haystack.count - pattern.count)).filter { haystack[$0] == pattern[0] && haystack[$0..<($0 + pattern.count)].elementsEqual(pattern) }
            .map { $0..<($0 + pattern.count) }
    }

    @Test func recallAndPrecisionOnTheLabelledCorpus() throws {
        let records = try Self.records()
        #expect(records.count >= 3000, "the corpus is incomplete: \(records.count) records")
        var secrets = 0, found = 0, trueFindings = 0, falseFindings = 0
        var misses: [String: [String]] = [:]
        var falsePositives: [String: [String]] = [:]
        for record in records {
            let masked = self.masker.mask(record.text, keepOriginals: true)
            guard record.positive else {
                falseFindings += masked.findings.count
                for finding in masked.findings {
                    falsePositives[finding.detector, default: []].append("\(record.id) [\(record.category)]: \(masked.text.prefix(160))")
                }
                #expect(!masked.findings.isEmpty || masked.text == record.text, "\(record.id) changed without a finding")
                continue
            }
            let labelled = record.secrets.flatMap { Self.ranges(of: $0.1, in: record.text) }
            for (detector, value, acceptable) in record.secrets {
                secrets += 1
                if !masked.text.contains(value) && masked.findings.contains(where: { acceptable.contains($0.detector) }) {
                    found += 1
                } else {
                    misses[detector, default: []].append("\(record.id): \(value.prefix(14))… found \(masked.findings.map(\.detector))")
                }
            }
            for finding in masked.findings {
                let maskedRanges = Self.ranges(of: masked.originals[finding.placeholder] ?? "", in: record.text)
                if maskedRanges.contains(where: { m in labelled.contains { $0.overlaps(m) } }) {
                    trueFindings += 1
                } else {
                    falseFindings += 1
                    falsePositives[finding.detector, default: []].append("\(record.id) [\(record.category)]: \(masked.text.prefix(160))")
                }
            }
        }
        let recall = Double(found) / Double(max(secrets, 1))
        let precision = Double(trueFindings) / Double(max(trueFindings + falseFindings, 1))
        func listing(_ title: String, _ items: [String: [String]]) -> String {
            items.keys.sorted().map { id in
                "\(title) \(id) (\(items[id]!.count)):\n" + items[id]!.prefix(8).map { "    " + $0.replacingOccurrences(of: "\n", with: "⏎") }.joined(separator: "\n")
            }.joined(separator: "\n")
        }
        print(String(format: "masking quality: recall %.2f%% (%d/%d secrets), precision %.2f%% (%d false of %d findings), %d records",
                     recall * 100, found, secrets, precision * 100, falseFindings, trueFindings + falseFindings, records.count))
        #expect(recall >= 0.99, "recall \(recall) < 0.99\n\(listing("missed", misses))")
        #expect(precision >= 0.99, "precision \(precision) < 0.99\n\(listing("false", falsePositives))")
    }

    /// Shapes next to the corpus's hard negatives that must stay positives.
    @Test(arguments: [
        // A PEM key flattened to one line (spaces instead of line breaks), as env files carry it.
        ("private-key", "KEY=-----BEGIN RSA PRIVATE KEY----- MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK -----END RSA PRIVATE KEY-----"),
        // A bearer token at the end of a sentence.
        ("http-bearer-token", "Send Authorization: Bearer 8fGk2Lm9Qz7Xw4Vt1Rb6Nc3Jh5Pd0Sy. Then retry."),
        // A generic secret at the end of a sentence.
        ("generic-secret-assignment", "I set client_secret=Zq81LmN0pq7RtY5cW2. It still fails."),
    ])
    func nearNegativeShapesStillMask(_ detector: String, _ text: String) {
        let masked = self.masker.mask(text)
        #expect(masked.findings.contains { $0.detector == detector }, "\(masked.findings.map(\.detector)) in \(text)")
    }

    @Test(arguments: [
        "The header is always `-----BEGIN OPENSSH PRIVATE KEY-----`; convert it with ssh-keygen.",
        "PRIVATE_KEY=\"-----BEGIN PRIVATE KEY-----\\n<paste key here>\\n-----END PRIVATE KEY-----\\n\"",
        "-----BEGIN EC PRIVATE KEY-----\n...\n-----END EC PRIVATE KEY-----",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        "token: xoxb-not-a-real-token-this-will-not-work",
        "OPENAI_API_KEY: op://Engineering/openai/credential",
        "{\"nextPageToken\": \"CkQKDmNyZWF0ZWRfYXQSMgoQ8s7aZ\"}",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-Ab12Cd",
    ])
    func documentedHardNegativesStayUnchanged(_ text: String) {
        let masked = self.masker.mask(text)
        #expect(masked.findings.isEmpty, "\(masked.findings.map(\.detector)) in \(text)")
    }
}
