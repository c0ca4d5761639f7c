public import ChaperoneCore
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The real provider key of one upstream, read from a file (a mounted Secret) and re-read when the
/// file changes. Kubernetes updates Secret volumes by swapping a symlink, so the file's identity
/// (device, inode, size, mtime, followed through symlinks) is compared on every use: one `stat`,
/// no polling thread.
public final class CredentialStore: Sendable {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unreadable(path: String, reason: String)
        case empty(path: String)
        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read credential file \(path): \(reason)"
            case .empty(let path): "credential file \(path) is empty"
            }
        }
    }

    private struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
    }

    private struct Cached {
        var identity: FileIdentity
        var headerValue: String
    }

    public let path: String
    public let headerName: String
    private let prefix: String
    private let cache = NIOLockedValueBox<Cached?>(nil)

    public init(credential: ProxyConfiguration.Credential, provider: ProxyConfiguration.Provider) {
        self.path = credential.file
        let header = credential.resolvedHeader(for: provider)
        self.headerName = header.name
        self.prefix = header.prefix
    }

    /// The header value to send upstream (`prefix + key`), re-reading the file if it changed.
    public func headerValue() throws(Failure) -> String {
        var info = stat()
        guard stat(self.path, &info) == 0 else {
            throw .unreadable(path: self.path, reason: String(cString: strerror(errno)))
        }
        let identity = FileIdentity(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modifiedSeconds: Int(info.st_mtim.tv_sec), modifiedNanoseconds: Int(info.st_mtim.tv_nsec)
        )
        if let cached = self.cache.withLockedValue({ $0 }), cached.identity == identity {
            return cached.headerValue
        }
        let key = try Self.readKey(path: self.path)
        let value = self.prefix + key
        self.cache.withLockedValue { $0 = Cached(identity: identity, headerValue: value) }
        return value
    }

    private static func readKey(path: String) throws(Failure) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 64 * 1024 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        // Secrets are often written with a trailing newline; header values must not carry one.
        let key = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        guard !key.isEmpty else { throw .empty(path: path) }
        guard !key.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
            throw .unreadable(path: path, reason: "the key spans several lines")
        }
        return key
    }
}
