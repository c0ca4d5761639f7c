import Foundation
import Testing
@testable import ChaperoneMasking

@Suite struct DetectorTests {
    let masker = SecretMasker(fingerprinter: Fingerprinter(key: Array("test-key".utf8)))

    @Test func everyBuiltInDetectorFindsItsFormat() {
        var rng = SeededGenerator(seed: 7)
        let samples = Samples.all(using: &rng)
        var covered = Set<String>()
        for (id, secret, template) in samples {
            let text = template.replacingOccurrences(of: "%s", with: secret)
            let masked = self.masker.mask(text)
            #expect(!masked.text.contains(secret), "\(id): secret survived in \(masked.text)")
            #expect(masked.findings.contains { $0.detector == id }, "\(id): found \(masked.findings.map(\.detector)) in \(text)")
            covered.insert(id)
        }
        let all = Set(DetectorCatalog.builtIn.map(\.id))
        #expect(all.count >= 40)
        #expect(covered == all, "no sample for \(all.subtracting(covered).sorted())")
    }

    @Test func placeholderNamesDetectorAndKeyedFingerprint() {
        var rng = SeededGenerator(seed: 4)
        let token = Samples.githubToken("ghp_", using: &rng)
        let a = self.masker.mask("x \(token) y")
        let b = self.masker.mask("another \(token)")
        #expect(a.findings.count == 1)
        #expect(a.findings.first?.placeholder == b.findings.first?.placeholder)
        let other = SecretMasker(fingerprinter: Fingerprinter(key: Array("other".utf8))).mask(token)
        #expect(other.findings.first?.fingerprint != a.findings.first?.fingerprint)
        #expect(a.text.hasPrefix("x [REDACTED:github-pat:"))
        #expect(a.findings.first?.confidence == .high, "a valid checksum gives high confidence")
        let wrongChecksum = "ghp_" + String(repeating: "a1B2c3", count: 5) + "ZZZZZZ"
        #expect(!self.masker.mask("x \(wrongChecksum) y").changed, "a classic token whose checksum fails is a look-alike")
    }

    @Test(arguments: [
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "password=${DB_PASSWORD}",
        "api_key: <your-api-key>",
        "token = \"changeme\"",
        "secret: xxxxxxxxxxxxxxxx",
        "def get_token(self): return self._token_cache.get(key)",
        "tokenizer = AutoTokenizer.from_pretrained(model_name)",
        "postgres://user@host/db and redis://localhost:6379",
        "postgres://postgres:postgres@localhost:5432/dev",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sk-learn is not a key, nor is task-sk or ask",
        "max_tokens = 1024",
        "password_reset_url: https://example.com/reset",
        "Basic authentication is simple",
        "Bearer token authentication",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "secret = os.environ[\"API_SECRET\"]",
        "image: nginx@sha256:0f6b5c1c5c5a1c4f1d7b0d4c8e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
    ])
    func hardNegativesStayUnchanged(_ text: String) {
        let masked = self.masker.mask(text)
        #expect(masked.findings.isEmpty, "\(masked.findings.map(\.detector)) in \(text)")
        #expect(masked.text == text)
    }

    @Test func policyCanExemptADetector() {
        let text = "key AKIA" + "Q7W3E5R2T6Y4U2I7"
        #expect(self.masker.mask(text).changed)
        #expect(!self.masker.mask(text, selection: DetectorSelection(exempt: ["aws-access-key-id"])).changed)
    }

    @Test func keywordAutomatonFindsOverlappingKeywords() {
        let automaton = KeywordAutomaton(keywords: ["he", "she", "his", "hers"])
        var hits: [(String, Int)] = []
        Array("uSHErs".utf8).withUnsafeBufferPointer { bytes in
            automaton.scan(bytes) { id, end in hits.append((String(decoding: automaton.keywords[id], as: UTF8.self), end)) }
        }
        #expect(hits.map(\.0).sorted() == ["he", "hers", "she"])
    }

    /// Long texts are walked as four interleaved quarters; every occurrence must still be reported
    /// exactly once, including keywords that straddle a quarter boundary.
    @Test func keywordAutomatonSplitWalkFindsEveryOccurrenceOnce() {
        let keywords = ["token", "sk", "-----begin", "https://hooks.slack.com/services/", "aws", "q~"]
        let automaton = KeywordAutomaton(keywords: keywords)
        var rng = SeededGenerator(seed: 21)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz-:/.~ ".utf8)
        for length in [1, 31, 255, 256, 300, 511, 512, 513, 1000, 1023, 1024, 2049, 4099, 8191] {
            for _ in 0..<20 {
                var text = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
                // Plant keywords, some across a quarter boundary.
                for _ in 0..<(length / 40 + 1) {
                    let word = Array(keywords.randomElement(using: &rng)!.utf8)
                    guard word.count <= text.count else { continue }
                    let boundary = text.count / 4 * Int.random(in: 1...3, using: &rng)
                    let at = Bool.random(using: &rng) ? max(0, min(text.count - word.count, boundary - Int.random(in: 0...word.count, using: &rng)))
                                                      : Int.random(in: 0...(text.count - word.count), using: &rng)
                    text.replaceSubrange(at..<(at + word.count), with: word)
                }
                var expected: [String] = []
                for (id, word) in keywords.enumerated() {
                    let pattern = Array(word.utf8)
                    for end in stride(from: pattern.count, through: text.count, by: 1) where text[(end - pattern.count)..<end].elementsEqual(pattern) {
                        expected.append("\(id)@\(end)")
                    }
                }
                var found: [String] = []
                text.withUnsafeBufferPointer { bytes in automaton.scan(bytes) { id, end in found.append("\(id)@\(end)") } }
                #expect(found.sorted() == expected.sorted(), "length \(length)")
            }
        }
    }

    @Test func restorerPutsOriginalsBackAcrossChunks() {
        var rng = SeededGenerator(seed: 3)
        let token = Samples.githubToken("ghp_", using: &rng)
        let masked = self.masker.mask("use \(token) please", keepOriginals: true)
        let placeholder = masked.findings[0].placeholder
        let echoed = "Here: \(placeholder) and [REDACTED:other:00000000] and [brackets]"
        var restorer = PlaceholderRestorer(originals: masked.originals)
        var output = ""
        for character in echoed { output += restorer.feed(String(character)) }
        output += restorer.finish()
        #expect(output == "Here: \(token) and [REDACTED:other:00000000] and [brackets]")
        #expect(restorer.restore(echoed) == output)
    }
}
