import Foundation

/// What the policy sees about an exchange besides its text.
public struct PolicyContext: Sendable {
    public var direction: TrafficDirection
    public var model: String?
    public var upstream: String?
    public var path: String?
    /// Tools the request offers or calls (request), or the tools the model called (response).
    public var tools: [String]

    public init(direction: TrafficDirection, model: String? = nil, upstream: String? = nil, path: String? = nil, tools: [String] = []) {
        self.direction = direction
        self.model = model
        self.upstream = upstream
        self.path = path
        self.tools = tools
    }
}

/// The policy's verdict on some text: the masked texts, what was found, which rules matched and
/// the action for the exchange.
public struct PolicyResult: Sendable {
    public var texts: [String]
    public var findings: [Finding]
    /// Placeholder → secret, for restoring echoes (only when asked for).
    public var originals: [String: String]
    public var matchedRules: [PolicyRule]
    /// The first matching deny / require_approval / allow rule in policy order, if any.
    public var decidingRule: PolicyRule?

    /// deny or require_approval (from the deciding rule); otherwise the strongest of the rest.
    public var action: PolicyAction {
        if let decidingRule { return decidingRule.action }
        return self.matchedRules.map(\.action).max { $0.rank < $1.rank } ?? .allow
    }

    /// Something was masked or some rule matched.
    public var isNotable: Bool { !self.findings.isEmpty || !self.matchedRules.isEmpty }

    public var rules: [String] { self.matchedRules.map(\.id) }

    /// The highest severity among the matched rules.
    public var severity: Severity? { self.matchedRules.map(\.severity).max() }
}

/// Applies a policy: decides which detectors apply, masks, applies keyword/regex masks, and
/// evaluates every rule on the masked text (rules never see a raw secret).
public final class PolicyEngine: Sendable {
    public let policy: Policy
    public let masker: SecretMasker
    private let keywordAutomaton: KeywordAutomaton
    /// For each keyword id, the rules using it.
    private let keywordRules: [[Int]]
    /// Some rule matches on tool names: only then must callers find them in the request.
    public let usesTools: Bool

    public init(policy: Policy, masker: SecretMasker) {
        self.policy = policy
        self.masker = masker
        let entries = policy.rules.enumerated().flatMap { index, rule in rule.match.keywords.map { (keyword: $0, owner: index) } }
        self.usesTools = policy.rules.contains { !$0.match.tools.isEmpty }
        (self.keywordAutomaton, self.keywordRules) = KeywordAutomaton.grouping(entries)
    }

    private func attributesMatch(_ match: PolicyRule.Match, _ context: PolicyContext) -> Bool {
        guard match.direction == context.direction else { return false }
        if !match.models.isEmpty {
            guard let model = context.model, match.models.contains(where: { $0.matches(model) }) else { return false }
        }
        if !match.upstreams.isEmpty {
            guard let upstream = context.upstream, match.upstreams.contains(upstream) else { return false }
        }
        if !match.paths.isEmpty {
            guard let path = context.path, match.paths.contains(where: { $0.matches(path) }) else { return false }
        }
        if !match.tools.isEmpty {
            guard context.tools.contains(where: { tool in match.tools.contains { $0.matches(tool) } }) else { return false }
        }
        return true
    }

    /// Detectors that `allow` rules switch off for this traffic.
    public func selection(for context: PolicyContext) -> DetectorSelection {
        var exempt = Set<String>()
        for rule in self.policy.rules where rule.action == .allow && !rule.match.detectors.isEmpty {
            guard self.attributesMatch(rule.match, context) else { continue }
            if rule.match.detectors.contains("*") {
                exempt.formUnion(self.masker.scanner.detectors.map(\.id))
            } else {
                exempt.formUnion(rule.match.detectors)
            }
        }
        return DetectorSelection(exempt: exempt)
    }

    /// Masks `texts` (each independently) and evaluates the rules.
    public func evaluate(texts: [String], context: PolicyContext, keepOriginals: Bool = false) -> PolicyResult {
        let selection = self.selection(for: context)
        var masked: [String] = []
        var findings: [Finding] = []
        var originals: [String: String] = [:]
        for text in texts {
            var result = self.masker.mask(text, selection: selection, keepOriginals: keepOriginals)
            self.applyCustomMasks(&result, context: context, keepOriginals: keepOriginals)
            masked.append(result.text)
            findings += result.findings
            originals.merge(result.originals) { first, _ in first }
        }
        return self.decide(texts: masked, findings: findings, originals: originals, context: context)
    }

    /// Masks one text: secrets, then the keywords and patterns of `mask` rules.
    public func maskText(_ text: String, selection: DetectorSelection, context: PolicyContext, keepOriginals: Bool = false) -> MaskedText {
        var result = self.masker.mask(text, selection: selection, keepOriginals: keepOriginals)
        self.applyCustomMasks(&result, context: context, keepOriginals: keepOriginals)
        return result
    }

    /// Evaluates the rules on text that is already masked (a finished streamed response).
    public func decide(texts: [String], findings: [Finding], originals: [String: String] = [:], context: PolicyContext) -> PolicyResult {
        var keywordHit = Set<Int>()
        if !self.keywordRules.isEmpty {
            for text in texts {
                var copy = text
                copy.withUTF8 { bytes in
                    self.keywordAutomaton.scan(bytes) { id, _ in keywordHit.formUnion(self.keywordRules[id]) }
                }
            }
        }
        var matched: [PolicyRule] = []
        var deciding: PolicyRule?
        for (index, rule) in self.policy.rules.enumerated() {
            let match = rule.match
            guard self.attributesMatch(match, context) else { continue }
            if rule.action == .allow && !match.detectors.isEmpty && !match.hasContentCondition {
                continue  // an exemption, applied by `selection(for:)`
            }
            if rule.action == .mask && match.keywords.isEmpty && match.regexes.isEmpty {
                continue  // masking by detector is the default
            }
            if !match.detectors.isEmpty && rule.action != .allow {
                let any = match.detectors.contains("*")
                guard findings.contains(where: { any || match.detectors.contains($0.detector) }) else { continue }
            }
            if !match.keywords.isEmpty && !keywordHit.contains(index) {
                // A custom mask rule has already replaced its keywords; it still counts as matched.
                guard rule.action == .mask, findings.contains(where: { $0.detector == rule.id }) else { continue }
            }
            if !match.regexes.isEmpty {
                let hit = texts.contains { text in match.regexes.contains { $0.matches(text) } }
                guard hit || (rule.action == .mask && findings.contains(where: { $0.detector == rule.id })) else { continue }
            }
            matched.append(rule)
            if deciding == nil && rule.action.isTerminal { deciding = rule }
        }
        return PolicyResult(texts: texts, findings: findings, originals: originals, matchedRules: matched, decidingRule: deciding)
    }

    /// `mask` rules with keywords or regexes: replace what they match with
    /// `[REDACTED:<rule id>:<fingerprint>]`.
    private func applyCustomMasks(_ result: inout MaskedText, context: PolicyContext, keepOriginals: Bool) {
        for rule in self.policy.rules where rule.action == .mask && (!rule.match.keywords.isEmpty || !rule.match.regexes.isEmpty) {
            guard self.attributesMatch(rule.match, context) else { continue }
            var ranges: [Range<String.Index>] = []
            let lowered = result.text.lowercased()
            if lowered.utf8.count == result.text.utf8.count {
                for keyword in rule.match.keywords {
                    var searchStart = lowered.startIndex
                    while let range = lowered.range(of: keyword, range: searchStart..<lowered.endIndex) {
                        ranges.append(range)
                        searchStart = range.upperBound
                    }
                }
            }
            for pattern in rule.match.regexes { ranges += pattern.ranges(in: result.text) }
            guard !ranges.isEmpty else { continue }
            ranges.sort { $0.lowerBound < $1.lowerBound }
            var output = ""
            var position = result.text.startIndex
            for range in ranges where range.lowerBound >= position {
                output += result.text[position..<range.lowerBound]
                let value = String(result.text[range])
                let finding = Finding(detector: rule.id, confidence: .high, fingerprint: self.masker.fingerprinter.fingerprint(Array(value.utf8)))
                output += finding.placeholder
                result.findings.append(finding)
                if keepOriginals { result.originals[finding.placeholder] = value }
                position = range.upperBound
            }
            output += result.text[position...]
            result.text = output
        }
    }
}
