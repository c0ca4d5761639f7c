import ChaperoneCore
import ChaperoneLLM
import NIOCore

/// Watches response bytes on their way to the agent without holding them up: hashes and counts
/// them, feeds server-sent events to the stream accumulator as they arrive, and keeps a bounded
/// copy of a non-streamed LLM body to read once it is complete.
struct ResponseObserver {
    private let operation: LLMOperation?
    private let captureLimit: Int
    private var accumulator: StreamAccumulator?
    private var captured: [UInt8] = []
    private var digest = BodyDigest()
    private(set) var captureOverflowed = false

    init(operation: LLMOperation?, contentType: String?, captureLimit: Int) {
        self.operation = operation
        self.captureLimit = operation == nil ? 0 : captureLimit
        let isEventStream = contentType?.lowercased().hasPrefix("text/event-stream") ?? false
        self.accumulator = isEventStream ? operation?.makeStreamAccumulator() : nil
    }

    var byteCount: Int { self.digest.byteCount }
    var sha256: String { self.digest.finalize() }
    var isEventStream: Bool { self.accumulator != nil }

    mutating func observe(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            self.digest.update(bufferPointer: bytes)
            self.read(bytes)
        }
    }

    /// Hashes and counts upstream bytes only (their content is read in masked form via `read`).
    mutating func hash(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.digest.update(bufferPointer: $0) }
    }

    /// Reads response content (masked) for the audit summary.
    mutating func read(_ bytes: some Collection<UInt8>) {
        if self.accumulator != nil {
            self.accumulator?.feed(bytes)
        } else if self.captureLimit > 0, !self.captureOverflowed {
            if self.captured.count + bytes.count <= self.captureLimit {
                self.captured.append(contentsOf: bytes)
            } else {
                self.captureOverflowed = true
                self.captured = []
            }
        }
    }

    /// What the adapters read from the response so far; nil for generic traffic.
    var summary: ResponseSummary? {
        guard let operation = self.operation else { return nil }
        if let accumulator = self.accumulator { return accumulator.summary }
        guard !self.captureOverflowed, !self.captured.isEmpty else { return ResponseSummary() }
        return operation.summarizeResponse(self.captured)
    }
}
