/// A duration written in configuration as `250ms`, `10s`, `5m`, `1h` or a bare number of seconds.
public struct ConfigDuration: Sendable, Hashable, Codable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ seconds: Int64) -> ConfigDuration { .init(milliseconds: seconds * 1000) }

    public var duration: Duration { .milliseconds(self.milliseconds) }
    public var timeInterval: Double { Double(self.milliseconds) / 1000 }
    public var nanoseconds: Int64 { self.milliseconds * 1_000_000 }

    public init(parsing text: String) throws(ConfigError) {
        self.milliseconds = try Self.parseMilliseconds(text)
    }

    private static func parseMilliseconds(_ text: String) throws(ConfigError) -> Int64 {
        let trimmed = text.trimmingWhitespace()
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if let value = Int64(number), value >= 0 {
                return value * scale
            }
        }
        if let value = Int64(trimmed), value >= 0 {
            return value * 1000
        }
        throw ConfigError(field: "", message: "'\(text)' is not a duration (use e.g. 250ms, 10s, 5m, 1h, 30d)")
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Int64.self), seconds >= 0 {
            self.milliseconds = seconds * 1000
            return
        }
        let text = try container.decode(String.self)
        do {
            self.milliseconds = try Self.parseMilliseconds(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }

    public var description: String {
        if self.milliseconds % 1000 != 0 { return "\(self.milliseconds)ms" }
        return "\(self.milliseconds / 1000)s"
    }
}

/// A configuration problem, naming the file and the field at fault.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String?
    public var field: String
    public var message: String

    public init(file: String? = nil, field: String, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        var text = ""
        if let file { text += "\(file): " }
        if !self.field.isEmpty { text += "\(self.field): " }
        return text + self.message
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space and newlines.
    public func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
