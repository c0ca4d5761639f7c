import ChaperoneCore

/// Rewrites chosen string values of a JSON document in place and copies every other byte as it
/// was: key order, numbers and spacing survive, so a masked body differs from the original only
/// where a secret was. A small recursive-descent walker over bytes; it never builds a tree.
public struct JSONStringRewriter {
    public enum PathComponent: Equatable, Sendable {
        case key(String)
        case index(Int)
    }

    /// The scalar members of one object, as raw JSON text (strings keep their quotes). Filled as
    /// the walk reads the object: complete once the walk has passed its closing brace.
    public final class Members {
        public fileprivate(set) var values: [String: String] = [:]
    }

    /// A string value the caller may replace, with where it sits and the scalar members of each
    /// enclosing object (during `rewrite`, those read so far; from `sites(of:select:)`, all).
    public struct Site {
        public let path: [PathComponent]
        /// Innermost last; `objects[i]` is the object at depth i.
        public let objects: [Members]

        public var lastKey: String? {
            for component in self.path.reversed() { if case .key(let key) = component { return key } }
            return nil
        }

        /// The innermost member `name` seen so far, unquoted if it is a string.
        public func field(_ name: String) -> String? {
            for object in self.objects.reversed() { if let value = object.values[name] { return Self.unquoted(value) } }
            return nil
        }

        /// Member `name` of the object at `depth` (0 = the document), unquoted.
        public func field(_ name: String, depth: Int) -> String? {
            guard depth < self.objects.count, let value = self.objects[depth].values[name] else { return nil }
            return Self.unquoted(value)
        }

        /// A member's raw JSON text without the quotes of a string (escapes are left as they are).
        public static func unquoted(_ raw: String) -> String {
            raw.hasPrefix("\"") && raw.hasSuffix("\"") && raw.count >= 2 ? String(raw.dropFirst().dropLast()) : raw
        }
    }

    public enum RewriteError: Error { case malformed(offset: Int), tooDeep }

    private let input: [UInt8]
    private var index = 0
    private var output: [UInt8] = []
    private var path: [PathComponent] = []
    private var objects: [Members] = []
    private var changed = false
    /// The document's own members, when it is an object.
    private var root: Members?
    private let select: (Site) -> Bool
    private let rewrite: (Site, String) -> String?
    private static let maximumDepth = 256

    /// Returns the rewritten document, or nil when nothing changed.
    public static func rewrite(
        _ document: [UInt8], select: (Site) -> Bool, rewrite: (Site, String) -> String?
    ) throws(RewriteError) -> [UInt8]? {
        try withoutActuallyEscaping(select) { select throws(RewriteError) in
            try withoutActuallyEscaping(rewrite) { rewrite throws(RewriteError) in
                var walker = JSONStringRewriter(input: document, select: select, rewrite: rewrite)
                walker.output.reserveCapacity(document.count + 64)
                walker.skipSpace()
                try walker.value()
                walker.skipSpace()
                guard walker.index == document.count else { throw .malformed(offset: walker.index) }
                return walker.changed ? walker.output : nil
            }
        }
    }

    /// The top-level scalar members of a JSON object (`type`, `index`, `item_id`, …) as raw JSON
    /// text, wherever they stand among the nested members; empty when the document is not an object.
    public static func members(of document: [UInt8]) -> [String: String] {
        var walker = JSONStringRewriter(input: document, select: { _ in false }, rewrite: { _, _ in nil })
        walker.skipSpace()
        guard (try? walker.value()) != nil else { return [:] }
        return walker.root?.values ?? [:]
    }

    /// The selected strings of a document with their sites, in document order, each site knowing
    /// all the scalar members of its enclosing objects, also those written after the string.
    public static func strings(of document: [UInt8], select: (Site) -> Bool) throws(RewriteError) -> [(site: Site, value: String)] {
        var found: [(site: Site, value: String)] = []
        _ = try Self.rewrite(document, select: select) { site, value in
            found.append((site, value))
            return nil
        }
        return found
    }

    private init(input: [UInt8], select: @escaping (Site) -> Bool, rewrite: @escaping (Site, String) -> String?) {
        self.input = input
        self.select = select
        self.rewrite = rewrite
    }

    private mutating func skipSpace() {
        let start = self.index
        while self.index < self.input.count, [0x20, 0x09, 0x0A, 0x0D].contains(self.input[self.index]) { self.index += 1 }
        self.output.append(contentsOf: self.input[start..<self.index])
    }

    private mutating func expect(_ byte: UInt8) throws(RewriteError) {
        guard self.index < self.input.count, self.input[self.index] == byte else { throw .malformed(offset: self.index) }
        self.output.append(byte)
        self.index += 1
    }

    private mutating func value() throws(RewriteError) {
        guard self.index < self.input.count else { throw .malformed(offset: self.index) }
        switch self.input[self.index] {
        case UInt8(ascii: "{"): try self.object()
        case UInt8(ascii: "["): try self.array()
        case UInt8(ascii: "\""):
            let start = self.index
            let text = try self.string()
            let site = Site(path: self.path, objects: self.objects)
            if self.select(site), let replacement = self.rewrite(site, text), replacement != text {
                Self.encode(replacement, into: &self.output)
                self.changed = true
            } else {
                self.output.append(contentsOf: self.input[start..<self.index])
            }
        default:
            let start = self.index
            while self.index < self.input.count, !",]} \t\r\n".utf8.contains(self.input[self.index]) { self.index += 1 }
            guard self.index > start else { throw .malformed(offset: start) }
            self.output.append(contentsOf: self.input[start..<self.index])
        }
    }

    private mutating func object() throws(RewriteError) {
        guard self.path.count < Self.maximumDepth else { throw .tooDeep }
        try self.expect(UInt8(ascii: "{"))
        let members = Members()
        if self.objects.isEmpty && self.path.isEmpty { self.root = members }
        self.objects.append(members)
        defer { self.objects.removeLast() }
        self.skipSpace()
        if self.index < self.input.count, self.input[self.index] == UInt8(ascii: "}") {
            try self.expect(UInt8(ascii: "}"))
            return
        }
        while true {
            let keyStart = self.index
            let key = try self.string()
            self.output.append(contentsOf: self.input[keyStart..<self.index])
            self.skipSpace()
            try self.expect(UInt8(ascii: ":"))
            self.skipSpace()
            let valueStart = self.index
            self.path.append(.key(key))
            try self.value()
            self.path.removeLast()
            // Remember short scalar members (indices, ids, types) for the strings after them.
            let first = self.input[valueStart]
            if first != UInt8(ascii: "{"), first != UInt8(ascii: "["), self.index - valueStart <= 256 {
                members.values[key] = String(decoding: self.input[valueStart..<self.index], as: UTF8.self)
            }
            guard try self.another(closing: UInt8(ascii: "}")) else { return }
        }
    }

    private mutating func array() throws(RewriteError) {
        guard self.path.count < Self.maximumDepth else { throw .tooDeep }
        try self.expect(UInt8(ascii: "["))
        self.skipSpace()
        if self.index < self.input.count, self.input[self.index] == UInt8(ascii: "]") {
            try self.expect(UInt8(ascii: "]"))
            return
        }
        var position = 0
        while true {
            self.path.append(.index(position))
            try self.value()
            self.path.removeLast()
            position += 1
            guard try self.another(closing: UInt8(ascii: "]")) else { return }
        }
    }

    /// After a member or element: true after a comma (another follows), false after `closing`.
    private mutating func another(closing: UInt8) throws(RewriteError) -> Bool {
        self.skipSpace()
        guard self.index < self.input.count else { throw .malformed(offset: self.index) }
        if self.input[self.index] == UInt8(ascii: ",") {
            try self.expect(UInt8(ascii: ","))
            self.skipSpace()
            return true
        }
        try self.expect(closing)
        return false
    }

    /// Reads a string token (the index ends after its closing quote) and returns its value.
    private mutating func string() throws(RewriteError) -> String {
        guard self.index < self.input.count, self.input[self.index] == UInt8(ascii: "\"") else { throw .malformed(offset: self.index) }
        self.index += 1
        let start = self.index
        // Fast path: no escapes.
        while self.index < self.input.count {
            let byte = self.input[self.index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: self.input[start..<self.index], as: UTF8.self)
                self.index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            self.index += 1
        }
        var bytes = Array(self.input[start..<self.index])
        while self.index < self.input.count {
            let byte = self.input[self.index]
            self.index += 1
            if byte == UInt8(ascii: "\"") { return String(decoding: bytes, as: UTF8.self) }
            guard byte == UInt8(ascii: "\\") else { bytes.append(byte); continue }
            guard self.index < self.input.count else { break }
            let escape = self.input[self.index]
            self.index += 1
            switch escape {
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "u"):
                guard var scalar = self.hex4() else { throw .malformed(offset: self.index) }
                if (0xD800..<0xDC00).contains(scalar), self.index + 1 < self.input.count,
                   self.input[self.index] == UInt8(ascii: "\\"), self.input[self.index + 1] == UInt8(ascii: "u") {
                    self.index += 2
                    guard let low = self.hex4(), (0xDC00..<0xE000).contains(low) else { throw .malformed(offset: self.index) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                bytes.append(contentsOf: String(character).utf8)
            default: bytes.append(escape)
            }
        }
        throw .malformed(offset: self.index)
    }

    private mutating func hex4() -> UInt32? {
        guard self.index + 4 <= self.input.count, let value = self.input[self.index..<(self.index + 4)].hexValue else { return nil }
        self.index += 4
        return value
    }

    /// A JSON string token for `text`: quotes, backslashes and control characters escaped,
    /// everything else (including non-ASCII) as UTF-8.
    public static func encode(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(digits[Int(byte >> 4)])
                output.append(digits[Int(byte & 0x0F)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    public static func encode(_ text: String) -> String {
        var output: [UInt8] = []
        Self.encode(text, into: &output)
        return String(decoding: output, as: UTF8.self)
    }
}
