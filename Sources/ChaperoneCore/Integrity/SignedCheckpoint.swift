public import Crypto
public import Foundation

/// A tree head in the C2SP `tlog-checkpoint` form: the log's origin line, the tree size in
/// decimal and the base64 root hash, each ending in a newline.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int
    public var rootHash: MerkleTree.Hash

    public init(origin: String, size: Int, rootHash: MerkleTree.Hash) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
    }

    public var body: String {
        "\(self.origin)\n\(self.size)\n\(Data(self.rootHash).base64EncodedString())\n"
    }

    public init(body: String) throws(CheckpointError) {
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        guard body.hasSuffix("\n"), lines.count >= 4 else { throw .malformed("a checkpoint has three lines: origin, size, root hash") }
        guard !lines[0].isEmpty else { throw .malformed("the origin line is empty") }
        guard let size = Int(lines[1]), size >= 0, String(size) == lines[1] else { throw .malformed("the size line is not a decimal number: \(lines[1])") }
        guard let root = Data(base64Encoded: String(lines[2])), root.count == 32 else { throw .malformed("the root hash line is not 32 bytes of base64") }
        self.init(origin: String(lines[0]), size: size, rootHash: Array(root))
    }
}

public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case badSignature(String)
    case unknownKey(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed checkpoint: \(why)"
        case .badSignature(let why): "checkpoint signature does not verify: \(why)"
        case .unknownKey(let why): "checkpoint is not signed by the expected key: \(why)"
        }
    }
}

/// Signs checkpoints as C2SP signed notes with Ed25519: the note text, a blank line, then
/// `— <key name> <base64(key hash ‖ signature)>`. The key hash is the first four bytes of
/// SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), and the verifier key, which is what an auditor
/// pins, is `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.
public struct CheckpointSigner: Sendable {
    public let keyName: String
    private let privateKey: Curve25519.Signing.PrivateKey

    public init(keyName: String, privateKey: Curve25519.Signing.PrivateKey) throws(CheckpointError) {
        guard CheckpointSigner.isValidKeyName(keyName) else { throw .malformed("key name must be non-empty without spaces, '+' or newlines: \(keyName)") }
        self.keyName = keyName
        self.privateKey = privateKey
    }

    public var verifierKey: CheckpointVerifier {
        CheckpointVerifier(keyName: self.keyName, publicKey: self.privateKey.publicKey)
    }

    public func sign(_ checkpoint: Checkpoint) throws -> String {
        let body = checkpoint.body
        let signature = try self.privateKey.signature(for: Data(body.utf8))
        let blob = self.verifierKey.keyHash + Array(signature)
        return body + "\n\u{2014} \(self.keyName) \(Data(blob).base64EncodedString())\n"
    }

    static func isValidKeyName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains(where: { $0 == " " || $0 == "+" || $0 == "\n" || $0 == "\t" })
    }
}

public struct CheckpointVerifier: Sendable, Equatable {
    public let keyName: String
    public let publicKey: Curve25519.Signing.PublicKey

    public init(keyName: String, publicKey: Curve25519.Signing.PublicKey) {
        self.keyName = keyName
        self.publicKey = publicKey
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.keyName == b.keyName && a.publicKey.rawRepresentation == b.publicKey.rawRepresentation
    }

    /// Parses `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.
    public init(encoded: String) throws(CheckpointError) {
        let parts = encoded.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, CheckpointSigner.isValidKeyName(String(parts[0])) else {
            throw .malformed("a verifier key reads <name>+<hex key hash>+<base64 key>")
        }
        guard let blob = Data(base64Encoded: String(parts[2])), blob.count == 33, blob.first == 1,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: blob.dropFirst()) else {
            throw .malformed("the verifier key is not an Ed25519 key (0x01 followed by 32 bytes)")
        }
        self.init(keyName: String(parts[0]), publicKey: key)
        guard self.keyHash.hexString == parts[1].lowercased() else { throw .malformed("the verifier key's hash \(parts[1]) does not match its name and key") }
    }

    public var encoded: String {
        "\(self.keyName)+\(self.keyHash.hexString)+\(Data([1] + Array(self.publicKey.rawRepresentation)).base64EncodedString())"
    }

    var keyHash: [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Data(self.keyName.utf8))
        hasher.update(data: [0x0a, 0x01])
        hasher.update(data: self.publicKey.rawRepresentation)
        return Array(hasher.finalize().prefix(4))
    }

    /// The checkpoint in `note` if one of its signature lines is this key's and verifies.
    public func verify(note: String) throws(CheckpointError) -> Checkpoint {
        guard let split = note.range(of: "\n\n") else { throw .malformed("no blank line between the text and its signatures") }
        let body = String(note[..<split.upperBound].dropLast())
        let checkpoint = try Checkpoint(body: body)
        var sawName = false
        for line in note[split.upperBound...].split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "\u{2014}" else { throw .malformed("signature line does not start with an em dash: \(line)") }
            guard fields[1] == self.keyName else { continue }
            sawName = true
            guard let blob = Data(base64Encoded: String(fields[2])), blob.count == 4 + 64 else { throw .malformed("signature is not 4 + 64 bytes of base64") }
            guard Array(blob.prefix(4)) == self.keyHash else { continue }
            guard self.publicKey.isValidSignature(blob.dropFirst(4), for: Data(body.utf8)) else {
                throw .badSignature("key \(self.keyName) signed different text")
            }
            return checkpoint
        }
        throw .unknownKey(sawName ? "a signature names \(self.keyName) but with another key" : "no signature by \(self.keyName)")
    }
}
