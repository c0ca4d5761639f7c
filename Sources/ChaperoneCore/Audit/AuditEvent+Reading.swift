public import Foundation

extension AuditEvent {
    /// Decodes one event from its JSON text, as `JSONDecoder` would.
    ///
    /// A reader written for this type takes the usual case without `Codable`'s per-key cost
    /// (several times faster: the collector decodes every line it stores). Whatever it declines —
    /// malformed text, or valid JSON in an unusual form — goes to `JSONDecoder`, whose answer
    /// (the event, or an error saying what is wrong) is the result. The members here mirror the
    /// `Codable` conformance: required keys must be present and not null, optional ones may be
    /// missing or null, unknown keys are ignored. `AuditEventReadingTests` holds the two to the
    /// same answers.
    public static func decode(jsonLine bytes: [UInt8], decoder: JSONDecoder = JSONDecoder()) throws -> AuditEvent {
        if let event = Self.read(jsonLine: bytes) { return event }
        return try decoder.decode(AuditEvent.self, from: Data(bytes))
    }

    /// The hand-written reader alone: nil where it declines.
    static func read(jsonLine bytes: [UInt8]) -> AuditEvent? {
        bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(buffer)
            do throws(JSONReader.Declined) {
                let event = try AuditEvent(reading: &reader)
                try reader.end()
                return event
            } catch {
                return nil
            }
        }
    }

    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var schemaVersion: String?, eventID: String?, streamID: String?, seq: UInt64?, prevHash: String?, time: String?
        var kind: String?, sessionID: String?, exchangeID: String??, source: Source?, http: HTTPExchange??, genAI: GenAI??
        var content: Content??, findings: [Finding]?, decision: Decision??, outcome: Outcome??, error: ErrorInfo??
        var integrity: Integrity??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "schema_version": try once(&schemaVersion, r.string())
            case "event_id": try once(&eventID, r.string())
            case "stream_id": try once(&streamID, r.string())
            case "seq": try once(&seq, r.integer())
            case "prev_hash": try once(&prevHash, r.string())
            case "time": try once(&time, r.string())
            case "kind": try once(&kind, r.string())
            case "session_id": try once(&sessionID, r.string())
            case "exchange_id": try once(&exchangeID, optionalString(&r))
            case "source": try once(&source, Source(reading: &r))
            case "http": try once(&http, r.optional { r throws(JSONReader.Declined) in try HTTPExchange(reading: &r) })
            case "gen_ai": try once(&genAI, r.optional { r throws(JSONReader.Declined) in try GenAI(reading: &r) })
            case "content": try once(&content, r.optional { r throws(JSONReader.Declined) in try Content(reading: &r) })
            case "findings": try once(&findings, r.array { r throws(JSONReader.Declined) in try Finding(reading: &r) })
            case "decision": try once(&decision, r.optional { r throws(JSONReader.Declined) in try Decision(reading: &r) })
            case "outcome":
                try once(&outcome, r.optional { r throws(JSONReader.Declined) in
                    guard let outcome = Outcome(rawValue: try r.string()) else { throw JSONReader.Declined() }
                    return outcome
                })
            case "error": try once(&error, r.optional { r throws(JSONReader.Declined) in try ErrorInfo(reading: &r) })
            case "integrity": try once(&integrity, r.optional { r throws(JSONReader.Declined) in try Integrity(reading: &r) })
            default: try r.skipValue()
            }
        }
        guard let schemaVersion, let eventID, let streamID, let seq, let prevHash, let time, let kind, let sessionID, let source, let findings else {
            throw JSONReader.Declined()
        }
        self.init(kind: Kind(rawValue: kind), sessionID: sessionID, exchangeID: exchangeID ?? nil, source: source)
        self.schemaVersion = schemaVersion
        self.eventID = eventID
        self.streamID = streamID
        self.seq = seq
        self.prevHash = prevHash
        self.time = time
        self.http = http ?? nil
        self.genAI = genAI ?? nil
        self.content = content ?? nil
        self.findings = findings
        self.decision = decision ?? nil
        self.outcome = outcome ?? nil
        self.error = error ?? nil
        self.integrity = integrity ?? nil
    }
}

/// Reads an optional string member.
private func optionalString(_ r: inout JSONReader) throws(JSONReader.Declined) -> String? {
    try r.optional { r throws(JSONReader.Declined) in try r.string() }
}

private func optionalInteger<T: FixedWidthInteger>(_ r: inout JSONReader, _: T.Type = T.self) throws(JSONReader.Declined) -> T? {
    try r.optional { r throws(JSONReader.Declined) in try r.integer(T.self) }
}

private func strings(_ r: inout JSONReader) throws(JSONReader.Declined) -> [String] {
    try r.array { r throws(JSONReader.Declined) in try r.string() }
}

private func required<T>(_ value: T?) throws(JSONReader.Declined) -> T {
    guard let value else { throw JSONReader.Declined() }
    return value
}

extension AuditEvent.Source {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var cluster: String??, namespace: String??, pod: String??, podUID: String??, container: String??, node: String??
        var serviceAccount: String??, initiator: String??, selfReported: Bool?
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "cluster": try once(&cluster, optionalString(&r))
            case "namespace": try once(&namespace, optionalString(&r))
            case "pod": try once(&pod, optionalString(&r))
            case "pod_uid": try once(&podUID, optionalString(&r))
            case "container": try once(&container, optionalString(&r))
            case "node": try once(&node, optionalString(&r))
            case "service_account": try once(&serviceAccount, optionalString(&r))
            case "initiator": try once(&initiator, optionalString(&r))
            case "self_reported": try once(&selfReported, r.bool())
            default: try r.skipValue()
            }
        }
        self.init(
            cluster: cluster ?? nil, namespace: namespace ?? nil, pod: pod ?? nil, podUID: podUID ?? nil, container: container ?? nil,
            node: node ?? nil, serviceAccount: serviceAccount ?? nil, initiator: initiator ?? nil, selfReported: try required(selfReported))
    }
}

extension AuditEvent.HTTPExchange {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var method: String?, upstream: String??, path: String?, status: Int??, bytesIn: Int?, bytesOut: Int?
        var durationMicros: Int64??, ttfbMicros: Int64??, requestSHA256: String??, responseSHA256: String??, responseContentType: String??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "method": try once(&method, r.string())
            case "upstream": try once(&upstream, optionalString(&r))
            case "path": try once(&path, r.string())
            case "status": try once(&status, optionalInteger(&r))
            case "bytes_in": try once(&bytesIn, r.integer())
            case "bytes_out": try once(&bytesOut, r.integer())
            case "duration_us": try once(&durationMicros, optionalInteger(&r))
            case "ttfb_us": try once(&ttfbMicros, optionalInteger(&r))
            case "request_sha256": try once(&requestSHA256, optionalString(&r))
            case "response_sha256": try once(&responseSHA256, optionalString(&r))
            case "response_content_type": try once(&responseContentType, optionalString(&r))
            default: try r.skipValue()
            }
        }
        self.init(
            method: try required(method), upstream: upstream ?? nil, path: try required(path), status: status ?? nil,
            bytesIn: try required(bytesIn), bytesOut: try required(bytesOut), durationMicros: durationMicros ?? nil,
            ttfbMicros: ttfbMicros ?? nil, requestSHA256: requestSHA256 ?? nil, responseSHA256: responseSHA256 ?? nil,
            responseContentType: responseContentType ?? nil)
    }
}

extension AuditEvent.GenAI {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var operation: Operation?, provider: Provider?, request: Request?, response: Response??, usage: Usage??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "operation": try once(&operation, Operation(name: Self.name(&r)))
            case "provider": try once(&provider, Provider(name: Self.name(&r)))
            case "request": try once(&request, Request(reading: &r))
            case "response": try once(&response, r.optional { r throws(JSONReader.Declined) in try Response(reading: &r) })
            case "usage": try once(&usage, r.optional { r throws(JSONReader.Declined) in try Usage(reading: &r) })
            default: try r.skipValue()
            }
        }
        self.init(operation: try required(operation), provider: try required(provider), request: try required(request), response: response ?? nil, usage: usage ?? nil)
    }

    /// `{"name": …}`, the shape of `operation` and `provider`.
    private static func name(_ r: inout JSONReader) throws(JSONReader.Declined) -> String {
        var name: String?
        try r.object { r, key throws(JSONReader.Declined) in
            if key == "name" { try once(&name, r.string()) } else { try r.skipValue() }
        }
        return try required(name)
    }
}

extension AuditEvent.GenAI.Request {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var model: String??, stream: Bool??, maxTokens: Int??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "model": try once(&model, optionalString(&r))
            case "stream": try once(&stream, r.optional { r throws(JSONReader.Declined) in try r.bool() })
            case "max_tokens": try once(&maxTokens, optionalInteger(&r))
            default: try r.skipValue()
            }
        }
        self.init(model: model ?? nil, stream: stream ?? nil, maxTokens: maxTokens ?? nil)
    }
}

extension AuditEvent.GenAI.Response {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var model: String??, id: String??, finishReasons: [String]?
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "model": try once(&model, optionalString(&r))
            case "id": try once(&id, optionalString(&r))
            case "finish_reasons": try once(&finishReasons, strings(&r))
            default: try r.skipValue()
            }
        }
        self.init(model: model ?? nil, id: id ?? nil, finishReasons: try required(finishReasons))
    }
}

extension AuditEvent.GenAI.Usage {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var inputTokens: Int??, outputTokens: Int??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "input_tokens": try once(&inputTokens, optionalInteger(&r))
            case "output_tokens": try once(&outputTokens, optionalInteger(&r))
            default: try r.skipValue()
            }
        }
        self.init(inputTokens: inputTokens ?? nil, outputTokens: outputTokens ?? nil)
    }
}

extension AuditEvent.Content {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var messages: [AuditEvent.Message]?, responseText: String??, toolCalls: [AuditEvent.ToolCall]?, inputCount: Int??, truncated: Bool?
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "messages": try once(&messages, r.array { r throws(JSONReader.Declined) in try AuditEvent.Message(reading: &r) })
            case "response_text": try once(&responseText, optionalString(&r))
            case "tool_calls": try once(&toolCalls, r.array { r throws(JSONReader.Declined) in try AuditEvent.ToolCall(reading: &r) })
            case "input_count": try once(&inputCount, optionalInteger(&r))
            case "truncated": try once(&truncated, r.bool())
            default: try r.skipValue()
            }
        }
        self.init(
            messages: try required(messages), responseText: responseText ?? nil, toolCalls: try required(toolCalls), inputCount: inputCount ?? nil,
            truncated: try required(truncated))
    }
}

extension AuditEvent.Message {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var role: String?, content: String?, name: String??, toolCallID: String??, toolCalls: [AuditEvent.ToolCall]??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "role": try once(&role, r.string())
            case "content": try once(&content, r.string())
            case "name": try once(&name, optionalString(&r))
            case "tool_call_id": try once(&toolCallID, optionalString(&r))
            case "tool_calls":
                try once(&toolCalls, r.optional { r throws(JSONReader.Declined) in
                    try r.array { r throws(JSONReader.Declined) in try AuditEvent.ToolCall(reading: &r) }
                })
            default: try r.skipValue()
            }
        }
        self.init(role: try required(role), content: try required(content), name: name ?? nil, toolCallID: toolCallID ?? nil, toolCalls: toolCalls ?? nil)
    }
}

extension AuditEvent.ToolCall {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var id: String??, name: String?, arguments: String?
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "id": try once(&id, optionalString(&r))
            case "name": try once(&name, r.string())
            case "arguments": try once(&arguments, r.string())
            default: try r.skipValue()
            }
        }
        self.init(id: id ?? nil, name: try required(name), arguments: try required(arguments))
    }
}

extension AuditEvent.Finding {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var detector: String?, direction: String?, fingerprint: String?, confidence: String??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "detector": try once(&detector, r.string())
            case "direction": try once(&direction, r.string())
            case "fingerprint": try once(&fingerprint, r.string())
            case "confidence": try once(&confidence, optionalString(&r))
            default: try r.skipValue()
            }
        }
        self.init(detector: try required(detector), direction: try required(direction), fingerprint: try required(fingerprint), confidence: confidence ?? nil)
    }
}

extension AuditEvent.Decision {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var action: String?, rules: [String]?, approvalID: String??, approvalOutcome: String??, severity: String??, message: String??
        var approvalReason: String??, approvers: [String]??
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "action": try once(&action, r.string())
            case "rules": try once(&rules, strings(&r))
            case "approval_id": try once(&approvalID, optionalString(&r))
            case "approval_outcome": try once(&approvalOutcome, optionalString(&r))
            case "approval_reason": try once(&approvalReason, optionalString(&r))
            case "approvers": try once(&approvers, r.optional { r throws(JSONReader.Declined) in try strings(&r) })
            case "severity": try once(&severity, optionalString(&r))
            case "message": try once(&message, optionalString(&r))
            default: try r.skipValue()
            }
        }
        self.init(
            action: try required(action), rules: try required(rules), approvalID: approvalID ?? nil, approvalOutcome: approvalOutcome ?? nil,
            severity: severity ?? nil, message: message ?? nil)
        self.approvalReason = approvalReason ?? nil
        self.approvers = approvers ?? nil
    }
}

extension AuditEvent.ErrorInfo {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var type: String?, message: String?
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "type": try once(&type, r.string())
            case "message": try once(&message, r.string())
            default: try r.skipValue()
            }
        }
        self.init(type: try required(type), message: try required(message))
    }
}

extension AuditEvent.Integrity {
    init(reading r: inout JSONReader) throws(JSONReader.Declined) {
        var streamID: String?, eventID: String??, expectedSeq: UInt64??, receivedSeq: UInt64??, missingFrom: UInt64??, missingTo: UInt64??
        var expectedPrevHash: String??, receivedPrevHash: String??, fields: [String]??, claimed: AuditEvent.Source??, verified: AuditEvent.Source??
        var message: String?
        try r.object { r, key throws(JSONReader.Declined) in
            switch key {
            case "stream_id": try once(&streamID, r.string())
            case "event_id": try once(&eventID, optionalString(&r))
            case "expected_seq": try once(&expectedSeq, optionalInteger(&r))
            case "received_seq": try once(&receivedSeq, optionalInteger(&r))
            case "missing_from": try once(&missingFrom, optionalInteger(&r))
            case "missing_to": try once(&missingTo, optionalInteger(&r))
            case "expected_prev_hash": try once(&expectedPrevHash, optionalString(&r))
            case "received_prev_hash": try once(&receivedPrevHash, optionalString(&r))
            case "fields": try once(&fields, r.optional { r throws(JSONReader.Declined) in try strings(&r) })
            case "claimed": try once(&claimed, r.optional { r throws(JSONReader.Declined) in try AuditEvent.Source(reading: &r) })
            case "verified": try once(&verified, r.optional { r throws(JSONReader.Declined) in try AuditEvent.Source(reading: &r) })
            case "message": try once(&message, r.string())
            default: try r.skipValue()
            }
        }
        self.init(streamID: try required(streamID), eventID: eventID ?? nil, message: try required(message))
        self.expectedSeq = expectedSeq ?? nil
        self.receivedSeq = receivedSeq ?? nil
        self.missingFrom = missingFrom ?? nil
        self.missingTo = missingTo ?? nil
        self.expectedPrevHash = expectedPrevHash ?? nil
        self.receivedPrevHash = receivedPrevHash ?? nil
        self.fields = fields ?? nil
        self.claimed = claimed ?? nil
        self.verified = verified ?? nil
    }
}
