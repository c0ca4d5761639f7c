import ArgumentParser
import ChaperoneCore
import ChaperoneMasking
import Foundation

/// `chaperonectl mask`: the proxy's masking engine and policy on stdin or files, so an operator
/// can see what a policy would do to real text before deploying it.
struct MaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mask",
        abstract: "Mask secrets in text with the same detectors and policy as chaperone-proxy.",
        discussion: """
        Reads the files given (or standard input) and prints the masked text. Secrets become
        [REDACTED:<detector>:<fingerprint>]; the fingerprint is an HMAC of the secret under the
        installation key (--fingerprint-key-file, the same file the proxy uses), so the same secret
        gives the same placeholder here and in the audit log. Without a key file a random key is
        used and fingerprints differ from run to run.

        --json prints, per input, the masked text, each finding (detector, confidence,
        fingerprint) and the policy rules that matched, instead of the bare text.
        --jsonl treats every input line as a JSON string and prints each masked string as JSON,
        one per line (for corpora and log files).

        Exit status: 0 when nothing was found, 1 when something was masked or a rule matched,
        2 on bad input or a bad policy file.
        """
    )

    @Option(name: .long, help: "A policy file (YAML), as given to the proxy in policy.file.")
    var policy: String?

    @Flag(name: .long, help: "Do not apply the built-in rule pack.")
    var noBuiltinRules = false

    @Option(name: .long, help: "The installation's fingerprint key file.")
    var fingerprintKeyFile: String?

    @Flag(name: .long, help: "Print findings and decisions as JSON.")
    var json = false

    @Flag(name: .long, help: "Each input line is a JSON string; print each masked line as a JSON string.")
    var jsonl = false

    @Argument(help: "Files to mask (default: standard input).")
    var files: [String] = []

    func validate() throws {
        if self.json && self.jsonl { throw ValidationError("--json and --jsonl are exclusive") }
    }

    func run() throws {
        let fingerprinter: Fingerprinter
        if let path = self.fingerprintKeyFile {
            guard let key = FileManager.default.contents(atPath: path), !key.isEmpty else {
                throw CleanExit.message("error: cannot read the fingerprint key file \(path)")
            }
            fingerprinter = Fingerprinter(key: Array(key))
        } else {
            fingerprinter = .ephemeral()
        }
        let masker = SecretMasker(fingerprinter: fingerprinter)
        let policy: Policy
        do {
            policy = try Policy.load(file: self.policy, builtinRules: !self.noBuiltinRules)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let engine = PolicyEngine(policy: policy, masker: masker)
        var inputs: [(String, Data)] = []
        if self.files.isEmpty {
            inputs.append(("-", FileHandle.standardInput.readDataToEndOfFile()))
        } else {
            for file in self.files {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("error: cannot read \(file)\n".utf8))
                    throw ExitCode(2)
                }
                inputs.append((file, data))
            }
        }
        var found = false
        for (name, data) in inputs {
            let text = String(decoding: data, as: UTF8.self)
            if self.jsonl {
                for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
                    guard let value = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) as? String else {
                        FileHandle.standardError.write(Data("error: \(name):\(number + 1): not a JSON string\n".utf8))
                        throw ExitCode(2)
                    }
                    let result = engine.evaluate(texts: [value], context: .init(direction: .request))
                    found = found || result.isNotable
                    print(Self.jsonString(result.texts[0]))
                }
                continue
            }
            let result = engine.evaluate(texts: [text], context: .init(direction: .request))
            found = found || result.isNotable
            if self.json {
                print(Self.report(file: name, result))
            } else {
                FileHandle.standardOutput.write(Data(result.texts[0].utf8))
            }
        }
        if found { throw ExitCode(1) }
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func report(file: String, _ result: PolicyResult) -> String {
        let findings: [[String: Any]] = result.findings.map {
            ["detector": $0.detector, "confidence": $0.confidence.rawValue, "fingerprint": $0.fingerprint, "placeholder": $0.placeholder]
        }
        var object: [String: Any] = ["file": file, "masked": result.texts[0], "findings": findings]
        object["rules"] = result.matchedRules.map { ["id": $0.id, "action": $0.action.rawValue, "severity": $0.severity.rawValue, "message": $0.message] }
        object["action"] = result.action.rawValue
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
