import Foundation

/// The small judgements detectors share: is this value random enough, is it a placeholder, does
/// a checksum hold. All work on bytes.
enum Plausibility {
    /// Shannon entropy in bits per byte.
    static func entropy(_ bytes: UnsafeBufferPointer<UInt8>.SubSequence) -> Double {
        guard !bytes.isEmpty else { return 0 }
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 128) { counts in
            counts.initialize(repeating: 0)
            for byte in bytes { counts[Int(byte & 0x7F)] &+= 1 }
            let total = Double(bytes.count)
            var bits = 0.0
            for count in counts where count > 0 {
                let p = Double(count) / total
                bits -= p * log2(p)
            }
            return bits
        }
    }

    /// Words and shapes that mark a value as an example or a reference to a secret kept elsewhere.
    static let placeholderWords: [[UInt8]] = [
        "example", "changeme", "change_me", "change-me", "changeit", "your_", "your-", "yourkey", "yourtoken", "yoursecret",
        "placeholder", "dummy", "sample", "xxxx", "****", "...", "replace", "redacted", "fixme", "insert_", "${", "{{", "$(",
        "%(", "%{", "env(", "process.env", "os.environ", "getenv", "secretkeyref", "notasecret", "not-a-secret", "not_a_secret",
        "fake", "abcdefgh", "qwerty", "lorem", "<", ">", "secretsmanager", "vault:", "ref+",
        "keyvault", "aws_secret", "/run/secrets", "/var/run/secrets", "@sha256", "op://",
    ].map { Array($0.utf8) }

    static func isPlaceholder(_ value: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        guard let first = value.first else { return true }
        // `$VAR`, `${VAR}`, `@var`, and `%VAR%` (Windows); a `%` inside a random value is not one.
        if first == UInt8(ascii: "$") || first == UInt8(ascii: "@") { return true }
        if first == UInt8(ascii: "%"), value.count > 1, value.last == UInt8(ascii: "%") { return true }
        // One repeated character, or nearly.
        var seen = ByteSet()
        var distinct = 0
        for byte in value where !seen.contains(byte) {
            seen.insert(byte)
            distinct += 1
            if distinct > 3 { break }
        }
        if distinct <= 3 { return true }
        return placeholderIndex.occurs(in: value)
    }

    private static let placeholderIndex = WordIndex(placeholderWords)

    /// Lower-case words grouped by their first byte, so that one pass over a value finds any of
    /// them, ASCII case folded.
    struct WordIndex: Sendable {
        /// The words back to back, sorted by first byte.
        private let bytes: [UInt8]
        /// Word `w` is `bytes[wordStarts[w]..<wordStarts[w + 1]]`.
        private let wordStarts: [Int]
        /// The words that start with byte `b` are `firstStarts[b]..<firstStarts[b + 1]`.
        private let firstStarts: [Int]
        private let firstBytes: ByteSet

        init(_ words: [[UInt8]]) {
            let sorted = words.filter { !$0.isEmpty }.sorted { $0[0] < $1[0] }
            var bytes: [UInt8] = [], wordStarts = [0], firstStarts = [Int](repeating: 0, count: 257), firstBytes = ByteSet()
            for word in sorted {
                bytes += word
                wordStarts.append(bytes.count)
                firstBytes.insert(word[0])
            }
            var w = 0
            for b in 0..<256 {
                firstStarts[b] = w
                while w < sorted.count, Int(sorted[w][0]) == b { w += 1 }
            }
            firstStarts[256] = sorted.count
            self.bytes = bytes
            self.wordStarts = wordStarts
            self.firstStarts = firstStarts
            self.firstBytes = firstBytes
        }

        func occurs(in value: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
            self.bytes.withUnsafeBufferPointer { bytes in
                self.wordStarts.withUnsafeBufferPointer { wordStarts in
                    self.firstStarts.withUnsafeBufferPointer { firstStarts in
                        var index = value.startIndex
                        while index < value.endIndex {
                            let first = Plausibility.folded(value[index])
                            if self.firstBytes.contains(first) {
                                next: for w in firstStarts[Int(first)]..<firstStarts[Int(first) + 1] {
                                    let start = wordStarts[w], count = wordStarts[w + 1] - start
                                    guard value.endIndex - index >= count else { continue }
                                    for offset in 1..<count where Plausibility.folded(value[index + offset]) != bytes[start + offset] { continue next }
                                    return true
                                }
                            }
                            index += 1
                        }
                        return false
                    }
                }
            }
        }
    }

    @inline(__always)
    static func folded(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    /// Whether `haystack`, ASCII case folded, contains `needle` (lower case).
    static func containsFolded(_ haystack: UnsafeBufferPointer<UInt8>.SubSequence, _ needle: some Collection<UInt8>) -> Bool {
        guard let first = needle.first else { return true }
        let count = needle.count
        guard count <= haystack.count else { return false }
        var index = haystack.startIndex
        let last = haystack.endIndex - count
        while index <= last {
            if folded(haystack[index]) == first {
                var match = true
                var offset = index + 1
                for byte in needle.dropFirst() {
                    if folded(haystack[offset]) != byte { match = false; break }
                    offset += 1
                }
                if match { return true }
            }
            index += 1
        }
        return false
    }

    /// Whether `haystack`, ASCII case folded, ends with `suffix` (lower case).
    static func hasFoldedSuffix(_ haystack: UnsafeBufferPointer<UInt8>.SubSequence, _ suffix: [UInt8]) -> Bool {
        guard suffix.count <= haystack.count else { return false }
        var index = haystack.endIndex - suffix.count
        for byte in suffix {
            if folded(haystack[index]) != byte { return false }
            index += 1
        }
        return true
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return needle.isEmpty }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var match = true
                var offset = 1
                while offset < needle.count {
                    if haystack[index + offset] != needle[offset] { match = false; break }
                    offset += 1
                }
                if match { return true }
            }
            index += 1
        }
        return false
    }

    struct Classes {
        var upper = 0, lower = 0, digit = 0, other = 0
        init(_ bytes: UnsafeBufferPointer<UInt8>.SubSequence) {
            for byte in bytes {
                if byte &- 0x41 < 26 { upper += 1 } else if byte &- 0x61 < 26 { lower += 1 } else if byte &- 0x30 < 10 { digit += 1 } else { other += 1 }
            }
        }
    }

    /// A value assigned to a secret-looking name that is itself random enough to be a credential.
    static func isSecretLike(_ value: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        // Cheapest tests first; all must pass, so the order does not change the answer.
        let classes = Classes(value)
        let letters = classes.upper + classes.lower
        guard letters > 0, classes.digit > 0 || classes.other > 0 else { return false }
        // Mostly words: identifiers, paths and dotted names, not secrets.
        if classes.digit == 0 && classes.upper == 0 { return false }
        // Paths: `/etc/…`, `~/…`, `./…`, `../…` (a leading dot alone is just a character).
        if let first = value.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "~") { return false }
        if value.count >= 2, value.first == UInt8(ascii: "."),
           value[value.startIndex + 1] == UInt8(ascii: "/") || value[value.startIndex + 1] == UInt8(ascii: ".") { return false }
        if isDottedIdentifier(value) { return false }
        if isNumberLike(value) { return false }
        let threshold = min(3.0, log2(Double(value.count)) * 0.85)
        return entropy(value) >= threshold && !isPlaceholder(value)
    }

    /// `config.secret_key`, `settings.API_TOKEN`: code that names a secret, not the secret.
    static func isDottedIdentifier(_ value: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        let letters = ByteSet.letters, digitSet = ByteSet.digits // once, not per byte
        var sawDot = false
        var segmentStart = true
        var digits = 0
        for byte in value {
            if byte == UInt8(ascii: ".") {
                if segmentStart { return false }
                sawDot = true
                segmentStart = true
                continue
            }
            if segmentStart {
                guard letters.contains(byte) || byte == UInt8(ascii: "_") else { return false }
                segmentStart = false
            } else if digitSet.contains(byte) {
                digits += 1
            } else if !(letters.contains(byte) || byte == UInt8(ascii: "_")) {
                return false
            }
        }
        guard sawDot && !segmentStart && digits <= 2 else { return false }
        // Identifiers change case at word boundaries (`config.secretAccessKeyId`: 6 switches in
        // 22 letters); a random value with a dot in it changes case at every other letter.
        var switches = 0, letterCount = 0
        var previous: UInt8 = 0
        for byte in value {
            if byte == UInt8(ascii: ".") {
                if switches >= 6 && switches * 5 > letterCount * 2 { return false }
                switches = 0
                letterCount = 0
                previous = 0
                continue
            }
            guard letters.contains(byte) else { previous = 0; continue }
            letterCount += 1
            if previous != 0, (previous &- 0x61 < 26) != (byte &- 0x61 < 26) { switches += 1 }
            previous = byte
        }
        return !(switches >= 6 && switches * 5 > letterCount * 2)
    }

    /// Version numbers, dates, IPs: digits with separators.
    static func isNumberLike(_ value: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        var letters = 0
        for byte in value where byte | 0x20 &- 0x61 < 26 { letters += 1 }
        return letters <= 1
    }

    static func isUUID(_ value: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        guard value.count == 36 else { return false }
        for (offset, byte) in value.enumerated() {
            if [8, 13, 18, 23].contains(offset) {
                if byte != UInt8(ascii: "-") { return false }
            } else if !ByteSet.hex.contains(byte) {
                return false
            }
        }
        return true
    }

    // MARK: checksums and encodings

    private static let crcTable: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        return crc
    }

    static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static let base62Alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func base62(_ value: UInt32, width: Int) -> [UInt8] {
        var digits: [UInt8] = []
        var rest = value
        while rest > 0 {
            digits.append(base62Alphabet[Int(rest % 62)])
            rest /= 62
        }
        while digits.count < width { digits.append(UInt8(ascii: "0")) }
        return digits.reversed()
    }

    /// GitHub classic tokens: the last six characters are base62(CRC32(the thirty before them)).
    static func githubChecksumHolds(_ body: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        guard body.count >= 36 else { return false }
        let random = body.prefix(body.count - 6).suffix(30)
        return base62(crc32(random), width: 6) == Array(body.suffix(6))
    }

    /// Standard or URL-safe base64, padding optional; nil when not base64.
    static func base64Decode(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in text {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            buffer = (buffer << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        return output
    }
}
