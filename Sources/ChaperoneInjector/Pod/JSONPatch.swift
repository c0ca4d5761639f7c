import Foundation

/// An RFC 6902 patch of `add` operations (the injector only ever adds). Values are held as
/// encoded JSON, so parts that are the same for every pod (the volumes, the env entries, the
/// sidecar for a given agent) are encoded once and reused.
struct JSONPatch: Sendable {
    struct Operation: Sendable {
        var path: String
        var value: [UInt8]
    }

    private(set) var operations: [Operation] = []

    /// Adds `value` at the pointer made of `tokens` (each escaped per RFC 6901).
    mutating func add(_ tokens: [String], _ value: some Encodable) throws {
        self.add(tokens, json: try JSONFragment.encode(value))
    }

    mutating func add(_ tokens: [String], json: [UInt8]) {
        self.operations.append(Operation(path: JSONPointer.path(tokens), value: json))
    }

    /// Appends already-encoded `items` to the array at `tokens`: one whole-array add when the
    /// array does not exist yet (a pointer into a missing array would fail), else one `-` add
    /// per item.
    mutating func append(_ items: [[UInt8]], to tokens: [String], exists: Bool) {
        guard !items.isEmpty else { return }
        if exists {
            for item in items { self.add(tokens + ["-"], json: item) }
        } else {
            self.add(tokens, json: JSONFragment.array(items))
        }
    }

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(self.operations.reduce(2) { $0 + $1.path.utf8.count + $1.value.count + 32 })
        out.append(UInt8(ascii: "["))
        for (index, operation) in self.operations.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"op":"add","path":"#.utf8)
            JSONFragment.appendString(operation.path, to: &out)
            out.append(contentsOf: #","value":"#.utf8)
            out.append(contentsOf: operation.value)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
        return out
    }
}

/// Encoded JSON pieces.
enum JSONFragment {
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func array(_ items: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: item)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    /// A JSON string literal (RFC 8259 escapes: quote, backslash, control characters).
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// RFC 6901 JSON Pointer: `~` becomes `~0` before `/` becomes `~1`, so `a/~b` is `a~1~0b`.
enum JSONPointer {
    static func path(_ tokens: [String]) -> String {
        tokens.map { "/" + Self.escape($0) }.joined()
    }

    static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        return token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
