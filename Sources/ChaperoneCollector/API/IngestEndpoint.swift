import ChaperoneCore
import ChaperoneGzip
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
    /// Inflating and parsing, a few batches at a time in arrival order (see `parsingSlots`).
    let parsing: Turnstile
    let limits: CollectorConfiguration.Limits
    let tail: LiveTail?
    let output: StandardOutput
    let metrics: CollectorMetrics
    let logger: Logger

    /// Batches inflated and parsed at once: one per core. If every request parsed at once, each
    /// would take its share of every core, none would finish early, and the single writer would
    /// wait for its next batch while sharing its core with all of them. In arrival order, a batch
    /// is ready for the writer every few milliseconds. (This also bounds the inflated bodies held
    /// in memory.)
    static var parsingSlots: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

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
        let body: [UInt8]
        do {
            body = Array(buffer: try await request.body.collect(upTo: self.limits.maxBatchBytes))
        } catch {
            self.metrics.rejectedBatch(reason: "too_large")
            return APIResponse.error(.contentTooLarge, code: "batch_too_large", "the batch is larger than \(self.limits.maxBatchBytes) bytes; send smaller batches")
        }
        let receivedMicros = WallClock.nowMicroseconds()
        let parsed: EventBatchParser.Parsed
        switch await self.parsing.run({ self.read(body, encoding: encoding) }) {
        case .success(let batch):
            parsed = batch
        case .failure(let refusal):
            self.metrics.rejectedBatch(reason: refusal.reason)
            return APIResponse.error(refusal.status, code: refusal.code, refusal.message)
        }

        var plan = LedgerPlan()
        if !parsed.events.isEmpty {
            let batch = IngestBatch(events: parsed.events, identity: identity, receivedMicros: receivedMicros)
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

    /// A batch refused before storage: the metric's reason and the answer.
    struct Refusal: Error {
        var reason: String
        var status: HTTPResponse.Status
        var code: String
        var message: String
    }

    /// Inflates and parses a body: the CPU-bound part of ingest, run `parsing`'s few at a time.
    private func read(_ body: [UInt8], encoding: String) -> Result<EventBatchParser.Parsed, Refusal> {
        var body = body
        if encoding != "identity" {
            do throws(Gzip.Failure) {
                body = try Gzip.inflate(body, limit: self.limits.maxInflatedBatchBytes)
            } catch {
                switch error {
                case .tooLarge:
                    return .failure(Refusal(
                        reason: "too_large", status: .contentTooLarge, code: "batch_too_large",
                        message: "the batch inflates to more than \(self.limits.maxInflatedBatchBytes) bytes"))
                case .corrupt(let why):
                    return .failure(Refusal(reason: "bad_gzip", status: .badRequest, code: "bad_gzip", message: "the body is not valid gzip: \(why)"))
                }
            }
        }
        do throws(EventBatchParser.Failure) {
            return .success(try EventBatchParser.parse(body, maxEvents: self.limits.maxBatchEvents, maxEventBytes: self.limits.maxEventBytes))
        } catch {
            switch error {
            case .tooManyEvents(let limit):
                return .failure(Refusal(reason: "too_many_events", status: .contentTooLarge, code: "too_many_events", message: "a batch holds at most \(limit) events"))
            case .empty:
                return .failure(Refusal(reason: "empty", status: .badRequest, code: "empty_batch", message: "the batch has no event lines"))
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
