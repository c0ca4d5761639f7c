import CChaperoneZlib

/// Inflates a gzip (or zlib) request body with a hard output limit, so a small compressed batch
/// cannot expand into gigabytes.
enum GzipInflater {
    enum Failure: Error, Equatable {
        case tooLarge
        case corrupt(String)
    }

    static func inflate(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
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
