#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock helpers for event identifiers and timestamps.
public enum WallClock {
    /// Nanoseconds since the Unix epoch.
    public static func nowNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// RFC 3339 UTC timestamp with microseconds, e.g. `2026-11-22T01:02:03.456789Z`.
    public static func rfc3339(nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        let micros = Int((nanoseconds % 1_000_000_000) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
            + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
            + ".\(pad(micros, 6))Z"
    }
}

/// UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then random bits, so ids sort by time.
public struct UUIDv7: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes, most significant first, as two big-endian halves.
    public let high: UInt64
    public let low: UInt64

    public init(unixMilliseconds: UInt64 = WallClock.nowNanoseconds() / 1_000_000) {
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        // 48 bits of time, version 7, 12 random bits; then variant 0b10 and 62 random bits.
        self.high = (unixMilliseconds << 16) | 0x7000 | (random & 0x0fff)
        let more: UInt64 = generator.next()
        self.low = (more & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000
    }

    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: self.high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: self.low >> (56 - 8 * $0)) }
    }

    /// `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`, lower case.
    public var description: String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var out = 0
            func put(_ value: UInt64, nibbles: ClosedRange<Int>) {
                for nibble in nibbles.reversed() {
                    buffer[out] = digits.utf8Start[Int((value >> (4 * UInt64(nibble))) & 0xf)]
                    out += 1
                }
            }
            put(self.high, nibbles: 8...15)
            buffer[out] = UInt8(ascii: "-"); out += 1
            put(self.high, nibbles: 4...7)
            buffer[out] = UInt8(ascii: "-"); out += 1
            put(self.high, nibbles: 0...3)
            buffer[out] = UInt8(ascii: "-"); out += 1
            put(self.low, nibbles: 12...15)
            buffer[out] = UInt8(ascii: "-"); out += 1
            put(self.low, nibbles: 0...11)
            return out
        }
    }
}
