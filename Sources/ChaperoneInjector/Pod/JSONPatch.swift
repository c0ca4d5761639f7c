import Foundation

/// An RFC 6902 patch, built from typed values. The injector only ever adds.
struct JSONPatch: Sendable {
    struct Operation: Encodable, Sendable {
        var op = "add"
        var path: String
        var value: any Encodable & Sendable

        enum CodingKeys: String, CodingKey { case op, path, value }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.op, forKey: .op)
            try container.encode(self.path, forKey: .path)
            try container.encode(self.value, forKey: .value)
        }
    }

    private(set) var operations: [Operation] = []

    var isEmpty: Bool { self.operations.isEmpty }

    /// Adds `value` at the pointer made of `tokens` (each escaped per RFC 6901).
    mutating func add(_ tokens: [String], _ value: any Encodable & Sendable) {
        self.operations.append(Operation(path: JSONPointer.path(tokens), value: value))
    }

    /// Appends `items` to the array at `tokens`: one whole-array add when the array does not exist
    /// yet (a pointer into a missing array would fail), else one `-` add per item.
    mutating func append<Item: Encodable & Sendable>(_ items: [Item], to tokens: [String], exists: Bool) {
        guard !items.isEmpty else { return }
        if exists {
            for item in items { self.add(tokens + ["-"], item) }
        } else {
            self.add(tokens, items)
        }
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self.operations)
    }
}

/// RFC 6901 JSON Pointer: `~` becomes `~0` before `/` becomes `~1`, so `a/~b` is `a~1~0b`.
enum JSONPointer {
    static func path(_ tokens: [String]) -> String {
        tokens.map { "/" + Self.escape($0) }.joined()
    }

    static func escape(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
