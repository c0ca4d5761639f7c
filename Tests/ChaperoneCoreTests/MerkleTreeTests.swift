import ChaperoneCore
import Crypto
import Foundation
import Testing

@Suite struct MerkleTreeTests {
    /// The eight leaf inputs of RFC 6962's reference test data (certificate-transparency).
    static let inputs: [[UInt8]] = [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
    ]
    static let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    var leaves: [MerkleTree.Hash] { Self.inputs.map { MerkleTree.leafHash($0) } }

    @Test func rootsMatchTheReferenceData() {
        #expect(MerkleTree.root([]).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        for size in 1...8 {
            #expect(MerkleTree.root(self.leaves[0..<size]).hexString == Self.roots[size - 1], "size \(size)")
        }
    }

    @Test func frontierRoundTripsThroughItsEncoding() throws {
        var frontier = MerkleFrontier()
        for (size, leaf) in self.leaves.enumerated() {
            frontier.append(leaf)
            #expect(frontier.root.hexString == Self.roots[size])
            let restored = try #require(MerkleFrontier(size: frontier.size, encoded: frontier.encoded))
            #expect(restored == frontier)
        }
        #expect(MerkleFrontier(size: 3, encoded: Array(repeating: 0, count: 32)) == nil)
    }

    @Test func everyInclusionProofVerifiesAndNoWrongOneDoes() {
        let many = (0..<37).map { MerkleTree.leafHash(Array("event \($0)".utf8)) }
        for size in 1...many.count {
            let root = MerkleTree.root(many[0..<size])
            for index in 0..<size {
                let proof = MerkleTree.inclusionProof(index: index, leaves: many[0..<size])
                #expect(MerkleTree.verifyInclusion(leaf: many[index], index: index, size: size, proof: proof, root: root))
                let other = many[(index + 1) % many.count]
                if size > 1 {
                    #expect(!MerkleTree.verifyInclusion(leaf: other, index: index, size: size, proof: proof, root: root))
                }
                #expect(!MerkleTree.verifyInclusion(leaf: many[index], index: index, size: size, proof: proof, root: MerkleTree.emptyRoot))
            }
        }
    }

    @Test func everyConsistencyProofVerifiesAndATamperedLogDoesNot() {
        let many = (0..<33).map { MerkleTree.leafHash(Array("event \($0)".utf8)) }
        for newSize in 1...many.count {
            let newRoot = MerkleTree.root(many[0..<newSize])
            for oldSize in 1...newSize {
                let oldRoot = MerkleTree.root(many[0..<oldSize])
                let proof = MerkleTree.consistencyProof(oldSize: oldSize, leaves: many[0..<newSize])
                #expect(MerkleTree.verifyConsistency(oldSize: oldSize, oldRoot: oldRoot, newSize: newSize, newRoot: newRoot, proof: proof))
                if oldSize < newSize {
                    var rewritten = Array(many[0..<newSize])
                    rewritten[oldSize - 1] = MerkleTree.leafHash(Array("rewritten".utf8))
                    let forgedRoot = MerkleTree.root(rewritten[...])
                    let forged = MerkleTree.consistencyProof(oldSize: oldSize, leaves: rewritten[...])
                    #expect(!MerkleTree.verifyConsistency(oldSize: oldSize, oldRoot: oldRoot, newSize: newSize, newRoot: forgedRoot, proof: forged))
                }
            }
        }
    }
}

@Suite struct SignedCheckpointTests {
    let signer = try! CheckpointSigner(keyName: "chaperone.example/collector", privateKey: .init())

    @Test func aSignedCheckpointVerifiesWithTheEncodedVerifierKey() throws {
        let checkpoint = Checkpoint(origin: "chaperone.example/collector", size: 42, rootHash: MerkleTree.leafHash([1, 2, 3]))
        let note = try self.signer.sign(checkpoint)
        #expect(note.hasPrefix("chaperone.example/collector\n42\n"))
        #expect(note.contains("\n\n\u{2014} chaperone.example/collector "))
        let verifier = try CheckpointVerifier(encoded: self.signer.verifierKey.encoded)
        #expect(try verifier.verify(note: note) == checkpoint)
    }

    @Test func alteredOrForeignNotesAreRefused() throws {
        let note = try self.signer.sign(Checkpoint(origin: "o", size: 7, rootHash: MerkleTree.emptyRoot))
        let verifier = self.signer.verifierKey
        #expect(throws: CheckpointError.self) { try verifier.verify(note: note.replacingOccurrences(of: "\n7\n", with: "\n8\n")) }
        let other = try CheckpointSigner(keyName: "chaperone.example/collector", privateKey: .init())
        #expect(throws: CheckpointError.self) { try other.verifierKey.verify(note: note) }
        #expect(throws: CheckpointError.self) { try CheckpointVerifier(encoded: "name+00000000+AAAA") }
    }
}
