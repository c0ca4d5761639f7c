/// A forward-only reader over JSON text, for decoders written by hand where `JSONDecoder`'s
/// per-key cost matters (the collector reads every event line it stores).
///
/// It is strict and unforgiving on purpose: anything outside plain JSON in its usual form —
/// malformed text, a lone surrogate, an unescaped control character, a fraction or exponent where
/// an integer is read, a key given twice — throws `JSONReader.Declined`, and the caller hands the
/// text to `JSONDecoder`, which decides and explains. So the reader never accepts what
/// `JSONDecoder` would refuse; at worst it declines what `JSONDecoder` would take.
struct JSONReader {
    struct Declined: Error {}

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    // MARK: Structure

    /// Reads an object, calling `member` with each key; `member` must read (or skip) the value.
    mutating func object(_ member: (inout JSONReader, String) throws(Declined) -> Void) throws(Declined) {
        try self.expect(UInt8(ascii: "{"))
        if self.consume(UInt8(ascii: "}")) { return }
        repeat {
            let key = try self.string()
            try self.expect(UInt8(ascii: ":"))
            try member(&self, key)
        } while self.consume(UInt8(ascii: ","))
        try self.expect(UInt8(ascii: "}"))
    }

    mutating func array<Element>(_ element: (inout JSONReader) throws(Declined) -> Element) throws(Declined) -> [Element] {
        try self.expect(UInt8(ascii: "["))
        var elements: [Element] = []
        if self.consume(UInt8(ascii: "]")) { return elements }
        repeat {
            elements.append(try element(&self))
        } while self.consume(UInt8(ascii: ","))
        try self.expect(UInt8(ascii: "]"))
        return elements
    }

    /// Consumes a `null` if one comes next.
    mutating func null() -> Bool {
        self.skipSpace()
        guard self.matches("null") else { return false }
        self.position += 4
        return true
    }

    /// Reads `null` as nil, anything else with `read`.
    mutating func optional<T>(_ read: (inout JSONReader) throws(Declined) -> T) throws(Declined) -> T? {
        self.null() ? nil : try read(&self)
    }

    /// Only white space may follow.
    mutating func end() throws(Declined) {
        self.skipSpace()
        guard self.position == self.bytes.count else { throw Declined() }
    }

    // MARK: Scalars

    mutating func string() throws(Declined) -> String {
        self.skipSpace()
        guard self.position < self.bytes.count, self.bytes[self.position] == UInt8(ascii: "\"") else { throw Declined() }
        self.position += 1
        let start = self.position
        while self.position < self.bytes.count {
            let byte = self.bytes[self.position]
            if byte == UInt8(ascii: "\"") {
                let text = String(validating: UnsafeBufferPointer(rebasing: self.bytes[start..<self.position]), as: UTF8.self)
                self.position += 1
                guard let text else { throw Declined() }
                return text
            }
            if byte == UInt8(ascii: "\\") { return try self.escapedString(from: start) }
            guard byte >= 0x20 else { throw Declined() }
            self.position += 1
        }
        throw Declined()
    }

    mutating func bool() throws(Declined) -> Bool {
        self.skipSpace()
        if self.matches("true") {
            self.position += 4
            return true
        }
        if self.matches("false") {
            self.position += 5
            return false
        }
        throw Declined()
    }

    /// An integer written without fraction or exponent that fits `T`.
    mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) throws(Declined) -> T {
        self.skipSpace()
        let negative = self.consume(UInt8(ascii: "-"))
        let start = self.position
        var magnitude: UInt64 = 0
        while self.position < self.bytes.count, let digit = Self.digit(self.bytes[self.position]) {
            let (times, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(UInt64(digit))
            guard !overflow1, !overflow2 else { throw Declined() }
            magnitude = sum
            self.position += 1
        }
        let digits = self.position - start
        guard digits > 0, digits == 1 || self.bytes[start] != UInt8(ascii: "0") else { throw Declined() }
        if self.position < self.bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(self.bytes[self.position]) {
            throw Declined()
        }
        if negative {
            guard magnitude <= UInt64(Int64.max), let value = T(exactly: -Int64(magnitude)) else { throw Declined() }
            return value
        }
        guard let value = T(exactly: magnitude) else { throw Declined() }
        return value
    }

    /// Reads past one value of any type, checking that it is well-formed.
    mutating func skipValue() throws(Declined) {
        self.skipSpace()
        guard self.position < self.bytes.count else { throw Declined() }
        switch self.bytes[self.position] {
        case UInt8(ascii: "{"): try self.object { reader, _ throws(Declined) in try reader.skipValue() }
        case UInt8(ascii: "["): _ = try self.array { reader throws(Declined) in try reader.skipValue() }
        case UInt8(ascii: "\""): _ = try self.string()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try self.bool()
        case UInt8(ascii: "n"): guard self.null() else { throw Declined() }
        default: try self.skipNumber()
        }
    }

    // MARK: Details

    private mutating func skipNumber() throws(Declined) {
        _ = self.consume(UInt8(ascii: "-"))
        let digitsStart = self.position
        self.skipDigits()
        let digits = self.position - digitsStart
        guard digits > 0, digits == 1 || self.bytes[digitsStart] != UInt8(ascii: "0") else { throw Declined() }
        if self.position < self.bytes.count, self.bytes[self.position] == UInt8(ascii: ".") {
            self.position += 1
            let start = self.position
            self.skipDigits()
            guard self.position > start else { throw Declined() }
        }
        if self.position < self.bytes.count, self.bytes[self.position] | 0x20 == UInt8(ascii: "e") {
            self.position += 1
            if self.position < self.bytes.count, self.bytes[self.position] == UInt8(ascii: "+") || self.bytes[self.position] == UInt8(ascii: "-") {
                self.position += 1
            }
            let start = self.position
            self.skipDigits()
            guard self.position > start else { throw Declined() }
        }
    }

    private mutating func skipDigits() {
        while self.position < self.bytes.count, Self.digit(self.bytes[self.position]) != nil { self.position += 1 }
    }

    /// The rest of a string that holds escapes; `start` is just after the opening quote.
    private mutating func escapedString(from start: Int) throws(Declined) -> String {
        var utf8 = Array(UnsafeBufferPointer(rebasing: self.bytes[start..<self.position]))
        while self.position < self.bytes.count {
            let byte = self.bytes[self.position]
            self.position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw Declined() }
                return text
            case UInt8(ascii: "\\"):
                guard self.position < self.bytes.count else { throw Declined() }
                let escape = self.bytes[self.position]
                self.position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0c)
                case UInt8(ascii: "n"): utf8.append(0x0a)
                case UInt8(ascii: "r"): utf8.append(0x0d)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var value = try self.hex4()
                    if (0xd800...0xdbff).contains(value) {
                        guard self.matches("\\u") else { throw Declined() }
                        self.position += 2
                        let low = try self.hex4()
                        guard (0xdc00...0xdfff).contains(low) else { throw Declined() }
                        value = 0x10000 + ((value - 0xd800) << 10) + (low - 0xdc00)
                    }
                    guard let scalar = Unicode.Scalar(value) else { throw Declined() }
                    utf8.append(contentsOf: UTF8.encode(scalar)!)
                default:
                    throw Declined()
                }
            default:
                guard byte >= 0x20 else { throw Declined() }
                utf8.append(byte)
            }
        }
        throw Declined()
    }

    private mutating func hex4() throws(Declined) -> UInt32 {
        guard self.position + 4 <= self.bytes.count, let value = self.bytes[self.position..<(self.position + 4)].hexValue else { throw Declined() }
        self.position += 4
        return value
    }

    private static func digit(_ byte: UInt8) -> UInt8? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : nil
    }

    private mutating func skipSpace() {
        while self.position < self.bytes.count {
            switch self.bytes[self.position] {
            case 0x20, 0x09, 0x0a, 0x0d: self.position += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        self.skipSpace()
        guard self.position < self.bytes.count, self.bytes[self.position] == byte else { return false }
        self.position += 1
        return true
    }

    private mutating func expect(_ byte: UInt8) throws(Declined) {
        guard self.consume(byte) else { throw Declined() }
    }

    private func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard self.position + count <= self.bytes.count else { return false }
        let text = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for i in 0..<count where self.bytes[self.position + i] != text[i] { return false }
        return true
    }
}

/// Stores a member's value once; a key that comes twice makes the reader decline.
@inline(__always)
func once<T>(_ slot: inout T?, _ value: T) throws(JSONReader.Declined) {
    guard slot == nil else { throw JSONReader.Declined() }
    slot = value
}
