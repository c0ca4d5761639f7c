import ChaperoneCore
import Foundation
public import Logging
import NIOConcurrencyHelpers

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
        return try Self.parse(text, file: file)
    }

    /// `name: token` lines; `file` names the source in errors.
    static func parse(_ text: String, file: String) throws(ConfigError) -> ReaderTokens {
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

/// `readers.tokens_file`, re-read when it changes (checked at most every few seconds, on use), so
/// that creating or rotating the readers Secret needs no restart. A file that does not exist
/// means reading is off; one that exists but is wrong keeps the previous tokens and says why.
public final class ReaderTokenFile: Sendable {
    private struct State {
        var tokens = ReaderTokens.none
        /// The file's bytes when last read (a mounted Secret is swapped by a symlink, so
        /// modification times are no reliable signal); nil while it does not exist.
        var contents: Data?
        var checked: ContinuousClock.Instant = .now
    }

    public let path: String?
    private let state = NIOLockedValueBox(State())
    private let logger: Logger
    static let checkEvery: Duration = .seconds(5)

    /// Reads the file once; a file that exists but cannot be used is a start-up error.
    public init(path: String?, logger: Logger) throws {
        self.path = path
        self.logger = logger
        guard let path else { return }
        guard let contents = FileManager.default.contents(atPath: path) else {
            logger.warning("readers.tokens_file_missing", metadata: ["file": "\(path)", "effect": "reading is off until the file appears"])
            return
        }
        let tokens = try ReaderTokens.parse(String(decoding: contents, as: UTF8.self), file: path)
        self.state.withLockedValue { $0 = State(tokens: tokens, contents: contents) }
    }

    public var tokens: ReaderTokens {
        guard let path else { return .none }
        let now = ContinuousClock.now
        let due = self.state.withLockedValue { state -> Bool in
            guard now - state.checked >= Self.checkEvery else { return false }
            state.checked = now
            return true
        }
        if due { self.reload(path) }
        return self.state.withLockedValue { $0.tokens }
    }

    private func reload(_ path: String) {
        let contents = FileManager.default.contents(atPath: path)
        guard contents != self.state.withLockedValue({ $0.contents }) else { return }
        guard let contents else {
            self.state.withLockedValue { $0.tokens = .none; $0.contents = nil }
            self.logger.warning("readers.tokens_file_missing", metadata: ["file": "\(path)", "effect": "reading is off until the file appears"])
            return
        }
        self.state.withLockedValue { $0.contents = contents }
        do {
            let tokens = try ReaderTokens.parse(String(decoding: contents, as: UTF8.self), file: path)
            self.state.withLockedValue { $0.tokens = tokens }
            self.logger.info("readers.tokens_loaded", metadata: ["file": "\(path)", "empty": "\(tokens.isEmpty)"])
        } catch {
            self.logger.error("readers.tokens_file_invalid", metadata: ["file": "\(path)", "error": "\(error)", "effect": "keeping the previous tokens"])
        }
    }
}
