public import Logging
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one JSON object per line to stderr:
/// `{"time":…,"level":…,"logger":…,"message":…,<metadata>}`. Metadata keys stay as given
/// (dot-namespaced, e.g. `exchange.id`), so log pipelines can index them without parsing text.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private static let lock = NSLock()

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in self.metadata { fields[key] = "\(value)" }
        for (key, value) in self.metadataProvider?.get() ?? [:] { fields[key] = "\(value)" }
        for (key, value) in event.metadata ?? [:] { fields[key] = "\(value)" }
        var line = "{\"time\":\"\(WallClock.rfc3339(nanoseconds: WallClock.nowNanoseconds()))\",\"level\":\"\(event.level.rawValue)\""
        line += ",\"logger\":\(JSONString.quote(self.label)),\"message\":\(JSONString.quote("\(event.message)"))"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) where !["time", "level", "logger", "message"].contains(key) {
            line += ",\(JSONString.quote(key)):\(JSONString.quote(value))"
        }
        line += "}\n"
        Self.lock.withLock {
            _ = line.withUTF8 { writeAll(STDERR_FILENO, UnsafeRawBufferPointer($0)) }
        }
    }

    /// `json` unless stderr is a terminal, where people read `text` more easily.
    public static var defaultFormat: String { isatty(STDERR_FILENO) == 1 ? "text" : "json" }
}

extension JSONLogHandler {
    /// Installs the process's log handler from the `--log-level` and `--log-format` flags every
    /// Chaperone binary takes; the error text names the flag at fault.
    public static func bootstrap(level text: String, format: String) throws(ConfigError) {
        guard let level = Logger.Level(rawValue: text) else {
            throw ConfigError(field: "--log-level", message: "'\(text)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["json", "text"].contains(format) else {
            throw ConfigError(field: "--log-format", message: "'\(format)' is not json or text")
        }
        let json = format == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
