import ChaperoneCore
import Foundation

/// Bearer tokens allowed to read events, sessions and the log, from a file of lines
/// `name: token` (or bare tokens; `#` starts a comment). Only SHA-256 digests are kept in
/// memory, and comparison is by digest, so timing says nothing about a token's bytes.
public struct ReaderTokens: Sendable {
    private let digests: Set<String>

    public static let none = ReaderTokens(digests: [])

    private init(digests: Set<String>) {
        self.digests = digests
    }

    public static func load(file: String) throws -> ReaderTokens {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(field: "readers.tokens_file", message: "cannot read \(file): \(error.localizedDescription)")
        }
        var digests: Set<String> = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            // `name: token`; the name is for the people who keep the file.
            let token = line.firstIndex(of: ":").map { line[line.index(after: $0)...].trimmingCharacters(in: .whitespaces) } ?? line
            guard token.count >= 16 else {
                throw ConfigError(field: "readers.tokens_file", message: "\(file) line \(number + 1): tokens must be at least 16 characters")
            }
            digests.insert(Self.digest(token))
        }
        return ReaderTokens(digests: digests)
    }

    public var isEmpty: Bool { self.digests.isEmpty }

    public func accepts(_ token: String) -> Bool {
        self.digests.contains(Self.digest(token))
    }

    private static func digest(_ token: String) -> String {
        CanonicalJSON.sha256Hex(Array(token.utf8))
    }
}
