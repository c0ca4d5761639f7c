public import Prometheus

/// The proxy's Prometheus metrics. Names follow `chaperone_proxy_<what>_<unit>`; label names are
/// the ones an operator filters by (`upstream`, `operation`, `status_class`, `reason`).
public struct ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let activeStreams: Gauge
    private let activeConnections: Gauge

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.activeStreams = registry.makeGauge(descriptor: .init(
            namespace: "chaperone", subsystem: "proxy", metricName: "active_streams", unitName: "",
            helpText: "Exchanges whose response is being streamed to the agent right now."))
        self.activeConnections = registry.makeGauge(descriptor: .init(
            namespace: "chaperone", subsystem: "proxy", metricName: "active_connections", unitName: "",
            helpText: "Open connections from agents."))
    }

    /// One finished exchange.
    func exchangeFinished(
        upstream: String, operation: String, status: Int, outcome: String,
        duration: Duration, ttfb: Duration?, bytesIn: Int, bytesOut: Int
    ) {
        let labels = [("upstream", upstream), ("operation", operation)]
        self.registry.makeCounter(
            descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "requests", unitName: "total",
                              helpText: "Requests handled, by upstream, operation, HTTP status class and outcome."),
            labels: labels + [("status_class", "\(status / 100)xx"), ("outcome", outcome)]
        ).increment()
        self.registry.makeDurationHistogram(
            descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "request_duration", unitName: "seconds",
                              helpText: "Whole exchange, request head to last response byte."),
            labels: labels, buckets: Self.latencyBuckets
        ).record(duration)
        if let ttfb {
            self.registry.makeDurationHistogram(
                descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "time_to_first_byte", unitName: "seconds",
                                  helpText: "Request head to the upstream's response head."),
                labels: labels, buckets: Self.latencyBuckets
            ).record(ttfb)
        }
        self.registry.makeCounter(
            descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "request_bytes", unitName: "total",
                              helpText: "Request body bytes received from agents."),
            labels: labels
        ).increment(by: Int64(bytesIn))
        self.registry.makeCounter(
            descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "response_bytes", unitName: "total",
                              helpText: "Response body bytes sent to agents."),
            labels: labels
        ).increment(by: Int64(bytesOut))
    }

    func upstreamError(upstream: String, reason: String) {
        self.registry.makeCounter(
            descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "upstream_errors", unitName: "total",
                              helpText: "Upstream failures: connect, tls, timeout, reset."),
            labels: [("upstream", upstream), ("reason", reason)]
        ).increment()
    }

    func auditEventRecorded(kind: String) {
        self.registry.makeCounter(
            descriptor: .init(namespace: "chaperone", subsystem: "proxy", metricName: "audit_events", unitName: "total",
                              helpText: "Audit events recorded, by kind."),
            labels: [("kind", kind)]
        ).increment()
    }

    func streamStarted() { self.activeStreams.increment() }
    func streamEnded() { self.activeStreams.decrement() }
    func connectionOpened() { self.activeConnections.increment() }
    func connectionClosed() { self.activeConnections.decrement() }
}
