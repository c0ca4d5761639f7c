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
        let token = "ghp_" + String(repeating: "a1B2c3", count: 5) + "ZZZZZZ"
        let a = self.masker.mask("x \(token) y")
        let b = self.masker.mask("another \(token)")
        #expect(a.findings.count == 1)
        #expect(a.findings.first?.placeholder == b.findings.first?.placeholder)
        let other = SecretMasker(fingerprinter: Fingerprinter(key: Array("other".utf8))).mask(token)
        #expect(other.findings.first?.fingerprint != a.findings.first?.fingerprint)
        #expect(a.text.hasPrefix("x [REDACTED:github-pat:"))
        #expect(a.findings.first?.confidence == .medium, "an invalid checksum lowers confidence")
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
