import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat

/// `POST /mutate`: one AdmissionReview in, one out. Bodies that are not an AdmissionReview v1
/// get a 4xx naming the problem (the API server then applies the webhook's failurePolicy); a
/// review gets an answer built by `SidecarInjector`, logged and counted.
struct AdmissionEndpoint: Sendable {
    let injectors: SidecarInjectorSource
    let metrics: InjectorMetrics
    let logger: Logger

    static let path = "/mutate"

    func respond(to request: Request) async -> Response {
        let started = ContinuousClock.now
        let limit = self.injectors.configuration.maxRequestBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            return self.refuse(.contentTooLarge, "request body of \(length) bytes exceeds the \(limit)-byte limit", reason: "too_large")
        }
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            return self.refuse(.unsupportedMediaType, "Content-Type must be application/json, not \(type)", reason: "content_type")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return self.refuse(.contentTooLarge, "request body exceeds the \(limit)-byte limit", reason: "too_large")
        } catch {
            return self.refuse(.badRequest, "could not read the request body: \(error)", reason: "read_error")
        }
        let review: AdmissionReviewRequest
        do {
            review = try JSONDecoder().decode(AdmissionReviewRequest.self, from: body)
        } catch {
            let detail = error is DecodingError ? DecodingFailure.describe(error) : "\(error)"
            return self.refuse(.badRequest, "not an AdmissionReview: \(detail)", reason: "malformed")
        }
        guard review.apiVersion == AdmissionReviewRequest.apiVersion, review.kind == "AdmissionReview" else {
            return self.refuse(
                .badRequest, "expected apiVersion \(AdmissionReviewRequest.apiVersion) kind AdmissionReview, got \(review.apiVersion) \(review.kind); set admissionReviewVersions: [v1]",
                reason: "version")
        }

        let decision = self.injectors.injector.review(review.request)
        let answer = AdmissionReviewResponse(
            apiVersion: review.apiVersion,
            response: .init(
                uid: review.request.uid,
                allowed: decision.allowed,
                status: decision.message.map { .init(code: decision.statusCode ?? 400, message: $0) },
                patch: decision.patch.map { Data($0) },
                patchType: decision.patch == nil ? nil : "JSONPatch",
                warnings: decision.warnings.isEmpty ? nil : decision.warnings
            )
        )
        let encoded: Data
        do {
            encoded = try JSONEncoder().encode(answer)
        } catch {
            return self.refuse(.internalServerError, "could not encode the answer: \(error)", reason: "encode")
        }
        let elapsed = ContinuousClock.now - started
        self.metrics.admitted(decision.outcome, duration: elapsed)
        let pod = review.request.object
        self.logger.log(level: decision.outcome == .skipped ? .debug : .info, "admission", metadata: [
            "uid": "\(review.request.uid)",
            "namespace": "\(review.request.namespace ?? pod?.metadata?.namespace ?? "")",
            "pod": "\(pod?.displayName ?? review.request.name ?? "")",
            "outcome": "\(decision.outcome.rawValue)",
            "allowed": "\(decision.allowed)",
            "reason": "\(decision.reason)",
            "warnings": "\(decision.warnings.count)",
            "dry_run": "\(review.request.dryRun ?? false)",
            "duration_us": "\(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)",
        ])
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: encoded)))
    }

    private func refuse(_ status: HTTPResponse.Status, _ message: String, reason: String) -> Response {
        self.metrics.rejected(reason: reason)
        self.logger.warning("admission.refused", metadata: ["status": "\(status.code)", "reason": "\(reason)", "error": "\(message)"])
        let body = (try? JSONEncoder().encode(["error": message])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: body)))
    }
}
