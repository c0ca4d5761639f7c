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

    /// Microseconds since the Unix epoch, as the collector stores times.
    public static func nowMicroseconds() -> Int64 {
        Int64(Self.nowNanoseconds() / 1000)
    }

    /// `rfc3339(nanoseconds:)` for microseconds since the epoch (times before it print as the epoch).
    public static func rfc3339(microseconds: Int64) -> String {
        Self.rfc3339(nanoseconds: UInt64(max(0, microseconds)) * 1000)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (or `+00:00`) to microseconds since the epoch.
    public static func microseconds(rfc3339 text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == 0x2d, b[7] == 0x2d, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3a, b[16] == 0x3a else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                value = value * 10 + Int(b[i] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var index = 19
        var fraction = 0
        var digits = 0
        if index < b.count, b[index] == 0x2e {
            index += 1
            while index < b.count, (0x30...0x39).contains(b[index]) {
                if digits < 6 {
                    fraction = fraction * 10 + Int(b[index] - 0x30)
                    digits += 1
                }
                index += 1
            }
            guard digits > 0 else { return nil }
            while digits < 6 {
                fraction *= 10
                digits += 1
            }
        }
        let zone = b[index...]
        guard zone.elementsEqual("Z".utf8) || zone.elementsEqual("z".utf8) || zone.elementsEqual("+00:00".utf8) else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        return seconds * 1_000_000 + Int64(fraction)
    }

    /// RFC 3339 UTC timestamp with microseconds, e.g. `2026-11-22T01:02:03.456789Z`.
    public static func rfc3339(nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        let micros = Int((nanoseconds % 1_000_000_000) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Written digit by digit: this runs for every event the collector prints.
        var text: [UInt8] = []
        text.reserveCapacity(27)
        func append(_ value: Int, width: Int, then separator: UInt8) {
            var scale = 1
            var count = 1
            while count < width || value / scale >= 10 {
                scale *= 10
                count += 1
            }
            while scale > 0 {
                text.append(UInt8(ascii: "0") + UInt8(value / scale % 10))
                scale /= 10
            }
            text.append(separator)
        }
        append(Int(parts.tm_year) + 1900, width: 4, then: UInt8(ascii: "-"))
        append(Int(parts.tm_mon) + 1, width: 2, then: UInt8(ascii: "-"))
        append(Int(parts.tm_mday), width: 2, then: UInt8(ascii: "T"))
        append(Int(parts.tm_hour), width: 2, then: UInt8(ascii: ":"))
        append(Int(parts.tm_min), width: 2, then: UInt8(ascii: ":"))
        append(Int(parts.tm_sec), width: 2, then: UInt8(ascii: "."))
        append(micros, width: 6, then: UInt8(ascii: "Z"))
        return String(decoding: text, as: UTF8.self)
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
