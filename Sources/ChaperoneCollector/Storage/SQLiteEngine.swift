import Foundation
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The embedded store: one SQLite database in WAL mode in the data directory. One connection
/// writes (one transaction per group of batches, `synchronous=FULL` by default so an
/// acknowledged batch survives power loss) on a thread of its own; two more serve reads, which
/// WAL lets run beside the writer.
public final class SQLiteEngine: SQLDatabase {
    public let dialect = SQLDialect.sqlite
    private let writer: SQLiteLink
    private let writerThread: DedicatedThread
    private let readers: [(link: SQLiteLink, gate: Turnstile)]
    private let readerThreads: NIOThreadPool
    private let checkpointer: SQLiteLink
    private let checkpoints: Task<Void, Never>
    private let gate = Turnstile()
    private let nextReader = NIOLockedCounter()
    public let path: String
    public var writerExecutor: (any TaskExecutor)? { self.writerThread }

    public static func open(directory: String, durability: CollectorConfiguration.Storage.Durability, logger: Logger) async throws -> SQLiteEngine {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.unavailable("cannot create the data directory \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent("chaperone.db")
        let writer = try SQLiteLink(path: path)
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        try writer.execute("""
            PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = \(synchronous); PRAGMA busy_timeout = 10000;
            PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY; PRAGMA secure_delete = OFF;
            PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;
            """)
        var readers: [(link: SQLiteLink, gate: Turnstile)] = []
        for _ in 0..<2 {
            let reader = try SQLiteLink(path: path)
            try reader.execute("PRAGMA busy_timeout = 10000; PRAGMA cache_size = -32768; PRAGMA query_only = 1;")
            readers.append((reader, Turnstile()))
        }
        let checkpointer = try SQLiteLink(path: path)
        try checkpointer.execute("PRAGMA busy_timeout = 10000")
        let readerThreads = NIOThreadPool(numberOfThreads: readers.count + 1)
        readerThreads.start()
        return SQLiteEngine(path: path, writer: writer, readers: readers, checkpointer: checkpointer, readerThreads: readerThreads, logger: logger)
    }

    private init(
        path: String, writer: SQLiteLink, readers: [(link: SQLiteLink, gate: Turnstile)], checkpointer: SQLiteLink, readerThreads: NIOThreadPool,
        logger: Logger
    ) {
        self.path = path
        self.writer = writer
        self.writerThread = DedicatedThread()
        self.readers = readers
        self.readerThreads = readerThreads
        self.checkpointer = checkpointer
        let gate = self.gate
        self.checkpoints = Task {
            await Self.checkpointLoop(checkpointer, path: path, threads: readerThreads, writerGate: gate, logger: logger)
        }
    }

    /// Copies committed pages from the write-ahead log into the database beside the writer
    /// (SQLite would otherwise do it inside a writer's commit, on the ingest path). Passive
    /// copies never block the writer; when the log has grown past `walLimitBytes` because the
    /// writer never paused, one copy waits for a moment between transactions and starts the log
    /// afresh.
    private static func checkpointLoop(_ link: SQLiteLink, path: String, threads: NIOThreadPool, writerGate: Turnstile, logger: Logger) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !Task.isCancelled else { return }
            do {
                let walBytes = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.int64Value ?? 0
                if walBytes > Self.walLimitBytes {
                    try await writerGate.run { try await threads.runIfActive { try link.execute("PRAGMA wal_checkpoint(TRUNCATE)") } }
                } else if walBytes > 0 {
                    try await threads.runIfActive { try link.execute("PRAGMA wal_checkpoint(PASSIVE)") }
                }
            } catch {
                logger.warning("storage.checkpoint_failed", metadata: ["error": "\(error)"])
            }
        }
    }

    static let walLimitBytes: Int64 = 256 << 20

    /// The whole transaction runs on the writer's own thread: the statements are synchronous
    /// calls into SQLite, with no thread hop between them.
    public func writing<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await self.gate.run {
            try await withTaskExecutorPreference(self.writerThread) {
                let session = WriterSession(link: self.writer)
                try self.writer.execute("BEGIN IMMEDIATE")
                do {
                    let result = try await body(session)
                    try self.writer.execute("COMMIT")
                    return result
                } catch {
                    try? self.writer.execute("ROLLBACK")
                    throw error
                }
            }
        }
    }

    public func besideWriter<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        try await self.writing(body)
    }

    public func reading<T: Sendable>(_ body: @Sendable (any SQLSession) async throws -> T) async throws -> T {
        let reader = self.readers[self.nextReader.increment() % self.readers.count]
        return try await reader.gate.run {
            try await body(ReaderSession(link: reader.link, threads: self.readerThreads))
        }
    }

    public func storageBytes() async throws -> Int64 {
        var total: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: self.path + suffix)
            total += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return total
    }

    public func close() async throws {
        self.checkpoints.cancel()
        await self.checkpoints.value
        try await self.gate.run {
            self.checkpointer.close()
            for reader in self.readers { await reader.gate.run { reader.link.close() } }
            self.writer.close()
        }
        try await self.readerThreads.shutdownGracefully()
        try await self.writerThread.shutdown()
    }

    /// The writer's statements: synchronous, on the writer thread.
    struct WriterSession: SQLSession {
        let link: SQLiteLink
        func run(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] { try self.link.run(sql, binds) }
        func insert(_ insert: SQLInsert, rows: [[SQLValue]]) async throws { try self.link.runEach(insert.singleRow, rows) }
    }

    /// A reader's statements, on the readers' threads (a search can take a while).
    struct ReaderSession: SQLSession {
        let link: SQLiteLink
        let threads: NIOThreadPool
        func run(_ sql: String, _ binds: [SQLValue]) async throws -> [[SQLValue]] {
            try await self.threads.runIfActive { try self.link.run(sql, binds) }
        }
        func insert(_ insert: SQLInsert, rows: [[SQLValue]]) async throws {
            try await self.threads.runIfActive { try self.link.runEach(insert.singleRow, rows) }
        }
    }
}

/// A thread of its own for work that should not wait behind, or hold up, Swift's shared pool.
final class DedicatedThread: TaskExecutor {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let loop: any EventLoop

    init() {
        self.loop = self.group.next()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    func shutdown() async throws {
        try await self.group.shutdownGracefully()
    }
}

/// A counter shared across tasks.
final class NIOLockedCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func increment() -> Int { self.value.withLockedValue { $0 += 1; return $0 } }
}

public enum StoreError: Error, CustomStringConvertible {
    case unavailable(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "storage unavailable: \(why)"
        case .corrupt(let why): "storage inconsistent: \(why)"
        }
    }
}
