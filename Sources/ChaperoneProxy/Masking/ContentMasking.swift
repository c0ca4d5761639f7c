import ChaperoneCore
import ChaperoneLLM
import ChaperoneMasking

/// Where the text of each LLM operation lives in its JSON bodies: only these strings are
/// masked, so keys, model names, numbers and structure pass untouched and the JSON stays valid.
enum ContentSites {
    private static let structural: Set<String> = ["role", "type", "id", "tool_call_id", "model", "object", "status", "media_type"]

    /// Request: everything the model reads (messages, tool results, tool-call arguments, system
    /// prompts, Responses input and instructions, embeddings input), but not inline binary data.
    static func request(_ site: JSONStringRewriter.Site) -> Bool {
        guard case .key(let top)? = site.path.first else { return false }
        guard ["messages", "input", "system", "instructions", "prompt"].contains(top) else { return false }
        guard let last = site.lastKey else { return true }
        return last != "data" && last != "url" && !Self.structural.contains(last)
    }

    /// Response: answer text, refusals, tool-call arguments and inputs, provider error messages.
    static func response(_ site: JSONStringRewriter.Site) -> Bool {
        guard case .key(let top)? = site.path.first else { return false }
        guard ["choices", "output", "content", "error", "output_text"].contains(top) else { return false }
        guard let last = site.lastKey else { return true }
        return !Self.structural.contains(last) && last != "finish_reason" && last != "stop_reason" && last != "name"
    }
}

/// The request direction of one exchange: mask its content and let the policy decide.
struct RequestMasking {
    let engine: PolicyEngine
    let keepOriginals: Bool

    struct Outcome {
        /// The body to forward; nil when nothing changed (the original bytes go).
        var body: [UInt8]?
        var result: PolicyResult
    }

    func apply(body: [UInt8], context: PolicyContext) -> Outcome {
        let selection = self.engine.selection(for: context)
        var masked: [String] = []
        var findings: [Finding] = []
        var originals: [String: String] = [:]
        let rewritten: [UInt8]?
        do {
            rewritten = try JSONStringRewriter.rewrite(body, select: ContentSites.request) { _, text in
                guard !text.hasPrefix("data:") else { return nil }
                let result = self.engine.maskText(text, selection: selection, context: context, keepOriginals: self.keepOriginals)
                masked.append(result.text)
                findings += result.findings
                originals.merge(result.originals) { first, _ in first }
                return result.changed ? result.text : nil
            }
        } catch {
            // Not JSON: the provider will refuse it; mask the bytes as text so nothing leaks.
            let result = self.engine.maskText(String(decoding: body, as: UTF8.self), selection: selection, context: context, keepOriginals: false)
            let decision = self.engine.decide(texts: [result.text], findings: result.findings, context: context)
            return Outcome(body: result.changed ? Array(result.text.utf8) : nil, result: decision)
        }
        let decision = self.engine.decide(texts: masked, findings: findings, originals: originals, context: context)
        return Outcome(body: rewritten, result: decision)
    }
}

/// One JSON document rendered twice: for the audit (masked) and for the agent (masked, then the
/// agent's own secrets restored). `transform` runs once per selected string; the agent's
/// rendering is only built when it differs somewhere.
enum TwoRenderings {
    struct Result {
        /// nil when unchanged.
        var audit: [UInt8]?
        var agent: [UInt8]?
    }

    static func rewrite(
        _ document: [UInt8], select: (JSONStringRewriter.Site) -> Bool,
        _ transform: (JSONStringRewriter.Site, String) -> (audit: String, agent: String)
    ) throws(JSONStringRewriter.RewriteError) -> Result {
        var agentTexts: [String] = []
        var differs = false
        let audit = try JSONStringRewriter.rewrite(document, select: select) { site, text in
            let (audit, agent) = transform(site, text)
            agentTexts.append(agent)
            differs = differs || agent != audit
            return audit
        }
        guard differs else { return Result(audit: audit, agent: audit) }
        var next = 0
        let agent = try JSONStringRewriter.rewrite(document, select: select) { _, _ in
            defer { next += 1 }
            return agentTexts[next]
        }
        return Result(audit: audit, agent: agent)
    }
}

/// A whole (non-streamed) LLM response: masked for the audit and the agent, with the agent's own
/// secrets put back if policy restores echoes.
struct ResponseBodyMasking {
    let masker: SecretMasker
    let selection: DetectorSelection
    let restorer: PlaceholderRestorer

    struct Outcome {
        var audit: [UInt8]
        var agent: [UInt8]
        var findings: [Finding]
    }

    func apply(body: [UInt8]) -> Outcome {
        var findings: [Finding] = []
        do {
            let rendered = try TwoRenderings.rewrite(body, select: ContentSites.response) { _, text in
                let result = self.masker.mask(text, selection: self.selection)
                findings += result.findings
                return (result.text, self.restorer.restore(result.text))
            }
            return Outcome(audit: rendered.audit ?? body, agent: rendered.agent ?? body, findings: findings)
        } catch {
            let result = self.masker.mask(String(decoding: body, as: UTF8.self), selection: self.selection)
            return Outcome(audit: Array(result.text.utf8), agent: Array(self.restorer.restore(result.text).utf8), findings: result.findings)
        }
    }
}

extension AuditEvent.Finding {
    init(_ finding: ChaperoneMasking.Finding, direction: TrafficDirection) {
        self.init(detector: finding.detector, direction: direction.rawValue, fingerprint: finding.fingerprint, confidence: finding.confidence.rawValue)
    }

    /// One entry per distinct secret and direction.
    static func distinct(_ findings: [ChaperoneMasking.Finding], direction: TrafficDirection) -> [AuditEvent.Finding] {
        var seen = Set<String>()
        var result: [AuditEvent.Finding] = []
        for finding in findings where seen.insert(finding.detector + ":" + finding.fingerprint).inserted {
            result.append(AuditEvent.Finding(finding, direction: direction))
        }
        return result
    }
}
