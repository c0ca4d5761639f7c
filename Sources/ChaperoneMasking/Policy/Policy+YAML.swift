public import ChaperoneCore
import Foundation
import Yams

/// Reads a policy file:
///
/// ```yaml
/// rules:
///   - id: no-curl-sh
///     match: { keywords: ["| sh"], direction: request }
///     action: deny
///     message: piping curl to a shell is not allowed
///     severity: high
/// ```
///
/// Every mistake is reported with the file, the line and what is wrong, and stops start-up.
extension Policy {
    /// The rules of `file` (if any), followed by the built-in pack unless switched off.
    /// `text` is used when there is no file: rules handed over as YAML text (from the
    /// environment), reported as `source` in errors.
    public static func load(file: String?, text: String? = nil, source: String = "<policy>", builtinRules: Bool) throws(ConfigError) -> Policy {
        var rules: [PolicyRule] = []
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError(file: file, field: "", message: "cannot read the policy file")
            }
            rules = try Self.parse(yaml: String(decoding: data, as: UTF8.self), file: file).rules
        } else if let text {
            rules = try Self.parse(yaml: text, file: source).rules
        }
        if builtinRules { rules += Self.builtInRules }
        return Policy(rules: rules)
    }

    public static func parse(yaml text: String, file: String = "<policy>") throws(ConfigError) -> Policy {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: file, field: "", message: "not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, field: "", message: "not valid YAML: \(error)")
        }
        guard let root else { return .empty }
        do throws(ConfigError) {
            let top = try ConfigNode(path: "", node: root)
            try top.rejectUnknownKeys(allowed: ["rules"])
            guard let list = top.value("rules") else { return .empty }
            guard let items = list.sequence else {
                throw ConfigError(field: "rules", message: "expected a list of rules\(ConfigNode.location(list))")
            }
            var rules: [PolicyRule] = []
            var seen: [String: String] = [:]
            for (index, item) in items.enumerated() {
                let rule = try Self.rule(ConfigNode(path: "rules[\(index)]", node: item), file: file)
                if let first = seen[rule.id] {
                    throw ConfigError(field: "rules[\(index)].id", message: "duplicate rule id '\(rule.id)' (first defined at \(first))")
                }
                seen[rule.id] = rule.origin
                rules.append(rule)
            }
            return Policy(rules: rules)
        } catch {
            var located = error
            located.file = file
            throw located
        }
    }

    private static func rule(_ node: ConfigNode, file: String) throws(ConfigError) -> PolicyRule {
        try node.rejectUnknownKeys(allowed: ["id", "match", "action", "message", "severity", "description"])
        let where_ = ConfigNode.location(node.node)
        let line = node.node.mark.map { "\(file):\($0.line)" } ?? file
        guard let id = try node.string("id"), !id.isEmpty else {
            throw ConfigError(field: node.field("id"), message: "every rule needs an id\(where_)")
        }
        guard id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !id.hasPrefix("builtin.") else {
            throw ConfigError(field: node.field("id"), message: "'\(id)' is not a valid id (letters, digits, - _ . ; not starting with builtin.)\(where_)")
        }
        guard let actionText = try node.string("action") else {
            throw ConfigError(field: node.field("action"), message: "missing (one of \(PolicyAction.allCases.map(\.rawValue).joined(separator: ", ")))\(where_)")
        }
        guard let action = PolicyAction(rawValue: actionText) else {
            throw ConfigError(
                field: node.field("action"),
                message: "'\(actionText)' is not an action (one of \(PolicyAction.allCases.map(\.rawValue).joined(separator: ", ")))\(ConfigNode.location(node.value("action")!))"
            )
        }
        let severityText = try node.string("severity") ?? "medium"
        guard let severity = Severity(rawValue: severityText) else {
            throw ConfigError(
                field: node.field("severity"),
                message: "'\(severityText)' is not a severity (one of \(Severity.allCases.map(\.rawValue).joined(separator: ", ")))\(where_)"
            )
        }
        var message = id
        if let text = try node.string("message") {
            message = text
        } else if let text = try node.string("description") {
            message = text
        }
        var match = PolicyRule.Match()
        if let matchNode = try node.child("match") {
            match = try Self.match(matchNode)
        }
        try Self.validate(action: action, match: match, node: node)
        return PolicyRule(id: id, action: action, message: message, severity: severity, match: match, origin: line)
    }

    private static func match(_ node: ConfigNode) throws(ConfigError) -> PolicyRule.Match {
        try node.rejectUnknownKeys(allowed: ["direction", "detectors", "keywords", "regex", "models", "upstreams", "paths", "tools"])
        var match = PolicyRule.Match()
        if let text = try node.string("direction") {
            guard let direction = TrafficDirection(rawValue: text) else {
                throw ConfigError(field: node.field("direction"), message: "'\(text)' is not a direction (request or response)\(ConfigNode.location(node.value("direction")!))")
            }
            match.direction = direction
        }
        match.detectors = try Self.strings(node, "detectors")
        let known = Set(DetectorCatalog.builtIn.map(\.id))
        for detector in match.detectors where detector != "*" && !known.contains(detector) {
            let suggestions = known.filter { $0.hasPrefix(String(detector.prefix(4))) }.sorted().prefix(5)
            throw ConfigError(
                field: node.field("detectors"),
                message: "unknown detector '\(detector)'\(suggestions.isEmpty ? "" : " (did you mean \(suggestions.joined(separator: ", "))?)") — `chaperonectl mask --help` and docs/masking.md list them\(ConfigNode.location(node.value("detectors")!))"
            )
        }
        match.keywords = try Self.strings(node, "keywords").map { $0.lowercased() }
        for keyword in match.keywords where keyword.isEmpty {
            throw ConfigError(field: node.field("keywords"), message: "keywords must not be empty\(ConfigNode.location(node.value("keywords")!))")
        }
        for source in try Self.strings(node, "regex") {
            do {
                match.regexes.append(try PolicyPattern(source))
            } catch {
                throw ConfigError(field: node.field("regex"), message: "'\(source)' is not a valid regular expression: \(error)\(ConfigNode.location(node.value("regex")!))")
            }
        }
        match.models = try Self.strings(node, "models").map(Glob.init)
        match.upstreams = try Self.strings(node, "upstreams")
        match.paths = try Self.strings(node, "paths").map(Glob.init)
        match.tools = try Self.strings(node, "tools").map(Glob.init)
        return match
    }

    private static func validate(action: PolicyAction, match: PolicyRule.Match, node: ConfigNode) throws(ConfigError) {
        let where_ = ConfigNode.location(node.node)
        if match.direction == .response {
            switch action {
            case .deny, .requireApproval:
                throw ConfigError(
                    field: node.field("action"),
                    message: "response rules can tag, allow or mask, not \(action.rawValue): part of the answer may already be with the agent\(where_)"
                )
            case .mask where !match.keywords.isEmpty || !match.regexes.isEmpty:
                throw ConfigError(
                    field: node.field("match"),
                    message: "keyword and regex masking applies to requests; for responses, mask by detector\(where_)"
                )
            default:
                break
            }
        }
        if action == .mask && match.keywords.isEmpty && match.regexes.isEmpty && match.detectors.isEmpty {
            throw ConfigError(field: node.field("match"), message: "a mask rule needs keywords, regex or detectors to say what to mask\(where_)")
        }
    }

    /// A string or a list of strings.
    private static func strings(_ node: ConfigNode, _ key: String) throws(ConfigError) -> [String] {
        guard let value = node.value(key) else { return [] }
        if let text = value.string, value.scalar != nil { return [text] }
        guard let items = value.sequence else {
            throw ConfigError(field: node.field(key), message: "expected a string or a list of strings\(ConfigNode.location(value))")
        }
        var result: [String] = []
        for item in items {
            guard item.scalar != nil, let text = item.string else {
                throw ConfigError(field: node.field(key), message: "expected a string\(ConfigNode.location(item))")
            }
            result.append(text)
        }
        return result
    }
}
