import CChaperoneZlib

/// gzip for batches of audit events: the proxy's shipper compresses them, the collector inflates
/// them with a hard output limit (so a small compressed batch cannot expand into gigabytes).
public enum Gzip {
    public enum Failure: Error, Equatable {
        case tooLarge
        case corrupt(String)
    }

    /// zlib could not start or finish compressing (it could not allocate its state).
    public struct CompressionFailure: Error, CustomStringConvertible {
        public var zlibStatus: Int32
        public var description: String { "gzip compression failed (zlib status \(self.zlibStatus))" }
    }

    /// `input` as one gzip member. Level 1 (fastest): audit JSON compresses about as well at 1 as
    /// at 6, and the sidecar's CPU is the agent's pod's.
    public static func deflate(_ input: [UInt8], level: Int32 = 1) throws(CompressionFailure) -> [UInt8] {
        var stream = z_stream()
        let started = chaperone_deflate_init_gzip(&stream, level)
        guard started == Z_OK else { throw CompressionFailure(zlibStatus: started) }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
        var input = input
        let (status, produced) = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = UInt32(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = UInt32(outputBuffer.count)
                // deflateBound sizes the output for one Z_FINISH call.
                let status = CChaperoneZlib.deflate(&stream, Z_FINISH)
                return (status, outputBuffer.count - Int(stream.avail_out))
            }
        }
        guard status == Z_STREAM_END else { throw CompressionFailure(zlibStatus: status) }
        output.removeLast(output.count - produced)
        return output
    }

    public static func inflate(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        // 15 window bits + 32: accept gzip and zlib headers alike.
        guard chaperone_inflate_init(&stream, 15 + 32) == Z_OK else { throw .corrupt("zlib could not start") }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        output.reserveCapacity(min(limit, max(input.count * 4, 4096)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        let result: Result<Void, Failure> = input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = UInt32(inputBuffer.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { chunkBuffer -> (Int32, Int) in
                    stream.next_out = chunkBuffer.baseAddress
                    stream.avail_out = UInt32(chunkBuffer.count)
                    let status = CChaperoneZlib.inflate(&stream, Z_NO_FLUSH)
                    return (status, chunkBuffer.count - Int(stream.avail_out))
                }
                if output.count + produced > limit { return .failure(.tooLarge) }
                output.append(contentsOf: chunk[0..<produced])
                switch status {
                case Z_STREAM_END:
                    // Concatenated gzip members are valid gzip: keep going if input remains.
                    if stream.avail_in > 0, inflateReset(&stream) == Z_OK { continue }
                    return .success(())
                case Z_OK:
                    if stream.avail_in == 0 && produced == 0 { return .failure(.corrupt("the gzip stream ends early")) }
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 { return .failure(.corrupt("the gzip stream ends early")) }
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    return .failure(.corrupt(message))
                }
            }
        }
        try result.get()
        return output
    }
}
