import Crypto

/// Turns a secret into the 8-hex fingerprint in its placeholder: the first four bytes of
/// HMAC-SHA256 under a per-installation key. The same secret gives the same placeholder across
/// every pod that shares the key, so investigators can follow a leak without the value being kept.
public struct Fingerprinter: Sendable {
    /// HMAC keyed once: its inner and outer key blocks are hashed here, not per secret.
    private let keyed: HMAC<SHA256>

    public init(key: some Collection<UInt8>) {
        self.keyed = HMAC<SHA256>(key: SymmetricKey(data: Array(key)))
    }

    /// A key that lives only as long as this process (no key file configured).
    public static func ephemeral() -> Fingerprinter {
        Fingerprinter(key: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    public func fingerprint(_ secret: some Collection<UInt8>) -> String {
        var hmac = self.keyed
        hmac.update(data: Array(secret))
        let mac = hmac.finalize()
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in Array(mac).prefix(4) {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// A secret found and masked. Carries the detector, how sure it is, and the fingerprint — never
/// the secret.
public struct Finding: Sendable, Hashable {
    public var detector: String
    public var confidence: Confidence
    public var fingerprint: String

    public init(detector: String, confidence: Confidence, fingerprint: String) {
        self.detector = detector
        self.confidence = confidence
        self.fingerprint = fingerprint
    }

    /// `[REDACTED:<detector>:<fingerprint>]`, what replaces the secret in the text.
    public var placeholder: String { "[REDACTED:\(self.detector):\(self.fingerprint)]" }
}

/// Text after masking, and what was found in it.
public struct MaskedText: Sendable {
    public var text: String
    public var findings: [Finding]
    /// Placeholder → original secret, kept only when restoring was asked for. Lives in memory for
    /// one exchange; never logged or recorded.
    public var originals: [String: String]

    public var changed: Bool { !self.findings.isEmpty }
}

/// Which detectors apply. Policy `allow` rules switch detectors off for some traffic.
public struct DetectorSelection: Sendable, Equatable {
    public static let all = DetectorSelection(exempt: [])
    public var exempt: Set<String>
    public init(exempt: Set<String>) { self.exempt = exempt }
}

/// The masking engine: scanner, fingerprints and rendering, shared by whole-text masking, the
/// streaming redactor and `chaperonectl mask`.
public final class SecretMasker: Sendable {
    public let scanner: SecretScanner
    public let fingerprinter: Fingerprinter

    public init(scanner: SecretScanner = SecretScanner(), fingerprinter: Fingerprinter) {
        self.scanner = scanner
        self.fingerprinter = fingerprinter
    }

    func enabledMask(_ selection: DetectorSelection) -> [Bool]? {
        guard !selection.exempt.isEmpty else { return nil }
        return self.scanner.detectors.map { !selection.exempt.contains($0.id) }
    }

    /// Masks a whole text at once.
    public func mask(_ text: String, selection: DetectorSelection = .all, keepOriginals: Bool = false) -> MaskedText {
        var text = text
        let enabled = self.enabledMask(selection)
        var matches: [SecretMatch] = []
        var findings: [Finding] = []
        var originals: [String: String] = [:]
        text.withUTF8 { bytes in
            let window = SecretScanner.Window(text: bytes, precedingByte: 0x20, atEnd: true)
            matches = self.scanner.resolve(self.scanner.scan(window, from: 0, enabled: enabled).matches)
            findings.reserveCapacity(matches.count)
            for match in matches {
                let secret = bytes[match.start..<match.end]
                let finding = Finding(
                    detector: self.scanner.detectors[match.detector].id, confidence: match.confidence,
                    fingerprint: self.fingerprinter.fingerprint(secret)
                )
                if keepOriginals { originals[finding.placeholder] = String(decoding: secret, as: UTF8.self) }
                findings.append(finding)
            }
        }
        guard !matches.isEmpty else { return MaskedText(text: text, findings: [], originals: [:]) }
        // Built from slices of the original string (already valid UTF-8, so not checked again).
        // Matches start and end at ASCII bytes, so every slice is whole scalars.
        let utf8 = text.utf8
        var output = ""
        output.reserveCapacity(utf8.count + matches.count * 48)
        var position = utf8.startIndex
        for (match, finding) in zip(matches, findings) {
            let start = utf8.index(utf8.startIndex, offsetBy: match.start)
            output.append(contentsOf: Substring(utf8[position..<start]))
            output.append(finding.placeholder)
            position = utf8.index(utf8.startIndex, offsetBy: match.end)
        }
        output.append(contentsOf: Substring(utf8[position...]))
        return MaskedText(text: output, findings: findings, originals: originals)
    }

    /// A redactor for one stream of text (one response's text deltas, one tool call's arguments).
    public func makeRedactor(selection: DetectorSelection = .all) -> StreamingRedactor {
        StreamingRedactor(masker: self, enabled: self.enabledMask(selection))
    }

    /// Copies `[from, to)` of the window to `output`, replacing each match with its placeholder.
    func render(
        _ window: SecretScanner.Window, matches: [SecretMatch], from: Int, to: Int,
        into output: inout [UInt8], findings: inout [Finding], originals: inout [String: String], keepOriginals: Bool
    ) {
        var position = from
        for match in matches where match.start >= from && match.start < to {
            guard match.start >= position else { continue }
            output.append(contentsOf: window.text[position..<match.start])
            let secret = window.text[match.start..<match.end]
            let finding = Finding(
                detector: self.scanner.detectors[match.detector].id, confidence: match.confidence,
                fingerprint: self.fingerprinter.fingerprint(secret)
            )
            let placeholder = finding.placeholder
            output.append(contentsOf: placeholder.utf8)
            findings.append(finding)
            if keepOriginals { originals[placeholder] = String(decoding: secret, as: UTF8.self) }
            position = match.end
        }
        if position < to { output.append(contentsOf: window.text[position..<to]) }
    }
}
