import ChaperoneCore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// `POST /v1/events`: a batch of audit events as JSON lines (optionally gzip), from a sidecar
/// holding a projected service-account token. Answers only after the batch is committed:
/// which event ids were stored, which were duplicates, which lines were refused and why.
struct IngestEndpoint: Sendable {
    static let path = "/v1/events"

    let authenticator: any TokenAuthenticator
    let commits: GroupCommit
    let limits: CollectorConfiguration.Limits
    let tail: LiveTail?
    let output: StandardOutput
    let metrics: CollectorMetrics
    let logger: Logger

    func respond(to request: Request) async -> Response {
        let started = ContinuousClock.now
        // Who: the token, before reading a byte of the body.
        guard let token = APIResponse.bearerToken(request) else {
            return self.refuseToken(.missing)
        }
        let identity: PodIdentity
        do {
            identity = try await self.authenticator.authenticate(bearer: token)
        } catch {
            return self.refuseToken(error)
        }

        let contentType = (request.headers[.contentType] ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard ["application/x-ndjson", "application/jsonl", "application/json-lines", "application/x-jsonlines"].contains(contentType) else {
            self.metrics.rejectedBatch(reason: "unsupported_media_type")
            return APIResponse.error(.unsupportedMediaType, code: "unsupported_media_type", "send JSON lines as application/x-ndjson (gzip allowed with Content-Encoding: gzip)")
        }
        let encoding = (request.headers[.contentEncoding] ?? "identity").lowercased()
        guard ["identity", "gzip", "x-gzip"].contains(encoding) else {
            self.metrics.rejectedBatch(reason: "unsupported_encoding")
            return APIResponse.error(.unsupportedMediaType, code: "unsupported_encoding", "Content-Encoding \(encoding) is not supported; use gzip or none")
        }
        var body: [UInt8]
        do {
            let buffer = try await request.body.collect(upTo: self.limits.maxBatchBytes)
            body = Array(buffer: buffer)
        } catch {
            self.metrics.rejectedBatch(reason: "too_large")
            return APIResponse.error(.contentTooLarge, code: "batch_too_large", "the batch is larger than \(self.limits.maxBatchBytes) bytes; send smaller batches")
        }
        if encoding != "identity" {
            do throws(GzipInflater.Failure) {
                body = try GzipInflater.inflate(body, limit: self.limits.maxInflatedBatchBytes)
            } catch {
                switch error {
                case .tooLarge:
                    self.metrics.rejectedBatch(reason: "too_large")
                    return APIResponse.error(.contentTooLarge, code: "batch_too_large", "the batch inflates to more than \(self.limits.maxInflatedBatchBytes) bytes")
                case .corrupt(let why):
                    self.metrics.rejectedBatch(reason: "bad_gzip")
                    return APIResponse.error(.badRequest, code: "bad_gzip", "the body is not valid gzip: \(why)")
                }
            }
        }
        let parsed: EventBatchParser.Parsed
        do throws(EventBatchParser.Failure) {
            parsed = try EventBatchParser.parse(body, maxEvents: self.limits.maxBatchEvents, maxEventBytes: self.limits.maxEventBytes)
        } catch {
            switch error {
            case .tooManyEvents(let limit):
                self.metrics.rejectedBatch(reason: "too_many_events")
                return APIResponse.error(.contentTooLarge, code: "too_many_events", "a batch holds at most \(limit) events")
            case .empty:
                self.metrics.rejectedBatch(reason: "empty")
                return APIResponse.error(.badRequest, code: "empty_batch", "the batch has no event lines")
            }
        }

        var plan = LedgerPlan()
        if !parsed.events.isEmpty {
            let batch = IngestBatch(events: parsed.events, identity: identity, receivedMicros: EventStore.nowMicros())
            do {
                plan = try await self.commits.append(batch)
            } catch {
                self.metrics.rejectedBatch(reason: "storage_error")
                self.logger.error("ingest.store_failed", metadata: [
                    "error": "\(error)", "namespace": "\(identity.namespace)", "pod": "\(identity.pod ?? "")", "events": "\(parsed.events.count)",
                ])
                return APIResponse.error(
                    .serviceUnavailable, code: "storage_unavailable", "the batch was not stored; retry it",
                    headers: [.retryAfter: "1"])
            }
        }
        self.metrics.committed(stored: plan.accepted.count, duplicates: plan.duplicates.count, duration: ContinuousClock.now - started)
        self.metrics.rejectedEvents(parsed.rejections.count)
        for finding in plan.findings {
            self.metrics.integrityFinding(kind: finding.kind.rawValue)
            self.logger.warning("integrity.finding", metadata: [
                "kind": "\(finding.kind)", "stream_id": "\(finding.integrity?.streamID ?? "")",
                "finding": "\(finding.integrity?.message ?? "")", "namespace": "\(identity.namespace)", "pod": "\(identity.pod ?? "")",
            ])
        }
        if let tail = self.tail {
            self.output.write(lines: plan.records.map(tail.line(for:)))
        }
        if !parsed.rejections.isEmpty {
            self.logger.warning("ingest.lines_rejected", metadata: [
                "count": "\(parsed.rejections.count)", "first": "line \(parsed.rejections[0].line): \(parsed.rejections[0].error)",
                "namespace": "\(identity.namespace)", "pod": "\(identity.pod ?? "")",
            ])
        }
        return APIResponse.json { w in
            w.key("accepted") { $0.strings(plan.accepted) }
            w.key("duplicates") { $0.strings(plan.duplicates) }
            w.key("integrity_findings") { $0.integer(plan.findings.count) }
            w.key("rejected") { w in
                w.array(parsed.rejections) { w, rejection in
                    w.object { w in
                        w.key("error") { $0.string(rejection.error) }
                        if let id = rejection.eventID { w.key("event_id") { $0.string(id) } }
                        w.key("line") { $0.integer(rejection.line) }
                    }
                }
            }
        }
    }

    private func refuseToken(_ rejection: TokenRejection) -> Response {
        self.metrics.rejectedToken(rejection)
        if rejection == .unavailable {
            return APIResponse.error(.serviceUnavailable, code: "authentication_unavailable", rejection.description, headers: [.retryAfter: "2"])
        }
        return APIResponse.error(
            .unauthorized, code: "unauthenticated", "\(rejection.description); send the pod's projected service-account token (audience chaperone-collector)",
            headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
    }
}
