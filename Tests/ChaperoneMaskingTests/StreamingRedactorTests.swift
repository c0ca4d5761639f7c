import Foundation
import Testing
@testable import ChaperoneMasking

/// The streaming redactor must give exactly what masking the whole text gives, however the text
/// is cut into pieces.
@Suite struct StreamingRedactorTests {
    let masker = SecretMasker(fingerprinter: Fingerprinter(key: Array("stream-key".utf8)))

    static func corpus() -> [String] {
        var rng = SeededGenerator(seed: 11)
        var texts = Samples.all(using: &rng).map { $0.2.replacingOccurrences(of: "%s", with: $0.1) }
        // Several secrets in one text, with prose, code and non-ASCII around them.
        texts.append(texts.shuffled(using: &rng).prefix(12).joined(separator: "\nÜbrigens: 日本語のテキスト — ok.\n"))
        // A run longer than the hold-back bound, with a token at its end.
        texts.append("blob " + String(repeating: "QUJD", count: 3000) + "/ghp_" + Samples.random(Samples.alnum, 36, using: &rng) + " end")
        // A private key whose END line never comes, longer than the block limit.
        texts.append("-----BEGIN RSA PRIVATE KEY-----\n" + String(repeating: Samples.random(Samples.b64, 64, using: &rng) + "\n", count: 300) + "tail")
        // An unfinished private key at the end of the text, and a lone BEGIN of a certificate.
        texts.append("see -----BEGIN CERTIFICATE-----\nMIIB\n and -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE")
        texts.append("partial header -----BEGIN RSA PRIV")
        texts.append("password = \"Xk82mP0qzLw5vN3r\" and token: 'Zq81LmN0pq7RtY5c' then DB_URL=mysql://root:Sup3rS3cret!x@db/app")
        if let url = Self.fixtureURL(), let data = try? Data(contentsOf: url) {
            for line in data.split(separator: UInt8(ascii: "\n")).prefix(400) {
                if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let text = object["text"] as? String {
                    texts.append(text)
                }
            }
        }
        return texts
    }

    static func fixtureURL() -> URL? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/masking/labelled.jsonl")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    func stream(_ text: String, sizes: inout some RandomNumberGenerator, maxPiece: Int) -> (String, [Finding], Int) {
        var redactor = self.masker.makeRedactor()
        var output = ""
        var characters = Substring(text)
        while !characters.isEmpty {
            let size = Int.random(in: 1...maxPiece, using: &sizes)
            let piece = characters.prefix(size)
            characters = characters.dropFirst(piece.count)
            output += redactor.feed(String(piece))
        }
        output += redactor.finish()
        return (output, redactor.findings, redactor.largestHold)
    }

    @Test func streamedOutputEqualsWholeTextMasking() {
        var rng = SeededGenerator(seed: 99)
        var largestHold = 0
        var chunkings = 0
        let texts = Self.corpus()
        for text in texts {
            let whole = self.masker.mask(text)
            for maxPiece in [1, 2, 3, 7, 16, 64, 512] {
                let rounds = maxPiece == 1 ? 1 : 3
                for _ in 0..<rounds {
                    let (streamed, findings, hold) = self.stream(text, sizes: &rng, maxPiece: maxPiece)
                    chunkings += 1
                    largestHold = max(largestHold, hold)
                    #expect(streamed == whole.text, "pieces ≤ \(maxPiece) differ for: \(text.prefix(200))")
                    #expect(findings == whole.findings)
                    if streamed != whole.text { return }
                }
            }
        }
        // Reported in docs/benchmarks.md by `make bench`; kept in the bound here.
        print("streaming redactor: \(texts.count) texts × \(chunkings / max(texts.count, 1)) chunkings; largest hold-back \(largestHold) bytes")
        #expect(largestHold <= SecretScanner.privateKeyLimit)
    }

    @Test func secretSplitIntoSingleBytesNeverLeaks() {
        var rng = SeededGenerator(seed: 5)
        let token = Samples.githubToken("ghp_", using: &rng)
        var redactor = self.masker.makeRedactor()
        var released = ""
        for character in "Your token is \(token), keep it safe." {
            released += redactor.feed(String(character))
            #expect(!released.contains("ghp_" + token.dropFirst(4).prefix(8)))
        }
        released += redactor.finish()
        #expect(released.hasPrefix("Your token is [REDACTED:github-pat:"))
        #expect(released.hasSuffix("], keep it safe."))
    }

    @Test func privateKeyIsHeldUntilItsEndLine() {
        var rng = SeededGenerator(seed: 8)
        let key = Samples.privateKey(using: &rng)
        var redactor = self.masker.makeRedactor()
        var released = redactor.feed("Here it is:\n")
        for line in key.split(separator: "\n") {
            released += redactor.feed(String(line) + "\n")
            #expect(!released.contains("-----BEGIN"))
        }
        released += redactor.finish()
        #expect(released.hasPrefix("Here it is:\n[REDACTED:private-key:"))
    }

    @Test func unfinishedPrivateKeyPastTheLimitIsMaskedNotReleased() {
        var redactor = self.masker.makeRedactor()
        var released = redactor.feed("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        let line = String(repeating: "b3BlbnNzaC1rZXktdjEAAAAA", count: 2) + "\n"
        for _ in 0..<(SecretScanner.privateKeyLimit / line.utf8.count + 5) { released += redactor.feed(line) }
        #expect(released.hasPrefix("[REDACTED:private-key:"))
        #expect(!released.contains("-----BEGIN"))
        #expect(redactor.heldBytes < SecretScanner.privateKeyLimit)
    }
}
