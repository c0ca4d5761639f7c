import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends one canonical JSON line per record to a file descriptor: a local file (created with
/// mode 0600, parents created), or stdout. Writes are whole lines; the file is not fsync'ed (the
/// durable spool is issue P4's).
public final class JSONLinesSink: AuditSink, @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(path: String, errno: Int32)
        case writeFailed(path: String, errno: Int32)
        public var description: String {
            switch self {
            case .cannotOpen(let path, let code): "cannot open audit file \(path): \(String(cString: strerror(code)))"
            case .writeFailed(let path, let code): "cannot write audit file \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    private let fd: Int32
    private let name: String
    private let ownsDescriptor: Bool
    private let lock = NSLock()

    /// Opens (appending) or creates `path`.
    public init(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure.cannotOpen(path: path, errno: errno) }
        self.fd = fd
        self.name = path
        self.ownsDescriptor = true
    }

    /// Writes to standard output.
    public static func standardOutput() -> JSONLinesSink {
        JSONLinesSink(fd: STDOUT_FILENO, name: "stdout")
    }

    private init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
        self.ownsDescriptor = false
    }

    public func write(_ record: AuditRecord) throws {
        var line = record.canonicalJSON
        line.append(0x0a)
        try self.lock.withLock {
            if let code = line.withUnsafeBytes({ writeAll(self.fd, $0) }) {
                throw Failure.writeFailed(path: self.name, errno: code)
            }
        }
    }

    public func close() throws {
        if self.ownsDescriptor {
            _ = systemClose(self.fd)
        }
    }
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR. Returns errno on failure.
package func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    guard let base = bytes.baseAddress else { return nil }
    var offset = 0
    while offset < bytes.count {
        let written = systemWrite(fd, base + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += written
    }
    return nil
}

// `write` and `close` are also method names in here; these name the C functions unambiguously.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
