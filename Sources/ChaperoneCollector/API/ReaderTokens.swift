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
        var stamp: [UInt8]?
        var checked: ContinuousClock.Instant?
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
        if FileManager.default.fileExists(atPath: path) {
            let tokens = try ReaderTokens.load(file: path)
            self.state.withLockedValue { $0 = State(tokens: tokens, stamp: Self.stamp(path), checked: .now) }
        } else {
            logger.warning("readers.tokens_file_missing", metadata: ["file": "\(path)", "effect": "reading is off until the file appears"])
        }
    }

    public var tokens: ReaderTokens {
        guard let path else { return .none }
        let now = ContinuousClock.now
        let due = self.state.withLockedValue { state -> Bool in
            if let checked = state.checked, now - checked < Self.checkEvery { return false }
            state.checked = now
            return true
        }
        if due { self.reload(path) }
        return self.state.withLockedValue { $0.tokens }
    }

    private func reload(_ path: String) {
        let stamp = Self.stamp(path)
        guard stamp != self.state.withLockedValue({ $0.stamp }) else { return }
        guard stamp != nil else {
            self.state.withLockedValue { $0.tokens = .none; $0.stamp = nil }
            self.logger.warning("readers.tokens_file_missing", metadata: ["file": "\(path)", "effect": "reading is off until the file appears"])
            return
        }
        do {
            let tokens = try ReaderTokens.load(file: path)
            self.state.withLockedValue { $0.tokens = tokens; $0.stamp = stamp }
            self.logger.info("readers.tokens_loaded", metadata: ["file": "\(path)", "empty": "\(tokens.isEmpty)"])
        } catch {
            self.state.withLockedValue { $0.stamp = stamp }
            self.logger.error("readers.tokens_file_invalid", metadata: ["file": "\(path)", "error": "\(error)", "effect": "keeping the previous tokens"])
        }
    }

    /// The file's bytes' digest; nil when it cannot be read. (A mounted Secret is replaced by a
    /// symlink swap, so modification times alone are not a reliable signal.)
    private static func stamp(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array(CanonicalJSON.sha256Hex(Array($0)).utf8) }
    }
}
