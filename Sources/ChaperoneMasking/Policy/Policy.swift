/// What an operator's rules say about traffic: which exchanges to deny, hold for approval, tag,
/// which extra text to mask and which detectors to leave alone. Rules are read from YAML
/// (`Policy.load`); the built-in pack flags credential-exfiltration prompts.
public struct Policy: Sendable {
    public var rules: [PolicyRule]

    public init(rules: [PolicyRule]) {
        self.rules = rules
    }

    public static let empty = Policy(rules: [])
}

public enum PolicyAction: String, Sendable, CaseIterable {
    case allow, mask, tag, deny
    case requireApproval = "require_approval"

    /// Deny, hold and allow decide the exchange; mask and tag add to it.
    var isTerminal: Bool { self == .allow || self == .deny || self == .requireApproval }

    /// For reporting one action per exchange when several rules matched.
    var rank: Int {
        switch self {
        case .allow: 0
        case .tag: 1
        case .mask: 2
        case .requireApproval: 3
        case .deny: 4
        }
    }
}

public enum Severity: String, Sendable, CaseIterable, Comparable {
    case info, low, medium, high, critical

    public static func < (a: Severity, b: Severity) -> Bool {
        Self.allCases.firstIndex(of: a)! < Self.allCases.firstIndex(of: b)!
    }
}

public enum TrafficDirection: String, Sendable, CaseIterable {
    case request, response
}

public struct PolicyRule: Sendable {
    public var id: String
    public var action: PolicyAction
    public var message: String
    public var severity: Severity
    public var match: Match
    /// Where the rule was written (`file:line`), for messages.
    public var origin: String

    public init(id: String, action: PolicyAction, message: String, severity: Severity, match: Match, origin: String) {
        self.id = id
        self.action = action
        self.message = message
        self.severity = severity
        self.match = match
        self.origin = origin
    }

    /// Every condition given must hold; within a list, any entry may. A rule without conditions
    /// matches all traffic in its direction.
    public struct Match: Sendable {
        public var direction: TrafficDirection = .request
        /// Detector ids; `*` means any finding. For `allow` rules these are exempted from masking.
        public var detectors: [String] = []
        /// Case-insensitive substrings of the (masked) content.
        public var keywords: [String] = []
        public var regexes: [PolicyPattern] = []
        /// Globs (`*` and `?`) on the requested model, the upstream name, the path, tool names.
        public var models: [Glob] = []
        public var upstreams: [String] = []
        public var paths: [Glob] = []
        public var tools: [Glob] = []

        public init() {}

        var hasContentCondition: Bool { !self.keywords.isEmpty || !self.regexes.isEmpty || !self.tools.isEmpty }
    }
}

/// A regular expression from a policy file, compiled once at start-up.
public struct PolicyPattern: @unchecked Sendable {
    public let source: String
    let regex: Regex<AnyRegexOutput>

    public init(_ source: String) throws {
        self.source = source
        self.regex = try Regex(source)
    }

    func matches(_ text: String) -> Bool { (try? self.regex.firstMatch(in: text)) != nil }

    func ranges(in text: String) -> [Range<String.Index>] {
        text.matches(of: self.regex).map(\.range).filter { !$0.isEmpty }
    }
}

/// `*` matches any run of characters, `?` one; everything else literally.
public struct Glob: Sendable, Equatable {
    public let pattern: String
    private let parts: [Character]

    public init(_ pattern: String) {
        self.pattern = pattern
        self.parts = Array(pattern)
    }

    public func matches(_ text: String) -> Bool {
        let text = Array(text)
        var p = 0, t = 0
        var star = -1, mark = 0
        while t < text.count {
            if p < self.parts.count, self.parts[p] == "?" || self.parts[p] == text[t] {
                p += 1; t += 1
            } else if p < self.parts.count, self.parts[p] == "*" {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < self.parts.count, self.parts[p] == "*" { p += 1 }
        return p == self.parts.count
    }
}
