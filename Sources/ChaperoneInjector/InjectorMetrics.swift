import ChaperoneAdmin
import ChaperoneMetrics
public import Prometheus

/// The injector's Prometheus metrics (`chaperone_injector_*`).
public struct InjectorMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let admissions: [AdmissionDecision.Outcome: Counter]
    private let duration: DurationHistogram
    private let certificateNotAfter: Gauge
    private let counters: LabelledCounters

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .microseconds(750), .milliseconds(1), .microseconds(1500), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.counters = LabelledCounters(registry: registry, subsystem: "injector")
        var admissions: [AdmissionDecision.Outcome: Counter] = [:]
        for outcome in AdmissionDecision.Outcome.allCases {
            admissions[outcome] = registry.makeCounter(
                descriptor: Self.descriptor("admissions", unit: "total", "AdmissionReviews answered, by outcome (injected, skipped, denied, failed)."),
                labels: [("outcome", outcome.rawValue)])
        }
        self.admissions = admissions
        self.duration = registry.makeDurationHistogram(
            descriptor: Self.descriptor("admission_duration", unit: "seconds", "Time from the request head to the answer, per AdmissionReview."),
            labels: [], buckets: Self.latencyBuckets)
        self.certificateNotAfter = registry.makeGauge(
            descriptor: Self.descriptor("certificate_not_after", unit: "timestamp_seconds", "Expiry (Unix time) of the serving certificate in use."),
            labels: [])
    }

    private static func descriptor(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "chaperone", subsystem: "injector", metricName: name, unitName: unit, helpText: help)
    }

    func admitted(_ outcome: AdmissionDecision.Outcome, duration: Duration) {
        self.admissions[outcome]?.increment()
        self.duration.record(duration)
    }

    /// A request refused before it became an AdmissionReview (not JSON, too large, wrong path).
    func rejected(reason: String) {
        self.counters.increment("rejected_requests", help: "HTTP requests refused before admission, by reason.", label: ("reason", reason))
    }

    /// One attempt to publish the CA into the webhook configuration (self-signed mode).
    func caBundleSync(outcome: String) {
        self.counters.increment("ca_bundle_syncs", help: "caBundle synchronisations with the API server, by outcome (unchanged, patched, error).", label: ("outcome", outcome))
    }

    func certificateLoaded(notAfterUnixSeconds: Double) {
        self.certificateNotAfter.set(notAfterUnixSeconds)
    }
}
