package import Yams
import Foundation

/// A cursor over a YAML mapping that knows its dotted path, so every error names the field at
/// fault, and that rejects keys it was not asked about (a typo is an error, not a silent default).
package struct ConfigNode {
    package let path: String
    package let node: Node
    private let pairs: [(String, Node)]

    package init(path: String, node: Node) throws(ConfigError) {
        self.path = path
        self.node = node
        guard let mapping = node.mapping else {
            throw ConfigError(field: path, message: "expected a mapping (key: value pairs)\(Self.location(node))")
        }
        var pairs: [(String, Node)] = []
        for (key, value) in mapping {
            guard let name = key.string else {
                throw ConfigError(field: path, message: "keys must be strings\(Self.location(key))")
            }
            pairs.append((name, value))
        }
        self.pairs = pairs
    }

    package static func location(_ node: Node) -> String {
        guard let mark = node.mark else { return "" }
        return " (line \(mark.line), column \(mark.column))"
    }

    package func field(_ key: String) -> String { self.path.isEmpty ? key : "\(self.path).\(key)" }

    package var keys: [String] { self.pairs.map(\.0) }

    package func value(_ key: String) -> Node? {
        guard let node = self.pairs.first(where: { $0.0 == key })?.1 else { return nil }
        if case .scalar(let scalar) = node, scalar.style == .plain, ["~", "null", ""].contains(scalar.string) {
            return nil
        }
        return node
    }

    package func rejectUnknownKeys(allowed: Set<String>) throws(ConfigError) {
        for key in self.keys where !allowed.contains(key) {
            let known = allowed.sorted().joined(separator: ", ")
            throw ConfigError(field: self.field(key), message: "unknown key (known keys here: \(known))")
        }
    }

    package func child(_ key: String) throws(ConfigError) -> ConfigNode? {
        guard let node = self.value(key) else { return nil }
        return try ConfigNode(path: self.field(key), node: node)
    }

    package func string(_ key: String) throws(ConfigError) -> String? {
        guard let node = self.value(key) else { return nil }
        guard case .scalar = node, let text = node.string else {
            throw ConfigError(field: self.field(key), message: "expected a string\(Self.location(node))")
        }
        return text
    }

    package func int(_ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let node = self.value(key) else { return nil }
        guard case .scalar = node, let value = node.int else {
            throw ConfigError(field: self.field(key), message: "expected an integer\(Self.location(node))")
        }
        guard range.contains(value) else {
            throw ConfigError(field: self.field(key), message: "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    package func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let node = self.value(key) else { return nil }
        guard case .scalar = node, let value = node.bool else {
            throw ConfigError(field: self.field(key), message: "expected true or false\(Self.location(node))")
        }
        return value
    }

    package func duration(_ key: String) throws(ConfigError) -> ConfigDuration? {
        guard let node = self.value(key) else { return nil }
        guard case .scalar = node, let text = node.string else {
            throw ConfigError(field: self.field(key), message: "expected a duration such as 10s\(Self.location(node))")
        }
        do {
            return try ConfigDuration(parsing: text)
        } catch {
            throw ConfigError(field: self.field(key), message: error.message)
        }
    }

    /// Byte sizes as an integer or with a unit: `512KiB`, `32MiB`, `1GiB`, `64kb`.
    package func byteSize(_ key: String) throws(ConfigError) -> Int? {
        guard let node = self.value(key) else { return nil }
        guard case .scalar = node, let text = node.string else {
            throw ConfigError(field: self.field(key), message: "expected a size such as 32MiB\(Self.location(node))")
        }
        let lowered = text.trimmingWhitespace().lowercased()
        let units: [(String, Int)] = [
            ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000),
            ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1),
        ]
        for (suffix, scale) in units where lowered.hasSuffix(suffix) {
            if let value = Int(lowered.dropLast(suffix.count).trimmingWhitespace()), value > 0 {
                return value * scale
            }
        }
        if let value = Int(lowered), value > 0 { return value }
        throw ConfigError(field: self.field(key), message: "'\(text)' is not a size (use e.g. 65536, 64KiB, 32MiB)")
    }
}

extension ConfigNode {
    /// A `{host, port}` mapping; keys left out keep `current`'s.
    package func address(_ key: String, default current: ProxyConfiguration.ListenAddress) throws(ConfigError) -> ProxyConfiguration.ListenAddress? {
        guard let node = try self.child(key) else { return nil }
        try node.rejectUnknownKeys(allowed: ["host", "port"])
        return .init(host: try node.string("host") ?? current.host, port: try node.int("port", range: 0...65535) ?? current.port)
    }

    /// An absolute http(s) URL with a host.
    package func httpURL(_ key: String) throws(ConfigError) -> String? {
        guard let text = try self.string(key) else { return nil }
        guard let url = URL(string: text), url.scheme == "https" || url.scheme == "http", url.host != nil else {
            throw ConfigError(field: self.field(key), message: "'\(text)' is not an http(s) URL")
        }
        return text
    }

    /// A list of mappings, each a node named `key[index]`.
    package func children(_ key: String) throws(ConfigError) -> [ConfigNode]? {
        guard let value = self.value(key) else { return nil }
        guard let sequence = value.sequence else {
            throw ConfigError(field: self.field(key), message: "expected a list\(Self.location(value))")
        }
        var result: [ConfigNode] = []
        for (index, item) in sequence.enumerated() { result.append(try ConfigNode(path: self.field("\(key)[\(index)]"), node: item)) }
        return result
    }

    package func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let value = self.value(key) else { return nil }
        guard let sequence = value.sequence else {
            throw ConfigError(field: self.field(key), message: "expected a list of strings\(Self.location(value))")
        }
        var result: [String] = []
        for item in sequence {
            guard case .scalar = item, let text = item.string, !text.isEmpty else {
                throw ConfigError(field: self.field(key), message: "expected a list of strings\(Self.location(item))")
            }
            result.append(text)
        }
        return result
    }

    /// One of an enumeration's raw values; the error lists them all.
    package func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, as type: Choice.Type = Choice.self) throws(ConfigError) -> Choice?
    where Choice.RawValue == String {
        guard let text = try self.string(key) else { return nil }
        guard let value = Choice(rawValue: text) else {
            let known = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError(field: self.field(key), message: "'\(text)' is not one of \(known)")
        }
        return value
    }

    /// Reads a YAML configuration file and parses it with `parse`, putting the file's path on any
    /// error it reports.
    package static func load<Value>(file path: String, _ parse: (String) throws(ConfigError) -> Value) throws(ConfigError) -> Value {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, field: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try Self.parse(text, source: path, parse)
    }

    /// Parses `text` with `parse`, putting `source` (a file, or `$VARIABLE`) on any error.
    package static func parse<Value>(_ text: String, source: String, _ parse: (String) throws(ConfigError) -> Value) throws(ConfigError) -> Value {
        do {
            return try parse(text)
        } catch {
            var located = error
            located.file = source
            throw located
        }
    }

    /// The top-level mapping of a YAML document; nil for an empty one (all defaults).
    package static func root(yaml text: String) throws(ConfigError) -> ConfigNode? {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(field: "", message: "not valid YAML: \(error)")
        }
        guard let root else { return nil }
        return try ConfigNode(path: "", node: root)
    }
}
