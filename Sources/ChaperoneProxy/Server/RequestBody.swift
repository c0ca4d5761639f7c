import ChaperoneCore
import NIOCore
import NIOHTTP1

/// The parts of one connection, read strictly one at a time: by the connection loop between
/// requests, and by a request's body while it is being forwarded. Never two readers at once, which
/// is what makes handing the iterator to the upstream client's body task sound.
final class InboundParts: @unchecked Sendable {
    private var iterator: NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator

    init(_ iterator: NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator) {
        self.iterator = iterator
    }

    func next() async throws -> HTTPServerRequestPart? {
        try await self.iterator.next()
    }
}

enum RequestBodyError: Error, Equatable {
    case tooLarge(limit: Int)
    /// The agent closed the connection before the body ended.
    case truncated
    case unexpectedPart
}

/// A request body read from the connection as the consumer asks for it, so the agent is only read
/// as fast as the upstream accepts (backpressure). Counts and hashes what passes, and enforces the
/// size limit.
final class RequestBody: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer

    private let parts: InboundParts
    private let limit: Int
    private var finished = false
    private(set) var byteCount = 0
    private var digest = BodyDigest()

    init(parts: InboundParts, limit: Int) {
        self.parts = parts
        self.limit = limit
    }

    var isComplete: Bool { self.finished }
    var sha256: String { self.digest.finalize() }

    func nextChunk() async throws -> ByteBuffer? {
        if self.finished { return nil }
        guard let part = try await self.parts.next() else { throw RequestBodyError.truncated }
        switch part {
        case .body(let buffer):
            self.byteCount += buffer.readableBytes
            if self.byteCount > self.limit { throw RequestBodyError.tooLarge(limit: self.limit) }
            buffer.withUnsafeReadableBytes { self.digest.update(bufferPointer: $0) }
            return buffer
        case .end:
            self.finished = true
            return nil
        case .head:
            throw RequestBodyError.unexpectedPart
        }
    }

    /// Reads the whole body into one buffer (bounded by the limit).
    func collect() async throws -> ByteBuffer {
        var whole = ByteBuffer()
        while var chunk = try await self.nextChunk() {
            whole.writeBuffer(&chunk)
        }
        return whole
    }

    /// Reads and discards what is left, so the connection can serve its next request. Gives up
    /// (returns false) rather than read past the limit.
    func drain() async -> Bool {
        do {
            while try await self.nextChunk() != nil {}
            return true
        } catch {
            return false
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: RequestBody
        mutating func next() async throws -> ByteBuffer? {
            try await self.body.nextChunk()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}
