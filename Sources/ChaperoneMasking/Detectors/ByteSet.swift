/// A set of bytes as a 256-bit mask: membership is two shifts and an AND, which keeps the
/// matchers' inner loops free of table lookups through arrays.
public struct ByteSet: Sendable, Hashable {
    private var low: UInt64 = 0
    private var high: UInt64 = 0
    private var upperLow: UInt64 = 0
    private var upperHigh: UInt64 = 0

    public init() {}

    public init(_ characters: String) {
        self.init()
        for byte in characters.utf8 { self.insert(byte) }
    }

    /// Every byte in the inclusive range.
    public init(ranges: ClosedRange<UInt8>...) {
        self.init()
        for range in ranges { for byte in range { self.insert(byte) } }
    }

    public mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: self.low |= bit
        case 1: self.high |= bit
        case 2: self.upperLow |= bit
        default: self.upperHigh |= bit
        }
    }

    @inline(__always)
    public func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return self.low & bit != 0
        case 1: return self.high & bit != 0
        case 2: return self.upperLow & bit != 0
        default: return self.upperHigh & bit != 0
        }
    }

    public func union(_ other: ByteSet) -> ByteSet {
        var copy = self
        copy.low |= other.low
        copy.high |= other.high
        copy.upperLow |= other.upperLow
        copy.upperHigh |= other.upperHigh
        return copy
    }

    public func subtracting(_ other: ByteSet) -> ByteSet {
        var copy = self
        copy.low &= ~other.low
        copy.high &= ~other.high
        copy.upperLow &= ~other.upperLow
        copy.upperHigh &= ~other.upperHigh
        return copy
    }

    public static let digits = ByteSet(ranges: 0x30...0x39)
    public static let upper = ByteSet(ranges: 0x41...0x5A)
    public static let lower = ByteSet(ranges: 0x61...0x7A)
    public static let letters = upper.union(lower)
    public static let alphanumeric = letters.union(digits)
    public static let lowerHex = digits.union(ByteSet("abcdef"))
    public static let hex = lowerHex.union(ByteSet("ABCDEF"))
    public static let base64 = alphanumeric.union(ByteSet("+/"))
    public static let base64URL = alphanumeric.union(ByteSet("_-"))

    /// Bytes that end a run of token characters: ASCII white space and control characters,
    /// quotes, brackets and list punctuation, and every non-ASCII byte (no credential format
    /// uses them, and prose in scripts without spaces must not form one endless run).
    public static let separators: ByteSet = {
        var set = ByteSet(ranges: 0x00...0x20, 0x7F...0xFF)
        for byte in "\"'`,;()[]{}<>|".utf8 { set.insert(byte) }
        return set
    }()

    /// Bytes that may be part of a secret.
    public static let token = ByteSet(ranges: 0x00...0xFF).subtracting(separators)
}
