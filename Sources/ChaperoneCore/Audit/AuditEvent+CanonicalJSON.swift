/// The canonical JSON of an event, written by hand: this runs twice per exchange on the proxy's
/// hot path, where Foundation's reflective `JSONEncoder` cost more than the rest of the exchange.
/// Keys are written in sorted (byte) order at every level and absent optionals are left out;
/// a unit test checks the output byte for byte against `JSONEncoder` with `.sortedKeys`.
extension AuditEvent {
    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalJSONWriter()
        w.object { w in
            if let content = self.content { w.key("content") { $0.content(content) } }
            if let decision = self.decision { w.key("decision") { $0.decision(decision) } }
            if let error = self.error { w.key("error") { $0.errorInfo(error) } }
            w.key("event_id") { $0.string(self.eventID) }
            if let exchangeID = self.exchangeID { w.key("exchange_id") { $0.string(exchangeID) } }
            w.key("findings") { w in w.array(self.findings) { $0.finding($1) } }
            if let genAI = self.genAI { w.key("gen_ai") { $0.genAI(genAI) } }
            if let http = self.http { w.key("http") { $0.http(http) } }
            if let integrity = self.integrity { w.key("integrity") { $0.integrity(integrity) } }
            w.key("kind") { $0.string(self.kind.rawValue) }
            if let outcome = self.outcome { w.key("outcome") { $0.string(outcome.rawValue) } }
            w.key("prev_hash") { $0.string(self.prevHash) }
            w.key("schema_version") { $0.string(self.schemaVersion) }
            w.key("seq") { $0.integer(self.seq) }
            w.key("session_id") { $0.string(self.sessionID) }
            w.key("source") { $0.source(self.source) }
            w.key("stream_id") { $0.string(self.streamID) }
            w.key("time") { $0.string(self.time) }
        }
        return w.bytes
    }
}

/// A JSON writer for values whose keys the caller gives in sorted order.
package struct CanonicalJSONWriter {
    package private(set) var bytes: [UInt8] = []
    private var needsComma = false

    package init() { self.bytes.reserveCapacity(1024) }

    package mutating func object(_ body: (inout CanonicalJSONWriter) -> Void) {
        self.bytes.append(UInt8(ascii: "{"))
        self.needsComma = false
        body(&self)
        self.bytes.append(UInt8(ascii: "}"))
        self.needsComma = true
    }

    package mutating func array<C: Collection>(_ items: C, _ element: (inout CanonicalJSONWriter, C.Element) -> Void) {
        self.bytes.append(UInt8(ascii: "["))
        self.needsComma = false
        for item in items {
            if self.needsComma { self.bytes.append(UInt8(ascii: ",")) }
            element(&self, item)
            self.needsComma = true
        }
        self.bytes.append(UInt8(ascii: "]"))
        self.needsComma = true
    }

    package mutating func key(_ name: StaticString, _ value: (inout CanonicalJSONWriter) -> Void) {
        if self.needsComma { self.bytes.append(UInt8(ascii: ",")) }
        self.bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { self.bytes.append(contentsOf: $0) }
        self.bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        value(&self)
        self.needsComma = true
    }

    package mutating func string(_ text: String) {
        self.bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0a: self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0d: self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0c: self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x00..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                self.bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
            default: self.bytes.append(byte)
            }
        }
        self.bytes.append(UInt8(ascii: "\""))
    }

    package mutating func integer<I: BinaryInteger>(_ value: I) {
        self.bytes.append(contentsOf: String(value).utf8)
    }

    package mutating func bool(_ value: Bool) {
        self.bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    package mutating func strings(_ values: [String]) {
        self.array(values) { $0.string($1) }
    }

    /// A value that is JSON already, spliced in as it is.
    package mutating func raw(_ json: [UInt8]) {
        self.bytes.append(contentsOf: json)
        self.needsComma = true
    }
}

extension CanonicalJSONWriter {
    mutating func source(_ s: AuditEvent.Source) {
        self.object { w in
            if let v = s.cluster { w.key("cluster") { $0.string(v) } }
            if let v = s.container { w.key("container") { $0.string(v) } }
            if let v = s.initiator { w.key("initiator") { $0.string(v) } }
            if let v = s.namespace { w.key("namespace") { $0.string(v) } }
            if let v = s.node { w.key("node") { $0.string(v) } }
            if let v = s.pod { w.key("pod") { $0.string(v) } }
            if let v = s.podUID { w.key("pod_uid") { $0.string(v) } }
            w.key("self_reported") { $0.bool(s.selfReported) }
            if let v = s.serviceAccount { w.key("service_account") { $0.string(v) } }
        }
    }

    mutating func http(_ h: AuditEvent.HTTPExchange) {
        self.object { w in
            w.key("bytes_in") { $0.integer(h.bytesIn) }
            w.key("bytes_out") { $0.integer(h.bytesOut) }
            if let v = h.durationMicros { w.key("duration_us") { $0.integer(v) } }
            w.key("method") { $0.string(h.method) }
            w.key("path") { $0.string(h.path) }
            if let v = h.requestSHA256 { w.key("request_sha256") { $0.string(v) } }
            if let v = h.responseContentType { w.key("response_content_type") { $0.string(v) } }
            if let v = h.responseSHA256 { w.key("response_sha256") { $0.string(v) } }
            if let v = h.status { w.key("status") { $0.integer(v) } }
            if let v = h.ttfbMicros { w.key("ttfb_us") { $0.integer(v) } }
            if let v = h.upstream { w.key("upstream") { $0.string(v) } }
        }
    }

    mutating func genAI(_ g: AuditEvent.GenAI) {
        self.object { w in
            w.key("operation") { w in w.object { w in w.key("name") { $0.string(g.operation.name) } } }
            w.key("provider") { w in w.object { w in w.key("name") { $0.string(g.provider.name) } } }
            w.key("request") { w in
                w.object { w in
                    if let v = g.request.maxTokens { w.key("max_tokens") { $0.integer(v) } }
                    if let v = g.request.model { w.key("model") { $0.string(v) } }
                    if let v = g.request.stream { w.key("stream") { $0.bool(v) } }
                }
            }
            if let response = g.response {
                w.key("response") { w in
                    w.object { w in
                        w.key("finish_reasons") { $0.strings(response.finishReasons) }
                        if let v = response.id { w.key("id") { $0.string(v) } }
                        if let v = response.model { w.key("model") { $0.string(v) } }
                    }
                }
            }
            if let usage = g.usage {
                w.key("usage") { w in
                    w.object { w in
                        if let v = usage.inputTokens { w.key("input_tokens") { $0.integer(v) } }
                        if let v = usage.outputTokens { w.key("output_tokens") { $0.integer(v) } }
                    }
                }
            }
        }
    }

    mutating func content(_ c: AuditEvent.Content) {
        self.object { w in
            if let v = c.inputCount { w.key("input_count") { $0.integer(v) } }
            w.key("messages") { w in w.array(c.messages) { $0.message($1) } }
            if let v = c.responseText { w.key("response_text") { $0.string(v) } }
            w.key("tool_calls") { w in w.array(c.toolCalls) { $0.toolCall($1) } }
            w.key("truncated") { $0.bool(c.truncated) }
        }
    }

    mutating func message(_ m: AuditEvent.Message) {
        self.object { w in
            w.key("content") { $0.string(m.content) }
            if let v = m.name { w.key("name") { $0.string(v) } }
            w.key("role") { $0.string(m.role) }
            if let v = m.toolCallID { w.key("tool_call_id") { $0.string(v) } }
            if let calls = m.toolCalls { w.key("tool_calls") { w in w.array(calls) { $0.toolCall($1) } } }
        }
    }

    mutating func toolCall(_ t: AuditEvent.ToolCall) {
        self.object { w in
            w.key("arguments") { $0.string(t.arguments) }
            if let v = t.id { w.key("id") { $0.string(v) } }
            w.key("name") { $0.string(t.name) }
        }
    }

    mutating func finding(_ f: AuditEvent.Finding) {
        self.object { w in
            if let v = f.confidence { w.key("confidence") { $0.string(v) } }
            w.key("detector") { $0.string(f.detector) }
            w.key("direction") { $0.string(f.direction) }
            w.key("fingerprint") { $0.string(f.fingerprint) }
        }
    }

    mutating func decision(_ d: AuditEvent.Decision) {
        self.object { w in
            w.key("action") { $0.string(d.action) }
            if let v = d.approvalID { w.key("approval_id") { $0.string(v) } }
            if let v = d.approvalOutcome { w.key("approval_outcome") { $0.string(v) } }
            if let v = d.approvalReason { w.key("approval_reason") { $0.string(v) } }
            if let v = d.approvers { w.key("approvers") { $0.strings(v) } }
            if let v = d.message { w.key("message") { $0.string(v) } }
            w.key("rules") { $0.strings(d.rules) }
            if let v = d.severity { w.key("severity") { $0.string(v) } }
        }
    }

    mutating func integrity(_ i: AuditEvent.Integrity) {
        self.object { w in
            if let v = i.claimed { w.key("claimed") { $0.source(v) } }
            if let v = i.eventID { w.key("event_id") { $0.string(v) } }
            if let v = i.expectedPrevHash { w.key("expected_prev_hash") { $0.string(v) } }
            if let v = i.expectedSeq { w.key("expected_seq") { $0.integer(v) } }
            if let v = i.fields { w.key("fields") { $0.strings(v) } }
            w.key("message") { $0.string(i.message) }
            if let v = i.missingFrom { w.key("missing_from") { $0.integer(v) } }
            if let v = i.missingTo { w.key("missing_to") { $0.integer(v) } }
            if let v = i.receivedPrevHash { w.key("received_prev_hash") { $0.string(v) } }
            if let v = i.receivedSeq { w.key("received_seq") { $0.integer(v) } }
            w.key("stream_id") { $0.string(i.streamID) }
            if let v = i.verified { w.key("verified") { $0.source(v) } }
        }
    }

    mutating func errorInfo(_ e: AuditEvent.ErrorInfo) {
        self.object { w in
            w.key("message") { $0.string(e.message) }
            w.key("type") { $0.string(e.type) }
        }
    }
}
