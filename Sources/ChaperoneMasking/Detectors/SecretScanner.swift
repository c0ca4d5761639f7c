/// A detector's match: the byte range of the secret in the scanned text.
public struct SecretMatch: Sendable, Equatable {
    public var start: Int
    public var end: Int
    /// Index into `SecretScanner.detectors`.
    public var detector: Int
    public var confidence: Confidence
}

/// Finds secrets in one pass: the keyword automaton reports where any detector's keyword occurs,
/// and only there the detector's rule looks at the bytes around it.
///
/// Every rule reads a bounded neighbourhood of its keyword: at most `contextReach` bytes before
/// the match and `maximumMatchLength + 1` bytes after its start (a private-key block reads up to
/// `privateKeyLimit`). The streaming redactor relies on these bounds to produce the same output
/// as a scan of the whole text.
public final class SecretScanner: Sendable {
    public let detectors: [Detector]
    private let automaton: KeywordAutomaton
    /// The targets of keyword `k`: `targets[targetStarts[k]..<targetStarts[k + 1]]`.
    private let targets: [Target]
    private let targetStarts: [Int]
    /// Every target's keyword in its exact case, back to back.
    private let patternBytes: [UInt8]
    private let keywordLengths: [Int]
    private let priorities: [Int]
    private let indexByID: [String: Int]

    /// Longest match any rule but the private-key block produces.
    public static let maximumMatchLength = 8192
    /// A private-key block longer than this without an END line is masked up to here.
    public static let privateKeyLimit = 16384
    /// How far before a match a rule may look (names before values, an AWS key id before its
    /// secret, the characters before an Azure secret's `Q~`).
    public static let contextReach = 320

    /// A detector that a keyword leads to. Plain values only (no references), so that the
    /// per-hit loop does no reference counting.
    private struct Target: Sendable {
        var detector: Int
        var kind: Kind
        /// The keyword in its exact case (prefix rules compare case-sensitively), as a range of
        /// `patternBytes`.
        var patternStart: Int
        var patternCount: Int

        enum Kind: UInt8, Sendable { case prefixed, assigned, privateKeyBlock, jsonWebToken, uriPassword, authorization, azureClientSecret }
    }

    public init(detectors: [Detector] = DetectorCatalog.builtIn) {
        self.detectors = detectors
        // Several rules may report one id: variants of one credential (legacy and current
        // formats). `index(of:)` gives the first.
        var ids: [String: Int] = [:]
        for (index, detector) in detectors.enumerated() where ids[detector.id] == nil {
            ids[detector.id] = index
        }
        self.indexByID = ids

        var entries: [(keyword: String, owner: Target)] = []
        var patternBytes: [UInt8] = []
        func add(_ keyword: String, _ detector: Int) {
            let kind: Target.Kind
            switch detectors[detector].rule {
            case .prefixed: kind = .prefixed
            case .assigned: kind = .assigned
            case .privateKeyBlock: kind = .privateKeyBlock
            case .jsonWebToken: kind = .jsonWebToken
            case .uriPassword: kind = .uriPassword
            case .authorization: kind = .authorization
            case .azureClientSecret: kind = .azureClientSecret
            case .reportedBy: return
            }
            entries.append((keyword, Target(detector: detector, kind: kind, patternStart: patternBytes.count, patternCount: keyword.utf8.count)))
            patternBytes += Array(keyword.utf8)
        }
        var priorities: [Int] = []
        for (index, detector) in detectors.enumerated() {
            switch detector.rule {
            case .prefixed(let rule):
                rule.prefixes.forEach { add($0, index) }
                priorities.append(3)
            case .assigned(let rule):
                rule.names.forEach { add($0, index) }
                if case .secretLike = rule.check { priorities.append(0) } else { priorities.append(2) }
            case .privateKeyBlock:
                add("-----BEGIN", index)
                priorities.append(5)
            case .jsonWebToken:
                add("eyJ", index)
                priorities.append(4)
            case .reportedBy:
                priorities.append(4)
            case .uriPassword:
                add("://", index)
                priorities.append(2)
            case .authorization(let scheme):
                add(scheme.rawValue, index)
                priorities.append(1)
            case .azureClientSecret:
                add("Q~", index)
                priorities.append(3)
            }
        }
        let (automaton, targetsByKeyword) = KeywordAutomaton.grouping(entries)
        self.automaton = automaton
        self.targets = targetsByKeyword.flatMap { $0 }
        var starts = [0]
        for list in targetsByKeyword { starts.append(starts.last! + list.count) }
        self.targetStarts = starts
        self.patternBytes = patternBytes
        self.keywordLengths = automaton.keywords.map(\.count)
        self.priorities = priorities
    }

    public func index(of id: String) -> Int? { self.indexByID[id] }

    /// The text a scan looks at. Positions before 0 read `precedingByte` (the byte before the
    /// window when the window starts inside a longer text); positions past the end read a space.
    struct Window {
        let text: UnsafeBufferPointer<UInt8>
        let precedingByte: UInt8
        /// True when the text ends here; false when more may follow (streaming).
        let atEnd: Bool

        var count: Int { self.text.count }

        @inline(__always)
        subscript(_ index: Int) -> UInt8 {
            if index >= 0 && index < self.text.count { return self.text[index] }
            return index == -1 ? self.precedingByte : 0x20
        }

        func hasPrefix(_ pattern: [UInt8], at index: Int) -> Bool {
            guard index >= 0, index + pattern.count <= self.text.count else { return false }
            for (offset, byte) in pattern.enumerated() where self.text[index + offset] != byte { return false }
            return true
        }

        @inline(__always)
        func hasPrefix(_ pattern: UnsafeBufferPointer<UInt8>.SubSequence, at index: Int) -> Bool {
            guard index >= 0, index + pattern.count <= self.text.count else { return false }
            var offset = index
            for byte in pattern {
                if self.text[offset] != byte { return false }
                offset &+= 1
            }
            return true
        }

        func slice(_ start: Int, _ end: Int) -> UnsafeBufferPointer<UInt8>.SubSequence { self.text[start..<end] }
    }

    struct ScanResult {
        var matches: [SecretMatch] = []
        /// Where an unfinished private-key block starts (streaming only): nothing from here may
        /// be released yet.
        var holdFrom: Int?
        /// The held block's BEGIN line is complete: only a `-` (its END line) or reaching the
        /// limit can release it.
        var holdHeaderComplete = false
    }

    /// All matches that start at or after `from`, unresolved (they may overlap).
    func scan(_ window: Window, from: Int, enabled: [Bool]?) -> ScanResult {
        var result = ScanResult()
        let scanStart = max(0, from - Self.contextReach)
        self.targets.withUnsafeBufferPointer { targets in
            self.targetStarts.withUnsafeBufferPointer { targetStarts in
                self.keywordLengths.withUnsafeBufferPointer { keywordLengths in
                    self.patternBytes.withUnsafeBufferPointer { patterns in
                        self.automaton.scan(window.text, from: scanStart) { keyword, end in
                            let start = end &- keywordLengths[keyword]
                            for index in targetStarts[keyword]..<targetStarts[keyword &+ 1] {
                                let target = targets[index]
                                if let enabled, !enabled[target.detector] { continue }
                                let pattern = patterns[target.patternStart..<(target.patternStart &+ target.patternCount)]
                                guard Self.mayMatch(target, pattern: pattern, at: start, end: end, window: window) else { continue }
                                self.confirm(target, pattern: pattern, at: start, window: window, from: from, enabled: enabled, into: &result)
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// Cheap conditions every rule of the target's kind checks anyway, tested before the rule
    /// itself: most keyword hits in ordinary text (`token` in prose, `sk` in `task`) end here.
    @inline(__always)
    private static func mayMatch(_ target: Target, pattern: UnsafeBufferPointer<UInt8>.SubSequence, at start: Int, end: Int, window: Window) -> Bool {
        switch target.kind {
        case .prefixed, .privateKeyBlock:
            return window.hasPrefix(pattern, at: start) && (target.kind == .privateKeyBlock || !ByteSet.alphanumeric.contains(window[start - 1]))
        case .assigned:
            return true
        case .jsonWebToken:
            return !Self.jwtAround.contains(window[start - 1])
        case .uriPassword:
            return start > 0 && Self.schemeCharacters.contains(window.text[start - 1])
        case .authorization:
            return window[end] == 0x20 && !ByteSet.alphanumeric.contains(window[start - 1])
        case .azureClientSecret:
            return start >= 4 && ByteSet.digits.contains(window.text[start - 1]) && window.hasPrefix(pattern, at: start)
        }
    }

    /// Overlapping matches: the earlier one wins; at the same start, the more specific detector.
    /// The order is total, so the result does not depend on the order the matches were found in.
    func resolve(_ matches: [SecretMatch]) -> [SecretMatch] {
        guard matches.count > 1 else { return matches }
        let sorted = matches.sorted { a, b in
            if a.start != b.start { return a.start < b.start }
            let pa = self.priorities[a.detector], pb = self.priorities[b.detector]
            if pa != pb { return pa > pb }
            if a.end != b.end { return a.end > b.end }
            if a.detector != b.detector { return a.detector < b.detector }
            return a.confidence > b.confidence
        }
        var kept: [SecretMatch] = []
        kept.reserveCapacity(sorted.count)
        for match in sorted {
            if let last = kept.last, match.start < last.end { continue }
            kept.append(match)
        }
        return kept
    }

    // MARK: rules

    private func confirm(
        _ target: Target, pattern: UnsafeBufferPointer<UInt8>.SubSequence, at start: Int, window: Window, from: Int, enabled: [Bool]?,
        into result: inout ScanResult
    ) {
        let detector = self.detectors[target.detector]
        func add(_ s: Int, _ e: Int, _ index: Int, _ confidence: Confidence) {
            guard s >= from else { return }
            result.matches.append(SecretMatch(start: s, end: e, detector: index, confidence: confidence))
        }
        switch detector.rule {
        case .prefixed(let rule):
            guard let (end, confidence) = self.prefixed(rule, pattern: pattern, at: start, window: window, base: detector.confidence) else { return }
            add(start, end, target.detector, confidence)
            if case .awsSecretKey(let id)? = rule.companion, let index = self.indexByID[id], enabled?[index] ?? true,
               let (s, e) = self.awsSecretAfterKeyID(end: end, window: window) {
                add(s, e, index, .high)
            }
        case .assigned(let rule):
            guard let (s, e) = self.assigned(rule, at: start, keywordLength: target.patternCount, window: window) else { return }
            add(s, e, target.detector, detector.confidence)
        case .privateKeyBlock:
            switch self.privateKeyBlock(at: start, window: window) {
            case .none: return
            case .hold(let headerComplete):
                if start >= from, start < (result.holdFrom ?? Int.max) {
                    result.holdFrom = start
                    result.holdHeaderComplete = headerComplete
                }
            case .block(let end):
                add(start, end, target.detector, .high)
            }
        case .jsonWebToken(let kubernetesID):
            guard let (end, kubernetes) = self.jsonWebToken(at: start, window: window) else { return }
            if kubernetes, let index = self.indexByID[kubernetesID], enabled?[index] ?? true {
                add(start, end, index, .high)
            } else {
                add(start, end, target.detector, detector.confidence)
            }
        case .reportedBy:
            return
        case .uriPassword(let schemes):
            guard let (s, e) = self.uriPassword(at: start, schemes: schemes, window: window) else { return }
            add(s, e, target.detector, detector.confidence)
        case .authorization(let scheme):
            guard let (s, e) = self.authorization(scheme, at: start, keywordLength: target.patternCount, window: window) else { return }
            add(s, e, target.detector, scheme == .basic ? .high : detector.confidence)
        case .azureClientSecret:
            guard let (s, e) = self.azureClientSecret(at: start, window: window) else { return }
            add(s, e, target.detector, detector.confidence)
        }
    }

    private func prefixed(
        _ rule: Detector.PrefixedToken, pattern: UnsafeBufferPointer<UInt8>.SubSequence, at start: Int, window: Window, base: Confidence
    ) -> (Int, Confidence)? {
        guard window.hasPrefix(pattern, at: start), !ByteSet.alphanumeric.contains(window[start - 1]) else { return nil }
        let bodyStart = start + pattern.count
        let cap = bodyStart + rule.length.upperBound + 2
        var end = bodyStart
        while end < window.count, end < cap, rule.body.contains(window.text[end]) { end += 1 }
        guard end < cap else { return nil }
        let dot = UInt8(ascii: ".")
        if rule.body.contains(dot) { while end > bodyStart, window.text[end - 1] == dot { end -= 1 } }
        guard rule.length.contains(end - bodyStart) else { return nil }
        let body = window.slice(bodyStart, end)
        var padded = 0
        while padded < rule.padding, window[end] == UInt8(ascii: "=") { end += 1; padded += 1 }
        let next = window[end]
        guard !ByteSet.alphanumeric.contains(next), next == dot || !rule.body.contains(next) else { return nil }
        guard !Plausibility.isPlaceholder(body) else { return nil }
        var confidence = base
        switch rule.check {
        case nil:
            break
        case .githubChecksum:
            if Plausibility.githubChecksumHolds(body) {
                confidence = .high
            } else if body.count == 36 {
                // Every classic token carries the checksum: without it, this is a look-alike
                // (a typo, a test vector, an invented example), not a GitHub token.
                return nil
            } else {
                confidence = .medium
            }
        case .marker(let marker, let otherwise):
            if Plausibility.contains(Array(body), Array(marker.utf8)) {
                confidence = .high
            } else if let otherwise {
                confidence = otherwise
            } else {
                return nil
            }
        case .suffix(let suffix):
            guard Array(body.suffix(suffix.utf8.count)) == Array(suffix.utf8) else { return nil }
        case .slackWebhook:
            let parts = body.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            guard parts.count >= 3, let last = parts.last, last.count >= 20, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        case .separators(let positions):
            for (offset, byte) in positions where body[body.startIndex + offset] != byte { return nil }
        case .databricks:
            let hex = body.prefix(32)
            guard hex.count == 32, hex.allSatisfy({ ByteSet.lowerHex.contains($0) }) else { return nil }
            let rest = body.dropFirst(32)
            guard rest.isEmpty || (rest.count == 2 && rest.first == UInt8(ascii: "-") && ByteSet.digits.contains(rest.last!)) else { return nil }
        case .mixedCase:
            let classes = Plausibility.Classes(body)
            guard classes.upper > 0, classes.lower > 0, classes.digit > 0 else { return nil }
        case .leadingDigit:
            guard let first = body.first, ByteSet.digits.contains(first) else { return nil }
        case .secretLike:
            guard Plausibility.isSecretLike(body) else { return nil }
        case .uuid:
            guard Plausibility.isUUID(body) else { return nil }
        }
        return (end, confidence)
    }

    /// The first 40-character base64 run within 200 bytes after an AWS key id.
    private func awsSecretAfterKeyID(end: Int, window: Window) -> (Int, Int)? {
        let set = ByteSet.base64
        let padded = set.union(ByteSet("="))
        var index = end
        let limit = min(window.count, end + 200)
        while index < limit {
            guard set.contains(window.text[index]), !padded.contains(window[index - 1]) else { index += 1; continue }
            var runEnd = index
            while runEnd < window.count, runEnd - index <= 40, set.contains(window.text[runEnd]) { runEnd += 1 }
            if runEnd - index == 40, !padded.contains(window[runEnd]) {
                let value = window.slice(index, runEnd)
                let classes = Plausibility.Classes(value)
                if classes.upper > 0, classes.lower > 0, classes.digit > 0, !Plausibility.isPlaceholder(value) {
                    return (index, runEnd)
                }
            }
            index = runEnd + 1
        }
        return nil
    }

    private static let placeholderMarker = Array("[REDACTED:".utf8)
    private static let nameCharacters = ByteSet.alphanumeric.union(ByteSet("_.-"))
    private static let excludedNameEndings: [[UInt8]] = [
        "file", "path", "dir", "name", "type", "url", "uri", "length", "len", "size", "count", "limit", "env", "var", "field",
        "header", "param", "ttl", "timeout", "expiry", "expires", "expiration", "expires_in", "expires_at", "id", "ids",
        "prefix", "suffix", "format", "mode", "method", "algorithm", "alg", "version", "enabled", "required", "kind", "ref",
        "policy", "template", "hint", "label", "endpoint", "host", "user", "username", "usage", "index", "hash", "sha",
        "digest", "checksum", "tokens", "_at", "provider", "scope", "scopes", "location", "store", "source", "status",
        "tokenizer", "encoding", "encoder",
    ].map { Array($0.utf8) }
    /// Names of things that are not credentials although they hold a token-ish word: public keys,
    /// and the continuation tokens of paginated APIs (`nextPageToken`, `NextToken`, `sync_token`).
    private static let excludedNameParts: [[UInt8]] = [
        "public", "pagetoken", "page_token", "page-token", "pagination", "nexttoken", "next_token", "synctoken", "sync_token",
        "continuationtoken", "continuation_token", "cursor",
    ].map { Array($0.utf8) }

    private func assigned(_ rule: Detector.AssignedValue, at start: Int, keywordLength: Int, window: Window) -> (Int, Int)? {
        let nameCharacters = Self.nameCharacters // static lets cost a swift_once per access
        // The checks run cheapest first (most keyword hits are names with no value after them);
        // all must hold, so their order does not change the outcome.
        var nameEnd = start + keywordLength
        while nameEnd < window.count, nameCharacters.contains(window.text[nameEnd]) {
            nameEnd += 1
            if nameEnd - start > 80 { return nil }
        }
        // Separator: `=`, `:`, `:=`, `=>`, `?=`, after an optional closing quote and spaces.
        var index = nameEnd
        if window[index] == UInt8(ascii: "\\"), window[index + 1] == UInt8(ascii: "\"") { index += 2 }
        else if window[index] == UInt8(ascii: "\"") || window[index] == UInt8(ascii: "'") { index += 1 }
        index = self.skipBlanks(from: index, window: window)
        switch window[index] {
        case UInt8(ascii: ":"):
            if window[index + 1] == UInt8(ascii: ":") { return nil }
            index += window[index + 1] == UInt8(ascii: "=") ? 2 : 1
        case UInt8(ascii: "="):
            if window[index + 1] == UInt8(ascii: "=") { return nil }
            index += window[index + 1] == UInt8(ascii: ">") ? 2 : 1
        case UInt8(ascii: "?"):
            guard window[index + 1] == UInt8(ascii: "=") else { return nil }
            index += 2
        default:
            return nil
        }
        index = self.skipBlanks(from: index, window: window)
        if window[index] == UInt8(ascii: "\\"), window[index + 1] == UInt8(ascii: "\"") { index += 2 }
        else if window[index] == UInt8(ascii: "\"") || window[index] == UInt8(ascii: "'") || window[index] == UInt8(ascii: "`") { index += 1 }
        let valueStart = index
        let cap = valueStart + rule.length.upperBound + 2
        var end = valueStart
        while end < window.count, end < cap, rule.value.contains(window.text[end]) { end += 1 }
        guard end < cap else { return nil }
        // An escaped closing quote, and sentence punctuation, are not part of the value.
        if end - valueStart >= 1, window.text[end - 1] == UInt8(ascii: "\\") { end -= 1 }
        let secretLike: Bool
        if case .secretLike = rule.check { secretLike = true } else { secretLike = false }
        if secretLike {
            // `API_KEY=sk-ant-api03-...`: an elided example, not a value.
            if end - valueStart >= 2, window.text[end - 1] == UInt8(ascii: "."), window.text[end - 2] == UInt8(ascii: ".") { return nil }
            while end > valueStart, window.text[end - 1] == UInt8(ascii: ".") || window.text[end - 1] == UInt8(ascii: ":") { end -= 1 }
        }
        guard rule.length.contains(end - valueStart) else { return nil }
        // The whole name around the keyword.
        var nameStart = start
        while nameStart > 0, nameCharacters.contains(window.text[nameStart - 1]) {
            nameStart -= 1
            if start - nameStart > 64 { return nil }
        }
        // A placeholder already in the text (`[REDACTED:aws-secret-access-key:1a2b3c4d]`) names a
        // detector, not a value.
        if window.hasPrefix(Self.placeholderMarker, at: nameStart - Self.placeholderMarker.count) { return nil }
        let name = window.slice(nameStart, nameEnd)
        for group in rule.nameMustContain where !group.contains(where: { Plausibility.containsFolded(name, $0.utf8) }) {
            return nil
        }
        if secretLike {
            // `arn:aws:secretsmanager:…:secret:name`: a segment of a colon path, not a name
            // (`$env:API_KEY = …` in PowerShell is a name).
            if nameStart > 0, window.text[nameStart - 1] == UInt8(ascii: ":"), window[nameEnd] == UInt8(ascii: ":") { return nil }
            for ending in Self.excludedNameEndings where Plausibility.hasFoldedSuffix(name, ending) { return nil }
            for part in Self.excludedNameParts where Plausibility.containsFolded(name, part) { return nil }
        }
        let value = window.slice(valueStart, end)
        switch rule.check {
        case .secretLike?:
            guard Plausibility.isSecretLike(value) else { return nil }
        case .mixedCase?:
            let classes = Plausibility.Classes(value)
            guard classes.upper > 0, classes.lower > 0, classes.digit > 0, !Plausibility.isPlaceholder(value) else { return nil }
        case .uuid?:
            guard Plausibility.isUUID(value) else { return nil }
        case .suffix(let suffix)?:
            guard value.count >= suffix.utf8.count, value.suffix(suffix.utf8.count).elementsEqual(suffix.utf8), !Plausibility.isPlaceholder(value) else { return nil }
        default:
            guard !Plausibility.isPlaceholder(value) else { return nil }
        }
        return (valueStart, end)
    }

    private func skipBlanks(from start: Int, window: Window) -> Int {
        var index = start
        while index - start < 8, window[index] == 0x20 || window[index] == 0x09, index < window.count { index += 1 }
        return index
    }

    enum BlockResult { case none, hold(headerComplete: Bool), block(end: Int) }

    private static let beginMarker = Array("-----BEGIN".utf8)
    private static let endMarker = Array("-----END".utf8)
    private static let dashes = Array("-----".utf8)
    private static let labelCharacters = ByteSet.upper.union(.digits).union(ByteSet(" "))

    /// `-----BEGIN … PRIVATE KEY-----` to the end of its END line, newlines real or escaped.
    ///
    /// The BEGIN line must end the line (a line break, a `\\n` escape or a blank follows it) and
    /// the body must hold key material: a run of at least `keyMaterialRun` base64 characters.
    /// A header quoted in prose, or an example block with `...` or `<paste key here>` as its body,
    /// is not a key.
    func privateKeyBlock(at start: Int, window: Window) -> BlockResult {
        let labelCharacters = Self.labelCharacters, base64 = ByteSet.base64
        guard window.hasPrefix(Self.beginMarker, at: start) else { return .none }
        // The label: upper-case words, then five dashes.
        var index = start + Self.beginMarker.count
        let labelStart = index
        while index < window.count, index - labelStart <= 64, labelCharacters.contains(window.text[index]) { index += 1 }
        if index >= window.count { return window.atEnd ? .none : .hold(headerComplete: false) }
        guard window.text[index] == UInt8(ascii: "-") else { return .none }
        if index + Self.dashes.count > window.count {
            return window.atEnd || !window.slice(index, window.count).allSatisfy({ $0 == UInt8(ascii: "-") }) ? .none : .hold(headerComplete: false)
        }
        guard window.hasPrefix(Self.dashes, at: index) else { return .none }
        let label = window.slice(labelStart, index)
        guard Self.isPrivateKeyLabel(label) else { return .none }
        let headerEnd = index + Self.dashes.count
        // What follows the header: a line break, an escaped one, or a blank.
        if headerEnd >= window.count { return window.atEnd ? .none : .hold(headerComplete: false) }
        switch window.text[headerEnd] {
        case 0x0A, 0x0D, 0x20, 0x09:
            break
        case UInt8(ascii: "\\"):
            if headerEnd + 1 >= window.count { return window.atEnd ? .none : .hold(headerComplete: false) }
            guard window.text[headerEnd + 1] == UInt8(ascii: "n") || window.text[headerEnd + 1] == UInt8(ascii: "r") else { return .none }
        default:
            return .none
        }
        let limit = start + Self.privateKeyLimit
        let searchEnd = min(window.count, limit)
        var cursor = headerEnd
        var run = 0
        var material = false
        while cursor + Self.endMarker.count <= searchEnd {
            let byte = window.text[cursor]
            if byte == UInt8(ascii: "-"), window.hasPrefix(Self.endMarker, at: cursor) {
                guard material else { return .none }
                // The END line's label and closing dashes.
                var close = cursor + Self.endMarker.count
                while close < searchEnd, close - cursor <= 72, labelCharacters.contains(window.text[close]) { close += 1 }
                if close + Self.dashes.count <= searchEnd, window.hasPrefix(Self.dashes, at: close) {
                    return .block(end: close + Self.dashes.count)
                }
                if close + Self.dashes.count > searchEnd, searchEnd == window.count, searchEnd < limit, !window.atEnd {
                    return .hold(headerComplete: true)
                }
                return .block(end: close)
            }
            if base64.contains(byte) {
                run += 1
                if run >= Self.keyMaterialRun { material = true }
            } else {
                run = 0
            }
            cursor += 1
        }
        if limit <= window.count { return material ? .block(end: limit) : .none }
        guard window.atEnd else { return .hold(headerComplete: true) }
        return material ? .block(end: window.count) : .none
    }

    /// Base64 characters in a row that make a block body key material (a PEM line has 64).
    static let keyMaterialRun = 40

    private static func isPrivateKeyLabel(_ label: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        [" PRIVATE KEY", " PRIVATE KEY BLOCK"].contains { suffix in
            let expected = Array(suffix.utf8)
            return label.count >= expected.count && label.suffix(expected.count).elementsEqual(expected)
        }
    }

    private static let jwtCharacters = ByteSet.base64URL
    private static let jwtAround = ByteSet.base64URL.union(ByteSet("."))

    private func jsonWebToken(at start: Int, window: Window) -> (Int, Bool)? {
        let jwtCharacters = Self.jwtCharacters
        let around = Self.jwtAround
        guard !around.contains(window[start - 1]) else { return nil }
        var index = start
        var segments: [(Int, Int)] = []
        let cap = start + Self.maximumMatchLength
        var segmentStart = start
        while index < window.count, index < cap {
            let byte = window.text[index]
            if byte == UInt8(ascii: ".") {
                segments.append((segmentStart, index))
                if segments.count > 2 { return nil }
                segmentStart = index + 1
            } else if !jwtCharacters.contains(byte) {
                break
            }
            index += 1
        }
        guard index < cap, segments.count == 2 else { return nil }
        segments.append((segmentStart, index))
        guard !around.contains(window[index]), window[index] != UInt8(ascii: "=") else { return nil }
        let (h0, h1) = segments[0], (p0, p1) = segments[1], (s0, s1) = segments[2]
        guard h1 - h0 >= 10, p1 - p0 >= 10, s1 - s0 >= 16 else { return nil }
        guard let header = Plausibility.base64Decode(window.slice(h0, h1)), header.first == UInt8(ascii: "{"),
              Plausibility.contains(header, Array("\"alg\"".utf8)) || Plausibility.contains(header, Array("\"typ\"".utf8)),
              let payload = Plausibility.base64Decode(window.slice(p0, p1)), payload.first == UInt8(ascii: "{")
        else { return nil }
        let kubernetes = Plausibility.contains(payload, Array("kubernetes.io".utf8))
            || Plausibility.contains(payload, Array("kubernetes/serviceaccount".utf8))
        return (index, kubernetes)
    }

    private static let schemeCharacters = ByteSet.alphanumeric.union(ByteSet("+.-:"))
    private static let userCharacters = ByteSet.token.subtracting(ByteSet(":@/?#"))
    private static let passwordCharacters = ByteSet.token.subtracting(ByteSet("@/?#"))
    private static let defaultPasswords: Set<[UInt8]> = Set([
        "password", "pass", "passwd", "secret", "changeme", "admin", "root", "guest", "postgres", "mysql", "redis", "test",
        "user", "example", "pwd", "mypassword", "yourpassword", "rabbitmq", "mongo", "default",
    ].map { Array($0.utf8) })

    private func uriPassword(at start: Int, schemes: [String], window: Window) -> (Int, Int)? {
        let schemeCharacters = Self.schemeCharacters, userCharacters = Self.userCharacters, passwordCharacters = Self.passwordCharacters
        var schemeStart = start
        while schemeStart > 0, start - schemeStart < 24, schemeCharacters.contains(window.text[schemeStart - 1]) { schemeStart -= 1 }
        guard schemeStart < start, !ByteSet.alphanumeric.contains(window[schemeStart - 1]) else { return nil }
        let scheme = String(decoding: window.slice(schemeStart, start), as: UTF8.self).lowercased()
        guard schemes.contains(scheme) || schemes.contains(where: { scheme.hasSuffix(":" + $0) }) else { return nil }
        var index = start + 3
        let userStart = index
        while index < window.count, index - userStart <= 256, userCharacters.contains(window.text[index]) { index += 1 }
        guard window[index] == UInt8(ascii: ":") else { return nil }
        let user = window.slice(userStart, index)
        index += 1
        let passwordStart = index
        while index < window.count, index - passwordStart <= 256, passwordCharacters.contains(window.text[index]) { index += 1 }
        guard index < window.count, window.text[index] == UInt8(ascii: "@") else { return nil }
        let password = window.slice(passwordStart, index)
        guard password.count >= 3, password.count <= 256, !Plausibility.isPlaceholder(password) else { return nil }
        let lowered = password.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        guard !Self.defaultPasswords.contains(lowered), !password.elementsEqual(user) else { return nil }
        return (passwordStart, index)
    }

    private static let bearerCharacters = ByteSet.alphanumeric.union(ByteSet("-._~+/="))
    private static let basicCharacters = ByteSet.base64.union(ByteSet("="))

    private func authorization(_ scheme: Detector.AuthorizationScheme, at start: Int, keywordLength: Int, window: Window) -> (Int, Int)? {
        guard !ByteSet.alphanumeric.contains(window[start - 1]) else { return nil }
        var index = start + keywordLength
        let spaces = index
        while index < window.count, index - spaces < 4, window.text[index] == 0x20 { index += 1 }
        guard index > spaces else { return nil }
        let set = scheme == .bearer ? Self.bearerCharacters : Self.basicCharacters
        let valueStart = index
        let cap = valueStart + (scheme == .bearer ? 4096 : 1024) + 1
        while index < window.count, index < cap, set.contains(window.text[index]) { index += 1 }
        guard index < cap else { return nil }
        var end = index
        while end > valueStart, window.text[end - 1] == UInt8(ascii: ".") { end -= 1 }
        // `Bearer eyJhbGciOi...`: an elided example, not a credential.
        guard index - end < 2 else { return nil }
        let value = window.slice(valueStart, end)
        switch scheme {
        case .bearer:
            guard value.count >= 16, !Plausibility.isPlaceholder(value), Plausibility.entropy(value) >= 3.0 else { return nil }
            let classes = Plausibility.Classes(value)
            guard classes.digit > 0 || (classes.upper > 0 && classes.lower > 0) else { return nil }
        case .basic:
            guard value.count >= 8, let decoded = Plausibility.base64Decode(value),
                  decoded.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }),
                  let colon = decoded.firstIndex(of: UInt8(ascii: ":")), colon > 0, colon < decoded.count - 1
            else { return nil }
        }
        return (valueStart, end)
    }

    private static let azureCharacters = ByteSet.alphanumeric.union(ByteSet("_~."))

    private func azureClientSecret(at start: Int, window: Window) -> (Int, Int)? {
        guard window.hasPrefix(Array("Q~".utf8), at: start) else { return nil }
        let secretStart = start - 4
        guard secretStart >= 0, ByteSet.digits.contains(window.text[start - 1]) else { return nil }
        for index in secretStart..<(start - 1) where !Self.azureCharacters.contains(window.text[index]) { return nil }
        guard !Self.azureCharacters.union(ByteSet("-")).contains(window[secretStart - 1]) else { return nil }
        let body = Self.azureCharacters.union(ByteSet("-"))
        var index = start + 2
        while index < window.count, index - start <= 40, body.contains(window.text[index]) { index += 1 }
        guard (31...34).contains(index - start - 2) else { return nil }
        return (secretStart, index)
    }
}
