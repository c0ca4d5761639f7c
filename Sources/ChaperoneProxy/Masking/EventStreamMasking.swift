import ChaperoneCore
import ChaperoneLLM
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
    /// Open text streams in the order they started.
    private var order: [String] = []
    /// Top-level members of the first OpenAI chat chunk (id, model, created…) for synthesized chunks.
    private var chunkTemplate: [String: String] = [:]
    private(set) var findings: [Finding] = []

    struct Output {
        var audit: [UInt8] = []
        var agent: [UInt8] = []
    }

    /// One text that arrives in pieces, and how to write a delta event for it.
    private struct TextStream {
        var redactor: StreamingRedactor
        var restorer: PlaceholderRestorer
        var shape: Shape
    }

    private enum Shape {
        case chatContent(choice: String)
        case chatArguments(choice: String, tool: String)
        case anthropic(index: String, deltaType: String, field: String)
        /// The delta event's own members (raw JSON) except the delta.
        case responses(eventType: String, members: [String: String])
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
        let data = Array(event.data.utf8)
        if self.chunkTemplate.isEmpty { self.chunkTemplate = JSONStringRewriter.members(of: data) }
        // A chunk that finishes a choice ends its text streams: release what they hold first.
        let finishing = event.data.contains("\"finish_reason\":\"") || event.data.contains("\"finish_reason\": \"")
        if finishing { self.flush(keys: self.order, into: &output) }
        self.streamDeltas(event, data, into: &output, select: { site in
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
        let data = Array(event.data.utf8)
        switch event.type {
        case "content_block_stop", "message_stop", "message_delta":
            let index = JSONStringRewriter.members(of: data)["index"]
            let keys = event.type == "content_block_stop" && index != nil ? self.order.filter { $0 == "block:\(index!)" } : self.order
            self.flush(keys: keys, into: &output)
            Self.write(event.type, event.data, event.data, id: event.id, into: &output)
        case "content_block_delta":
            self.streamDeltas(event, data, into: &output, select: { site in
                guard site.path.count == 2, case .key("delta") = site.path[0] else { return false }
                let last = site.lastKey
                return last == "text" || last == "partial_json" || last == "thinking"
            }, key: { site in
                let index = site.field("index", depth: 0) ?? "0"
                let deltaType = site.field("type", depth: 1) ?? "text_delta"
                return ("block:\(index)", .anthropic(index: index, deltaType: deltaType, field: site.lastKey ?? "text"))
            }, finishAfter: false)
        default:
            Self.write(event.type, event.data, event.data, id: event.id, into: &output)
        }
    }

    private mutating func responses(_ event: SSEEvent, into output: inout Output) {
        let data = Array(event.data.utf8)
        let members = JSONStringRewriter.members(of: data)
        let type = members["type"].map(JSONStringRewriter.Site.unquoted) ?? event.type
        let item = (members["item_id"] ?? members["output_index"]).map(JSONStringRewriter.Site.unquoted) ?? "0"
        let part = members["content_index"] ?? "-"
        switch type {
        case "response.output_text.delta", "response.function_call_arguments.delta", "response.refusal.delta":
            var template = members
            template["delta"] = nil
            template["obfuscation"] = nil
            self.streamDeltas(event, data, into: &output, select: { site in
                site.path == [.key("delta")]
            }, key: { _ in
                ("\(type):\(item):\(part)", .responses(eventType: type, members: template))
            }, finishAfter: false)
        case "response.output_text.done", "response.function_call_arguments.done", "response.refusal.done":
            let key = "\(type.dropLast(".done".count)).delta:\(item):\(part)"
            self.flush(keys: self.order.filter { $0 == key }, into: &output)
            self.wholeText(event, data, into: &output)
        default:
            // Any other event (a part or item finishing, the response completing) comes after the
            // text it concerns: release what the text streams hold first.
            self.flush(keys: self.order, into: &output)
            self.wholeText(event, data, into: &output)
        }
    }

    /// Events that repeat the full text: mask each text string whole.
    private mutating func wholeText(_ event: SSEEvent, _ data: [UInt8], into output: inout Output) {
        let rendered = try? TwoRenderings.rewrite(data, select: { site in
            guard let last = site.lastKey else { return false }
            return ["text", "arguments", "refusal", "output_text", "delta"].contains(last)
        }) { _, text in
            let result = self.masker.mask(text, selection: self.selection)
            self.findings += result.findings
            return (result.text, self.restore(result.text))
        }
        self.write(event, rendered, into: &output)
    }

    private func restore(_ text: String) -> String {
        guard !self.originals.isEmpty else { return text }
        return PlaceholderRestorer(originals: self.originals).restore(text)
    }

    /// Feeds each selected delta string to its stream's redactor and re-encodes the event with
    /// what was released (possibly nothing yet). Streams are keyed from the sites' complete
    /// enclosing objects, whatever order the upstream writes their members in.
    private mutating func streamDeltas(
        _ event: SSEEvent, _ data: [UInt8], into output: inout Output,
        select: (JSONStringRewriter.Site) -> Bool,
        key: (JSONStringRewriter.Site) -> (String, Shape),
        finishAfter: Bool
    ) {
        guard let sites = try? JSONStringRewriter.strings(of: data, select: select) else {
            // Not JSON: forward it masked as plain text.
            let result = self.masker.mask(event.data, selection: self.selection)
            self.findings += result.findings
            Self.write(event.type, result.text, self.restore(result.text), id: event.id, into: &output)
            return
        }
        let keys = sites.map { key($0.site) }
        var next = 0
        let rendered = try? TwoRenderings.rewrite(data, select: select) { _, text in
            let (name, shape) = keys[next]
            next += 1
            var stream = self.streams[name] ?? self.open(name, shape: shape)
            var released = stream.redactor.feed(text)
            if finishAfter { released += stream.redactor.finish() }
            var delivered = stream.restorer.feed(released)
            if finishAfter { delivered += stream.restorer.finish() }
            self.findings += stream.redactor.takeFindings()
            self.streams[name] = stream
            return (released, delivered)
        }
        self.write(event, rendered, into: &output)
    }

    private mutating func open(_ name: String, shape: Shape) -> TextStream {
        self.order.append(name)
        return TextStream(
            redactor: self.masker.makeRedactor(selection: self.selection),
            restorer: PlaceholderRestorer(originals: self.originals), shape: shape
        )
    }

    /// Ends the given text streams, writing a delta event with what each still held.
    private mutating func flush(keys: [String], into output: inout Output) {
        for key in keys {
            guard var stream = self.streams.removeValue(forKey: key) else { continue }
            self.order.removeAll { $0 == key }
            let released = stream.redactor.finish()
            let delivered = stream.restorer.feed(released) + stream.restorer.finish()
            self.findings += stream.redactor.takeFindings()
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
        case .responses(let eventType, let members):
            type = eventType
            render = { text in
                var fields = members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
                fields.append("\"delta\":\(JSONStringRewriter.encode(text))")
                return "{" + fields.joined(separator: ",") + "}"
            }
        }
        return (type, render(audit), render(agent))
    }

    /// Writes an event after `TwoRenderings`: unchanged parts fall back to the original data.
    private func write(_ event: SSEEvent, _ rendered: TwoRenderings.Result?, into output: inout Output) {
        let audit = rendered?.audit.map { String(decoding: $0, as: UTF8.self) } ?? event.data
        let agent = rendered?.agent.map { String(decoding: $0, as: UTF8.self) } ?? event.data
        Self.write(event.type, audit, agent, id: event.id, into: &output)
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
}
