/// Masks text that arrives in pieces — a response's SSE deltas — so that what it emits is
/// exactly what masking the whole text at once would give, whatever the chunking.
///
/// It releases the longest prefix that cannot belong to a secret and holds back only:
/// - the trailing run of token characters (a secret never contains a space, quote or bracket),
///   at most `SecretScanner.maximumMatchLength` bytes of it: a longer run is released with that
///   lag, because no rule's decision reaches further;
/// - an unfinished private-key block, from its BEGIN line until its END line; past
///   `SecretScanner.privateKeyLimit` the block is masked, never released.
///
/// The released text is kept (up to `lookback` bytes, unmasked, in memory only) as context for the
/// rules that look before a secret: a `password =` name, an AWS key id before its secret.
public struct StreamingRedactor: Sendable {
    private let masker: SecretMasker
    private let enabled: [Bool]?
    /// Released context, then pending text.
    private var buffer: [UInt8] = []
    /// Where the pending (not yet released) text starts in `buffer`.
    private var released = 0
    private var precedingByte: UInt8 = 0x20
    public private(set) var findings: [Finding] = []
    /// The most bytes held back at any point.
    public private(set) var largestHold = 0
    /// Where a private-key block with a complete BEGIN line is being held.
    private var heldBlock: Int?

    static let lookback = 512
    static let lag = SecretScanner.maximumMatchLength + 2

    init(masker: SecretMasker, enabled: [Bool]?) {
        self.masker = masker
        self.enabled = enabled
    }

    private var handedOut = 0

    /// Findings since the last call.
    public mutating func takeFindings() -> ArraySlice<Finding> {
        defer { self.handedOut = self.findings.count }
        return self.findings[self.handedOut...]
    }

    /// Bytes received but not yet released.
    public var heldBytes: Int { self.buffer.count - self.released }

    /// Adds text; returns what can be released now (possibly empty).
    public mutating func feed(_ text: String) -> String {
        guard !text.isEmpty else { return "" }
        self.buffer.append(contentsOf: text.utf8)
        // Shortcuts that keep one-byte deltas cheap: nothing can be released yet.
        let held = self.buffer.count - self.released
        if let block = self.heldBlock {
            if !text.utf8.contains(UInt8(ascii: "-")), self.buffer.count - block < SecretScanner.privateKeyLimit {
                self.largestHold = max(self.largestHold, held)
                return ""
            }
        } else if held <= Self.lag, !text.utf8.contains(where: { ByteSet.separators.contains($0) }) {
            // Only token characters arrived: the trailing run grew and still fits the lag.
            self.largestHold = max(self.largestHold, held)
            return ""
        }
        return self.process(atEnd: false)
    }

    /// The stream ended: releases everything still held, masked.
    public mutating func finish() -> String {
        self.process(atEnd: true)
    }

    private mutating func process(atEnd: Bool) -> String {
        let end = self.buffer.count
        guard end > self.released else { return "" }
        let from = self.released
        var output: [UInt8] = []
        var newFindings: [Finding] = []
        var unused: [String: String] = [:]
        var heldBlock: Int?
        let cut: Int = self.buffer.withUnsafeBufferPointer { bytes in
            let window = SecretScanner.Window(text: bytes, precedingByte: self.precedingByte, atEnd: atEnd)
            var cut = end
            if !atEnd {
                var runStart = end
                while runStart > from, ByteSet.token.contains(bytes[runStart - 1]) { runStart -= 1 }
                cut = max(runStart, end - Self.lag)
            }
            let result = self.masker.scanner.scan(window, from: from, enabled: self.enabled)
            if let hold = result.holdFrom {
                cut = min(cut, hold)
                heldBlock = result.holdHeaderComplete ? hold : nil
            } else {
                heldBlock = nil
            }
            let matches = self.masker.scanner.resolve(result.matches.filter { $0.start < cut })
            // A match that starts before the cut is already decided: release it whole.
            for match in matches where match.end > cut { cut = match.end }
            if cut > from || !matches.isEmpty {
                self.masker.render(
                    window, matches: matches, from: from, to: cut, into: &output, findings: &newFindings,
                    originals: &unused, keepOriginals: false
                )
            }
            return cut
        }
        self.released = cut
        self.heldBlock = heldBlock
        self.findings += newFindings
        self.largestHold = max(self.largestHold, self.buffer.count - self.released)
        // Keep at most `lookback` bytes of released context.
        let excess = self.released - Self.lookback
        if excess > Self.lookback {
            self.precedingByte = self.buffer[excess - 1]
            self.buffer.removeFirst(excess)
            self.released -= excess
            if let block = self.heldBlock { self.heldBlock = block - excess }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
