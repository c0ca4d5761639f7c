/// Puts the agent's own secrets back where the model echoed their placeholders, when policy asks
/// for it: the provider never sees the secret, the agent's generated code still works. Works on a
/// stream, holding back at most one possible placeholder (`[REDACTED:` … `]`, under 128 bytes).
public struct PlaceholderRestorer: Sendable {
    private let originals: [String: String]
    private var pending: [UInt8] = []
    private static let marker = Array("[REDACTED:".utf8)
    private static let longest = 128

    public init(originals: [String: String]) {
        self.originals = originals
    }

    public var isActive: Bool { !self.originals.isEmpty }

    /// Restores every complete placeholder in a whole text.
    public func restore(_ text: String) -> String {
        guard self.isActive, text.utf8.contains(UInt8(ascii: "[")) else { return text }
        var copy = self
        return copy.feed(text) + copy.finish()
    }

    public mutating func feed(_ text: String) -> String {
        guard self.isActive else { return text }
        self.pending.append(contentsOf: text.utf8)
        return self.release(atEnd: false)
    }

    public mutating func finish() -> String {
        self.release(atEnd: true)
    }

    private mutating func release(atEnd: Bool) -> String {
        var output: [UInt8] = []
        var index = 0
        var copied = 0
        let bytes = self.pending
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "[") else { index += 1; continue }
            // How much of the marker is here?
            var matched = 0
            while matched < Self.marker.count, index + matched < bytes.count, bytes[index + matched] == Self.marker[matched] { matched += 1 }
            if index + matched == bytes.count, !atEnd {
                break  // may be the start of a placeholder: hold from here
            }
            guard matched == Self.marker.count else { index += 1; continue }
            guard let close = bytes[index...].prefix(Self.longest).firstIndex(of: UInt8(ascii: "]")) else {
                if !atEnd, bytes.count - index < Self.longest { break }
                index += 1
                continue
            }
            let placeholder = String(decoding: bytes[index...close], as: UTF8.self)
            if let original = self.originals[placeholder] {
                output.append(contentsOf: bytes[copied..<index])
                output.append(contentsOf: original.utf8)
                copied = close + 1
            }
            index = close + 1
        }
        let keepFrom = atEnd ? bytes.count : index
        output.append(contentsOf: bytes[copied..<max(copied, keepFrom)])
        self.pending = Array(bytes[max(copied, keepFrom)...])
        return String(decoding: output, as: UTF8.self)
    }
}
