import Crypto

/// RFC 6962 (and RFC 9162 §2.1) Merkle tree hashing over 32-byte SHA-256 values: the
/// collector's append-only log of stored events, and what `chaperonectl verify` recomputes.
///
/// Leaf hash `SHA-256(0x00 ‖ data)`, interior node `SHA-256(0x01 ‖ left ‖ right)`, the empty
/// tree `SHA-256("")`; a tree of n > 1 leaves splits at the largest power of two below n.
public enum MerkleTree {
    public typealias Hash = [UInt8]

    public static func leafHash<Bytes: Sequence<UInt8>>(_ data: Bytes) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0])
        hasher.update(data: Array(data))
        return Array(hasher.finalize())
    }

    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [1])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    public static var emptyRoot: Hash { Array(SHA256.hash(data: [UInt8]())) }

    /// The root of the tree whose leaf hashes are `leaves`.
    public static func root(_ leaves: ArraySlice<Hash>) -> Hash {
        var frontier = MerkleFrontier()
        for leaf in leaves { frontier.append(leaf) }
        return frontier.root
    }

    /// The audit path of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1).
    public static func inclusionProof(index: Int, leaves: ArraySlice<Hash>) -> [Hash] {
        precondition(index >= 0 && index < leaves.count, "leaf index outside the tree")
        guard leaves.count > 1 else { return [] }
        let split = largestPowerOfTwo(below: leaves.count)
        let start = leaves.startIndex
        if index < split {
            return inclusionProof(index: index, leaves: leaves[start..<(start + split)]) + [root(leaves[(start + split)...])]
        }
        return inclusionProof(index: index - split, leaves: leaves[(start + split)...]) + [root(leaves[start..<(start + split)])]
    }

    /// The proof that the tree of the first `oldSize` leaves is a prefix of the tree of `leaves`
    /// (RFC 6962 §2.1.2).
    public static func consistencyProof(oldSize: Int, leaves: ArraySlice<Hash>) -> [Hash] {
        precondition(oldSize >= 0 && oldSize <= leaves.count, "old size outside the tree")
        guard oldSize > 0, oldSize < leaves.count else { return [] }
        return subproof(oldSize, leaves, complete: true)
    }

    private static func subproof(_ m: Int, _ leaves: ArraySlice<Hash>, complete: Bool) -> [Hash] {
        if m == leaves.count { return complete ? [] : [root(leaves)] }
        let split = largestPowerOfTwo(below: leaves.count)
        let start = leaves.startIndex
        if m <= split {
            return subproof(m, leaves[start..<(start + split)], complete: complete) + [root(leaves[(start + split)...])]
        }
        return subproof(m - split, leaves[(start + split)...], complete: false) + [root(leaves[start..<(start + split)])]
    }

    /// RFC 9162 §2.1.3.2: does `proof` place `leaf` at `index` in a tree of `size` with `root`?
    public static func verifyInclusion(leaf: Hash, index: Int, size: Int, proof: [Hash], root: Hash) -> Bool {
        guard index >= 0, index < size else { return false }
        var fn = index, sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2: does `proof` show the tree (`oldSize`, `oldRoot`) is a prefix of
    /// (`newSize`, `newRoot`)?
    public static func verifyConsistency(oldSize: Int, oldRoot: Hash, newSize: Int, newRoot: Hash, proof: [Hash]) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        guard let first = path.first else { return false }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = first, sr = first
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }

    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }
}

/// The right edge of a growing RFC 6962 tree: the roots of its perfect subtrees, largest first
/// (one per set bit of `size`). Appending is amortised O(1) and the whole state is O(log n), so
/// the collector keeps it in memory and stores it with each checkpoint instead of rehashing
/// the log.
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: Int = 0
    /// Subtree roots, left to right; their sizes are the set bits of `size`, high to low.
    public private(set) var subtrees: [MerkleTree.Hash] = []

    public init() {}

    /// Restores a frontier saved with `subtrees`; nil if the count does not fit `size`.
    public init?(size: Int, subtrees: [MerkleTree.Hash]) {
        guard size >= 0, size.nonzeroBitCount == subtrees.count, subtrees.allSatisfy({ $0.count == 32 }) else { return nil }
        self.size = size
        self.subtrees = subtrees
    }

    public mutating func append(_ leafHash: MerkleTree.Hash) {
        self.subtrees.append(leafHash)
        // Merge while the two rightmost subtrees have the same size: one merge per trailing 1-bit.
        var carry = self.size
        while carry & 1 == 1 {
            let right = self.subtrees.removeLast()
            let left = self.subtrees.removeLast()
            self.subtrees.append(MerkleTree.nodeHash(left, right))
            carry >>= 1
        }
        self.size += 1
    }

    public var root: MerkleTree.Hash {
        guard var root = self.subtrees.last else { return MerkleTree.emptyRoot }
        for subtree in self.subtrees.dropLast().reversed() {
            root = MerkleTree.nodeHash(subtree, root)
        }
        return root
    }

    /// The subtrees concatenated, for storage.
    public var encoded: [UInt8] { self.subtrees.flatMap { $0 } }

    public init?(size: Int, encoded: [UInt8]) {
        guard encoded.count % 32 == 0 else { return nil }
        let hashes = stride(from: 0, to: encoded.count, by: 32).map { Array(encoded[$0..<($0 + 32)]) }
        self.init(size: size, subtrees: hashes)
    }
}
