public import ChaperoneCore
public import Crypto
import CryptoExtras
import Foundation
public import Logging

/// The collector's Merkle log of stored records: every `interval` it folds the new leaves into
/// the frontier, signs a checkpoint (C2SP signed note, Ed25519), stores it and prints it on
/// stdout. A restart resumes from the last stored checkpoint's frontier.
public actor TransparencyLog {
    public let signer: CheckpointSigner
    private let store: EventStore
    private let origin: String
    private let logger: Logger
    private let output: @Sendable (String) -> Void
    private var frontier = MerkleFrontier()
    private var latest: StoredCheckpoint?

    public init(store: EventStore, signer: CheckpointSigner, origin: String, logger: Logger, output: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.signer = signer
        self.origin = origin
        self.logger = logger
        self.output = output
    }

    /// Loads the last checkpoint's frontier; a frontier that does not match its root is an error.
    public func resume() async throws {
        guard let last = try await self.store.checkpoints(limit: 1).first else { return }
        guard let frontier = MerkleFrontier(size: Int(last.size), encoded: last.frontier), frontier.root == last.rootHash else {
            throw StoreError.corrupt("the stored frontier of checkpoint \(last.size) does not match its root hash")
        }
        self.frontier = frontier
        self.latest = last
    }

    public var latestCheckpoint: StoredCheckpoint? { self.latest }

    /// Folds in the leaves stored since the last checkpoint and signs a new one if the tree grew.
    @discardableResult
    public func checkpoint() async throws -> StoredCheckpoint? {
        var grew = false
        while true {
            let leaves = try await self.store.leaves(from: Int64(self.frontier.size), limit: 10_000)
            if leaves.isEmpty { break }
            for leaf in leaves {
                guard leaf.index == Int64(self.frontier.size) else {
                    throw StoreError.corrupt("the log has no leaf \(self.frontier.size) (next stored is \(leaf.index))")
                }
                self.frontier.append(leaf.hash)
            }
            grew = true
        }
        guard grew || self.latest == nil else { return nil }
        let checkpoint = Checkpoint(origin: self.origin, size: self.frontier.size, rootHash: self.frontier.root)
        let note = try self.signer.sign(checkpoint)
        let stored = StoredCheckpoint(
            size: Int64(checkpoint.size), rootHash: checkpoint.rootHash, note: note, frontier: self.frontier.encoded,
            createdMicros: WallClock.nowMicroseconds())
        try await self.store.saveCheckpoint(stored)
        self.latest = stored
        var w = CanonicalJSONWriter()
        w.object { w in
            w.key("checkpoint") { $0.string(note) }
            w.key("kind") { $0.string("log.checkpoint") }
            w.key("root_hash") { $0.string(checkpoint.rootHash.hexString) }
            w.key("time") { $0.string(WallClock.rfc3339(microseconds: stored.createdMicros)) }
            w.key("tree_size") { $0.integer(checkpoint.size) }
        }
        self.output(String(decoding: w.bytes, as: UTF8.self))
        self.logger.info("log.checkpoint_signed", metadata: ["tree_size": "\(checkpoint.size)", "root_hash": "\(checkpoint.rootHash.hexString)"])
        return stored
    }
}

/// Reads the checkpoint signing key, or creates one in the data directory on first start.
public enum SigningKey {
    public static func load(file: String?, dataDirectory: String, logger: Logger) throws -> Curve25519.Signing.PrivateKey {
        if let file {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ConfigError(field: "log.signing_key_file", message: "cannot read \(file): \(error.localizedDescription)")
            }
            return try Self.parse(text, field: "log.signing_key_file")
        }
        let path = (dataDirectory as NSString).appendingPathComponent("checkpoint-signing.key")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            return try Self.parse(text, field: path)
        }
        let key = Curve25519.Signing.PrivateKey()
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            try (key.rawRepresentation.base64EncodedString() + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw ConfigError(field: "log.signing_key_file", message: "no key configured and cannot create \(path): \(error.localizedDescription)")
        }
        logger.warning("log.signing_key_created", metadata: ["path": "\(path)", "hint": "keep a copy: checkpoints signed with it verify only with its public key"])
        return key
    }

    static func parse(_ text: String, field: String) throws -> Curve25519.Signing.PrivateKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN") {
            do {
                return try Curve25519.Signing.PrivateKey(pemRepresentation: trimmed)
            } catch {
                throw ConfigError(field: field, message: "not an Ed25519 private key in PEM: \(error)")
            }
        }
        guard let raw = Data(base64Encoded: trimmed), raw.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw ConfigError(field: field, message: "expected an Ed25519 private key: PEM (PKCS#8) or 32 bytes in base64")
        }
        return key
    }
}
