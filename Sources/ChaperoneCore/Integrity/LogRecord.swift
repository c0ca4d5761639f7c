import Crypto

/// How a stored event becomes a leaf of the collector's Merkle log:
/// `leaf = SHA-256(0x00 ‖ record hash)` with
/// `record hash = SHA-256("chaperone.record.v1\n" ‖ SHA-256(line) ‖ stamp)`. The collector
/// writes leaves with it and `chaperonectl verify` recomputes them with it; the end-to-end
/// suite checks the formula independently.
public enum LogRecord {
    public static func recordHash(lineHash: [UInt8], stamp: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("chaperone.record.v1\n".utf8))
        hasher.update(data: lineHash)
        hasher.update(data: stamp)
        return Array(hasher.finalize())
    }

    public static func leafHash(lineHash: [UInt8], stamp: [UInt8]) -> MerkleTree.Hash {
        MerkleTree.leafHash(Self.recordHash(lineHash: lineHash, stamp: stamp))
    }
}
