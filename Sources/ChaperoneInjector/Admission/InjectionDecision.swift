/// What the injector did with one AdmissionReview, and why. `outcome` is the metric label.
public struct AdmissionDecision: Sendable {
    public enum Outcome: String, Sendable, CaseIterable {
        /// The sidecar was added (the answer carries a patch).
        case injected
        /// Admitted unchanged on purpose: not a pod CREATE, excluded namespace, opted out,
        /// hostNetwork, already injected.
        case skipped
        /// Refused because of the pod itself (a bad `chaperone.io/*` annotation, a reserved name,
        /// an app container reaching for the provider-key Secret).
        case denied
        /// The injector could not do its job (unreadable pod, encoding failure); answered per
        /// `failure_mode`.
        case failed
    }

    public var outcome: Outcome
    /// One phrase for logs: why skipped, denied or failed; what was injected.
    public var reason: String
    public var allowed: Bool
    public var statusCode: Int?
    public var message: String?
    public var patch: [UInt8]?
    public var warnings: [String] = []

    static func skipped(_ reason: String, warnings: [String] = []) -> Self {
        .init(outcome: .skipped, reason: reason, allowed: true, warnings: warnings)
    }

    static func denied(_ message: String, code: Int = 400) -> Self {
        .init(outcome: .denied, reason: message, allowed: false, statusCode: code, message: "chaperone-injector: \(message)")
    }

    static func failed(_ reason: String, mode: InjectorConfiguration.FailureMode, pod: String) -> Self {
        switch mode {
        case .deny:
            return .init(
                outcome: .failed, reason: reason, allowed: false, statusCode: 500,
                message: "chaperone-injector could not add the audit sidecar to pod \(pod): \(reason) (failure_mode: deny)"
            )
        case .allow:
            return .init(
                outcome: .failed, reason: reason, allowed: true,
                warnings: ["chaperone-injector: pod \(pod) admitted WITHOUT the audit sidecar: \(reason)"]
            )
        }
    }
}

/// A problem with the pod as written, reported to its author (deny, 400).
struct PodRejection: Error {
    var message: String
    var code = 400
}
