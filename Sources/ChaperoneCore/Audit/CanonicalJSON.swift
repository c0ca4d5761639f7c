public import Foundation
import Crypto

/// Hashing for the canonical JSON that event chains are computed over (UTF-8, keys sorted, no
/// insignificant whitespace, slashes unescaped, absent optionals omitted; numbers in events are
/// integers only, so the form does not depend on how a platform prints floating point). The
/// writer is `AuditEvent.canonicalJSON()`.
public enum CanonicalJSON {
    /// Lower-case hex SHA-256 of `bytes`.
    public static func sha256Hex<Bytes: DataProtocol>(_ bytes: Bytes) -> String {
        SHA256.hash(data: bytes).hexString
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal rendering of the bytes.
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(self.underestimatedCount * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Incremental SHA-256 over a body that arrives in pieces.
public struct BodyDigest: Sendable {
    private var hasher = SHA256()
    public private(set) var byteCount = 0

    public init() {}

    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        self.hasher.update(bufferPointer: bufferPointer)
        self.byteCount += bufferPointer.count
    }

    public func finalize() -> String {
        self.hasher.finalize().hexString
    }
}
