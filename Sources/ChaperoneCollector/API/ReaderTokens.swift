import ChaperoneCore
import Crypto
import Foundation

/// Bearer tokens allowed to read events, sessions and the log, from a file of lines
/// `name: token` (or bare tokens; `#` starts a comment). Only SHA-256 digests are kept in
/// memory, and comparison is by digest, so timing says nothing about a token's bytes.
public struct ReaderTokens: Sendable {
    private let digests: [String: String]

    public static let none = ReaderTokens(digests: [:])

    private init(digests: [String: String]) {
        self.digests = digests
    }

    public static func load(file: String) throws -> ReaderTokens {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(field: "readers.tokens_file", message: "cannot read \(file): \(error.localizedDescription)")
        }
        var digests: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let name: String
            let token: String
            if let colon = line.firstIndex(of: ":") {
                name = line[..<colon].trimmingCharacters(in: .whitespaces)
                token = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            } else {
                name = "reader-\(number + 1)"
                token = line
            }
            guard token.count >= 16 else {
                throw ConfigError(field: "readers.tokens_file", message: "\(file) line \(number + 1): tokens must be at least 16 characters")
            }
            digests[Self.digest(token)] = name
        }
        return ReaderTokens(digests: digests)
    }

    public var isEmpty: Bool { self.digests.isEmpty }

    /// The reader's name if the token is one of ours.
    public func reader(for token: String) -> String? {
        self.digests[Self.digest(token)]
    }

    private static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).hexString
    }
}
