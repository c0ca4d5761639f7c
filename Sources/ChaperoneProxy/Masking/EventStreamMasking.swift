import ChaperoneCore
import ChaperoneLLM
import Foundation
import ChaperoneMasking

/// Masks a streamed LLM response on the fly. Server-sent events are parsed as they arrive; the
/// text inside each delta (OpenAI chat `delta.content` and tool-call arguments, Responses text
/// and argument deltas, Anthropic `text_delta` / `input_json_delta`) goes through one streaming
/// redactor per text stream, and the event is re-encoded with what the redactor released. Held
/// text is released in an extra delta event just before the event that ends its stream, so SDKs
/// see the same shape they always do. Events that carry the whole text again (`*.done`,
/// `response.completed`) are masked whole, which gives the same text as the deltas.
///
/// Two renderings come out: the audit's (masked) and the agent's (masked, then placeholders of
/// the agent's own secrets restored if policy asks).
struct EventStreamMasking {
    private let operation: LLMOperation
    private let masker: SecretMasker
    private let selection: DetectorSelection
    private let originals: [String: String]
    private var parser = SSEParser()
    private var streams: [String: TextStream] = [:]
    private var order: [String] = []
    /// Top-level members of the last OpenAI chat chunk (id, model, created…) for synthesized chunks.
    private var chunkTemplate: [String: String] = [:]
    private(set) var findings: [Finding] = []
    private(set) var largestHold = 0

    struct Output {
        var audit: [UInt8] = []
        var agent: [UInt8] = []
    }

    /// One text that arrives in pieces, and how to write a delta event for it.
    private struct TextStream {
        var redactor: StreamingRedactor
        var restorer: PlaceholderRestorer
        var audited = ""
        var delivered = ""
        var shape: Shape
    }

    private enum Shape {
        case chatContent(choice: String)
        case chatArguments(choice: String, tool: String)
        case anthropic(index: String, deltaType: String, field: String)
        case responses(eventType: String, fields: [String: String])
    }

    init(operation: LLMOperation, masker: SecretMasker, selection: DetectorSelection, originals: [String: String]) {
        self.operation = operation
        self.masker = masker
        self.selection = selection
        self.originals = originals
    }

    mutating func feed(_ bytes: some Sequence<UInt8>) -> Output {
        var output = Output()
        for event in self.parser.feed(bytes) { self.handle(event, into: &output) }
        return output
    }

    /// The upstream ended: release whatever is still held.
    mutating func finish() -> Output {
        var output = Output()
        self.flush(keys: self.order, into: &output)
        return output
    }

    // MARK: events

    private mutating func handle(_ event: SSEEvent, into output: inout Output) {
        switch self.operation {
        case .openAIChatCompletions: self.chat(event, into: &output)
        case .anthropicMessages: self.anthropic(event, into: &output)
        case .openAIResponses: self.responses(event, into: &output)
        case .openAIEmbeddings: Self.write(event.type, event.data, event.data, id: event.id, into: &output)
        }
    }

    private mutating func chat(_ event: SSEEvent, into output: inout Output) {
        if event.data.trimmingWhitespace() == "[DONE]" {
            self.flush(keys: self.order, into: &output)
            Self.write(event.type, event.data, event.data, id: event.id, into: &output)
            return
        }
        // A chunk that finishes a choice ends its text streams: release what they hold first.
        if self.chunkTemplate.isEmpty { self.chunkTemplate = Self.topLevelScalars(event.data) }
        let finishing = event.data.contains("\"finish_reason\":\"") || event.data.contains("\"finish_reason\": \"")
        if finishing { self.flush(keys: self.order, into: &output) }
        self.rewrite(event, into: &output, select: { site in
            guard case .key("choices")? = site.path.first, site.path.count >= 4, case .key("delta") = site.path[2] else { return false }
            let last = site.lastKey
            return last == "content" || last == "arguments" || last == "refusal"
        }, key: { site in
            let choice = site.field("index", depth: 1) ?? "0"
            if site.lastKey == "arguments" {
                let tool = site.field("index", depth: 3) ?? "0"
                return ("chat:\(choice):tool:\(tool)", .chatArguments(choice: choice, tool: tool))
            }
            return ("chat:\(choice):\(site.lastKey ?? "content")", .chatContent(choice: choice))
        }, finishAfter: finishing)
    }

    private mutating func anthropic(_ event: SSEEvent, into output: inout Output) {
        if event.type == "content_block_stop" || event.type == "message_stop" || event.type == "message_delta" {
            let index = Self.member("index", in: event.data)
            let keys = event.type == "content_block_stop" && index != nil ? self.order.filter { $0 == "block:\(index!)" } : self.order
            self.flush(keys: keys, into: &output)
            Self.write(event.type, event.data, event.data, id: event.id, into: &output)
            return
        }
        guard event.type == "content_block_delta" else {
            Self.write(event.type, event.data, event.data, id: event.id, into: &output)
            return
        }
        self.rewrite(event, into: &output, select: { site in
            guard site.path.count == 2, case .key("delta") = site.path[0] else { return false }
            let last = site.lastKey
            return last == "text" || last == "partial_json" || last == "thinking"
        }, key: { site in
            let index = site.field("index", depth: 0) ?? "0"
            let deltaType = site.field("type", depth: 1) ?? "text_delta"
            return ("block:\(index)", .anthropic(index: index, deltaType: deltaType, field: site.lastKey ?? "text"))
        }, finishAfter: false)
    }

    private mutating func responses(_ event: SSEEvent, into output: inout Output) {
        let type = Self.member("type", in: event.data) ?? event.type
        switch type {
        case "response.output_text.delta", "response.function_call_arguments.delta", "response.refusal.delta":
            var fields = Self.topLevelScalars(event.data)
            fields["delta"] = nil
            fields["obfuscation"] = nil
            let item = Self.member("item_id", in: event.data) ?? Self.member("output_index", in: event.data) ?? "0"
            let part = Self.member("content_index", in: event.data) ?? "-"
            self.rewrite(event, into: &output, select: { site in
                site.path == [.key("delta")]
            }, key: { _ in
                ("\(type):\(item):\(part)", .responses(eventType: type, fields: fields))
            }, finishAfter: false)
        case "response.output_text.done", "response.function_call_arguments.done", "response.refusal.done":
            let item = Self.member("item_id", in: event.data) ?? Self.member("output_index", in: event.data) ?? "0"
            let part = Self.member("content_index", in: event.data) ?? "-"
            let deltaType = type.replacingSuffix(".done", with: ".delta")
            let key = "\(deltaType):\(item):\(part)"
            self.flush(keys: self.order.filter { $0 == key }, into: &output)
            self.wholeText(event, into: &output)
        default:
            // Any other event (a part or item finishing, the response completing) comes after the
            // text it concerns: release what the text streams hold first.
            self.flush(keys: self.order, into: &output)
            self.wholeText(event, into: &output)
        }
    }

    /// Events that repeat the full text: mask each text string whole.
    private mutating func wholeText(_ event: SSEEvent, into output: inout Output) {
        var agentTexts: [String] = []
        let select: (JSONStringRewriter.Site) -> Bool = { site in
            guard let last = site.lastKey else { return false }
            return ["text", "arguments", "refusal", "output_text", "delta"].contains(last)
        }
        let bytes = Array(event.data.utf8)
        let audit = (try? JSONStringRewriter.rewrite(bytes, select: select) { _, text in
            let result = self.masker.mask(text, selection: self.selection)
            self.findings += result.findings
            agentTexts.append(self.restore(result.text))
            return result.changed ? result.text : nil
        }) ?? nil
        let auditData = audit.map { String(decoding: $0, as: UTF8.self) } ?? event.data
        var agentData = auditData
        if !self.originals.isEmpty, !agentTexts.isEmpty {
            var next = 0
            if let agent = (try? JSONStringRewriter.rewrite(bytes, select: select) { _, _ in
                defer { next += 1 }
                return next < agentTexts.count ? agentTexts[next] : nil
            }) ?? nil {
                agentData = String(decoding: agent, as: UTF8.self)
            }
        }
        Self.write(event.type, auditData, agentData, id: event.id, into: &output)
    }

    private func restore(_ text: String) -> String {
        guard !self.originals.isEmpty else { return text }
        return PlaceholderRestorer(originals: self.originals).restore(text)
    }

    /// Feeds each selected delta string to its stream's redactor and re-encodes the event with
    /// what was released (possibly nothing yet).
    private mutating func rewrite(
        _ event: SSEEvent, into output: inout Output,
        select: (JSONStringRewriter.Site) -> Bool,
        key: (JSONStringRewriter.Site) -> (String, Shape),
        finishAfter: Bool
    ) {
        let bytes = Array(event.data.utf8)
        var agentPieces: [String] = []
        var touched: [String] = []
        let audit: [UInt8]?
        do {
            audit = try JSONStringRewriter.rewrite(bytes, select: select) { site, text in
                let (name, shape) = key(site)
                if self.streams[name] == nil {
                    self.streams[name] = TextStream(
                        redactor: self.masker.makeRedactor(selection: self.selection),
                        restorer: PlaceholderRestorer(originals: self.originals), shape: shape
                    )
                    self.order.append(name)
                }
                var released = self.streams[name]!.redactor.feed(text)
                if finishAfter { released += self.streams[name]!.redactor.finish() }
                var delivered = self.streams[name]!.restorer.feed(released)
                if finishAfter { delivered += self.streams[name]!.restorer.finish() }
                self.streams[name]!.audited += released
                self.streams[name]!.delivered += delivered
                self.largestHold = max(self.largestHold, self.streams[name]!.redactor.largestHold)
                touched.append(name)
                agentPieces.append(delivered)
                return released
            }
        } catch {
            // Not JSON: forward it masked as plain text.
            let result = self.masker.mask(event.data, selection: self.selection)
            self.findings += result.findings
            Self.write(event.type, result.text, self.restore(result.text), id: event.id, into: &output)
            return
        }
        self.collectFindings(touched)
        let auditData = audit.map { String(decoding: $0, as: UTF8.self) } ?? event.data
        var agentData = auditData
        if !self.originals.isEmpty, !agentPieces.isEmpty {
            var next = 0
            if let agent = (try? JSONStringRewriter.rewrite(bytes, select: select) { _, _ in
                defer { next += 1 }
                return next < agentPieces.count ? agentPieces[next] : nil
            }) ?? nil {
                agentData = String(decoding: agent, as: UTF8.self)
            }
        }
        Self.write(event.type, auditData, agentData, id: event.id, into: &output)
    }

    private mutating func collectFindings(_ keys: [String]) {
        for key in Set(keys) {
            guard var stream = self.streams[key] else { continue }
            self.findings += stream.redactor.takeFindings()
            self.streams[key] = stream
        }
    }

    /// Ends the given text streams, writing a delta event with what each still held.
    private mutating func flush(keys: [String], into output: inout Output) {
        for key in keys {
            guard var stream = self.streams[key] else { continue }
            let released = stream.redactor.finish()
            let delivered = stream.restorer.feed(released) + stream.restorer.finish()
            stream.audited += released
            stream.delivered += delivered
            self.streams[key] = stream
            self.collectFindings([key])
            self.streams[key] = nil
            self.order.removeAll { $0 == key }
            guard !released.isEmpty || !delivered.isEmpty else { continue }
            let (type, audit, agent) = self.synthesize(stream.shape, audit: released, agent: delivered)
            Self.write(type, audit, agent, id: nil, into: &output)
        }
    }

    private func synthesize(_ shape: Shape, audit: String, agent: String) -> (String, String, String) {
        func chat(_ delta: @escaping (String) -> String, choice: String) -> (String) -> String {
            { text in
                var members = ["\"choices\":[{\"index\":\(choice),\"delta\":\(delta(text)),\"finish_reason\":null}]"]
                for name in ["id", "object", "created", "model", "system_fingerprint", "service_tier"] {
                    if let value = self.chunkTemplate[name] { members.append("\"\(name)\":\(value)") }
                }
                return "{" + members.joined(separator: ",") + "}"
            }
        }
        let render: (String) -> String
        var type = "message"
        switch shape {
        case .chatContent(let choice):
            render = chat({ "{\"content\":\(JSONStringRewriter.encode($0))}" }, choice: choice)
        case .chatArguments(let choice, let tool):
            render = chat({ "{\"tool_calls\":[{\"index\":\(tool),\"function\":{\"arguments\":\(JSONStringRewriter.encode($0))}}]}" }, choice: choice)
        case .anthropic(let index, let deltaType, let field):
            type = "content_block_delta"
            render = { "{\"type\":\"content_block_delta\",\"index\":\(index),\"delta\":{\"type\":\"\(deltaType)\",\"\(field)\":\(JSONStringRewriter.encode($0))}}" }
        case .responses(let eventType, let fields):
            type = eventType
            render = { text in
                var members = fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
                members.append("\"delta\":\(JSONStringRewriter.encode(text))")
                return "{" + members.joined(separator: ",") + "}"
            }
        }
        return (type, render(audit), render(agent))
    }

    private static func write(_ type: String, _ audit: String, _ agent: String, id: String?, into output: inout Output) {
        func encode(_ data: String) -> [UInt8] {
            var text = ""
            if type != "message" { text += "event: \(type)\n" }
            if let id { text += "id: \(id)\n" }
            for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
            text += "\n"
            return Array(text.utf8)
        }
        let auditBytes = encode(audit)
        output.audit += auditBytes
        output.agent += audit == agent ? auditBytes : encode(agent)
    }

    /// The top-level scalar members of a JSON object, as JSON text (strings keep their quotes).
    private static func topLevelScalars(_ data: String) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return [:] }
        var result: [String: String] = [:]
        for (name, value) in object {
            switch value {
            case let text as String: result[name] = JSONStringRewriter.encode(text)
            case let number as NSNumber: result[name] = "\(number)"
            default: continue
            }
        }
        return result
    }

    /// A top-level scalar member of a small JSON object, without a full parse.
    private static func member(_ name: String, in data: String) -> String? {
        var found: String?
        guard let range = data.range(of: "\"\(name)\"") else { return found }
        var rest = data[range.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "\"" {
            rest = rest.dropFirst()
            found = String(rest.prefix { $0 != "\"" })
        } else {
            found = String(rest.prefix { $0.isNumber || $0 == "-" })
        }
        return found
    }
}

extension String {
    fileprivate func replacingSuffix(_ suffix: String, with replacement: String) -> String {
        self.hasSuffix(suffix) ? String(self.dropLast(suffix.count)) + replacement : self
    }
}
