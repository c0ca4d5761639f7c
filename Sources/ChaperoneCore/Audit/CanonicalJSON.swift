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

extension UInt8 {
    /// The value of an ASCII hexadecimal digit (either case); nil for any other byte.
    @inlinable public var hexDigitValue: UInt8? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): self - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): self - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): self - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Collection<UInt8> {
    /// The number a few hexadecimal digits spell (the four of a JSON `\uXXXX` escape); nil if
    /// any byte is not a hex digit.
    @inlinable public var hexValue: UInt32? {
        var value: UInt32 = 0
        for byte in self {
            guard let digit = byte.hexDigitValue else { return nil }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

extension Array where Element == UInt8 {
    /// The bytes of a hexadecimal string (either case); nil if it is not whole hex digits.
    public init?(hex: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            guard let nibble = c.hexDigitValue else { return nil }
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { return nil }
        self = bytes
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
