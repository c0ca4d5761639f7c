import ChaperoneCore
import ChaperoneMasking
import ChaperoneMetrics
import NIOConcurrencyHelpers
public import Prometheus

/// The proxy's Prometheus metrics. Names follow `chaperone_proxy_<what>_<unit>`; label names are
/// the ones an operator filters by (`upstream`, `operation`, `status_class`, `outcome`, `reason`).
/// Handles are made once per label set and kept, so recording on the hot path is a dictionary
/// look-up and an atomic add.
public struct ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let activeStreams: Gauge
    private let spool: SpoolGauges
    private let shipAttempts: Counter
    private let shippedEvents: Counter
    private let duplicateEvents: Counter
    private let setAsideEvents: Counter
    private let droppedEvents: Counter
    private let backlogRefusals: Counter
    private let labelled: LabelledCounters

    private struct SpoolGauges {
        var events: Gauge
        var bytes: Gauge
        var oldestSeconds: Gauge
        var heldEvents: Gauge
    }
    private let cache = NIOLockedValueBox(Cache())

    private struct Route: Hashable {
        var upstream: String
        var operation: String
    }

    private struct Outcome: Hashable {
        var route: Route
        var statusClass: Int
        var outcome: String
    }

    private struct RouteHandles {
        var duration: DurationHistogram
        var timeToFirstByte: DurationHistogram
        var requestBytes: Counter
        var responseBytes: Counter
    }

    private struct Cache {
        var routes: [Route: RouteHandles] = [:]
        var requests: [Outcome: Counter] = [:]
        var auditEvents: [String: Counter] = [:]
        var findings: [String: Counter] = [:]
        var policyDecisions: [String: Counter] = [:]
        var upstreamErrors: [[String]: Counter] = [:]
    }

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.activeStreams = registry.makeGauge(descriptor: Self.descriptor(
            "active_streams", unit: "", "Exchanges whose response is being streamed to the agent right now."))
        self.spool = SpoolGauges(
            events: registry.makeGauge(descriptor: Self.descriptor(
                "spool_events", unit: "", "Audit events in the spool not yet acknowledged by the collector.")),
            bytes: registry.makeGauge(descriptor: Self.descriptor("spool", unit: "bytes", "Size of the spool's files.")),
            oldestSeconds: registry.makeGauge(descriptor: Self.descriptor(
                "spool_oldest_unshipped_age", unit: "seconds", "Age of the oldest audit event the collector has not acknowledged; 0 when none.")),
            heldEvents: registry.makeGauge(descriptor: Self.descriptor(
                "spool_held_events", unit: "", "Audit events the disk refused (full), held in memory until it takes them.")))
        self.shipAttempts = registry.makeCounter(descriptor: Self.descriptor(
            "ship_attempts", unit: "total", "Batches sent to the collector, retries included."))
        self.shippedEvents = registry.makeCounter(descriptor: Self.descriptor(
            "shipped_events", unit: "total", "Audit events the collector acknowledged as stored."))
        self.duplicateEvents = registry.makeCounter(descriptor: Self.descriptor(
            "shipped_duplicate_events", unit: "total", "Audit events the collector already had (a retry after a lost answer)."))
        self.setAsideEvents = registry.makeCounter(descriptor: Self.descriptor(
            "ship_rejected_events", unit: "total", "Audit events the collector refused; kept in the spool's rejected.jsonl."))
        self.droppedEvents = registry.makeCounter(descriptor: Self.descriptor(
            "spool_dropped_events", unit: "total", "Audit events deleted unshipped by overflow drop-oldest (each range is an integrity.gap event)."))
        self.labelled = LabelledCounters(registry: registry, subsystem: "proxy")
        self.backlogRefusals = registry.makeCounter(descriptor: Self.descriptor(
            "audit_backlog_refusals", unit: "total", "Requests refused with 503 because the spool was full (overflow fail-closed) or the disk refused writes."))
    }

    func spoolChanged(_ depth: Spool.Depth) {
        self.spool.events.set(Int64(depth.events))
        self.spool.bytes.set(Int64(depth.bytes))
        self.spool.heldEvents.set(Int64(depth.heldEvents))
        self.spoolAge(depth.oldestMicros)
    }

    func spoolAge(_ oldestMicros: Int64?) {
        let age = oldestMicros.map { max(0, Double(WallClock.nowMicroseconds() - $0) / 1_000_000) } ?? 0
        self.spool.oldestSeconds.set(age)
    }

    func shipAttempted() { self.shipAttempts.increment() }

    func shipFailed(reason: String) {
        self.labelled.increment(
            "ship_failures", help: "Batches the collector did not acknowledge, by reason (connect, timeout, http_5xx, unauthenticated, ...).",
            label: ("reason", reason))
    }

    func shipped(stored: Int, duplicates: Int, rejected: Int) {
        self.shippedEvents.increment(by: Int64(stored))
        self.duplicateEvents.increment(by: Int64(duplicates))
        self.setAsideEvents.increment(by: Int64(rejected))
    }

    func spoolDropped(events: Int) { self.droppedEvents.increment(by: Int64(events)) }
    func backlogRefused() { self.backlogRefusals.increment() }

    private static func descriptor(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "chaperone", subsystem: "proxy", metricName: name, unitName: unit, helpText: help)
    }

    /// One finished exchange.
    func exchangeFinished(
        upstream: String, operation: String, status: Int, outcome: String,
        duration: Duration, ttfb: Duration?, bytesIn: Int, bytesOut: Int
    ) {
        let route = Route(upstream: upstream, operation: operation)
        let key = Outcome(route: route, statusClass: status / 100, outcome: outcome)
        let (handles, requests) = self.cache.withLockedValue { cache in
            (cache.routes[route] ?? self.makeRouteHandles(route, in: &cache), cache.requests[key] ?? self.makeRequestCounter(key, in: &cache))
        }
        requests.increment()
        handles.duration.record(duration)
        if let ttfb { handles.timeToFirstByte.record(ttfb) }
        handles.requestBytes.increment(by: Int64(bytesIn))
        handles.responseBytes.increment(by: Int64(bytesOut))
    }

    private func makeRouteHandles(_ route: Route, in cache: inout Cache) -> RouteHandles {
        let labels = [("upstream", route.upstream), ("operation", route.operation)]
        let handles = RouteHandles(
            duration: self.registry.makeDurationHistogram(
                descriptor: Self.descriptor("request_duration", unit: "seconds", "Whole exchange, request head to last response byte."),
                labels: labels, buckets: Self.latencyBuckets),
            timeToFirstByte: self.registry.makeDurationHistogram(
                descriptor: Self.descriptor("time_to_first_byte", unit: "seconds", "Request head to the upstream's response head."),
                labels: labels, buckets: Self.latencyBuckets),
            requestBytes: self.registry.makeCounter(
                descriptor: Self.descriptor("request_bytes", unit: "total", "Request body bytes received from agents."), labels: labels),
            responseBytes: self.registry.makeCounter(
                descriptor: Self.descriptor("response_bytes", unit: "total", "Response body bytes sent to agents."), labels: labels)
        )
        cache.routes[route] = handles
        return handles
    }

    private func makeRequestCounter(_ key: Outcome, in cache: inout Cache) -> Counter {
        let counter = self.registry.makeCounter(
            descriptor: Self.descriptor("requests", unit: "total", "Requests handled, by upstream, operation, HTTP status class and outcome."),
            labels: [("upstream", key.route.upstream), ("operation", key.route.operation),
                     ("status_class", "\(key.statusClass)xx"), ("outcome", key.outcome)]
        )
        cache.requests[key] = counter
        return counter
    }

    func upstreamError(upstream: String, reason: String) {
        let counter = self.cache.withLockedValue { cache in
            if let counter = cache.upstreamErrors[[upstream, reason]] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: Self.descriptor("upstream_errors", unit: "total", "Upstream failures: connect, tls, timeout, reset."),
                labels: [("upstream", upstream), ("reason", reason)])
            cache.upstreamErrors[[upstream, reason]] = counter
            return counter
        }
        counter.increment()
    }

    /// Secrets masked, by detector and direction (`chaperone_proxy_findings_total`).
    func findingsRecorded(_ findings: [ChaperoneMasking.Finding], direction: String) {
        for finding in findings {
            let key = finding.detector + "|" + direction
            let counter = self.cache.withLockedValue { cache in
                if let counter = cache.findings[key] { return counter }
                let counter = self.registry.makeCounter(
                    descriptor: Self.descriptor("findings", unit: "total", "Secrets masked, by detector and direction."),
                    labels: [("detector", finding.detector), ("direction", direction)])
                cache.findings[key] = counter
                return counter
            }
            counter.increment()
        }
    }

    /// Policy decisions other than a plain allow, by action (`chaperone_proxy_policy_decisions_total`).
    func policyDecided(action: String) {
        let counter = self.cache.withLockedValue { cache in
            if let counter = cache.policyDecisions[action] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: Self.descriptor("policy_decisions", unit: "total", "Requests a policy rule matched, by resulting action."),
                labels: [("action", action)])
            cache.policyDecisions[action] = counter
            return counter
        }
        counter.increment()
    }

    func auditEventRecorded(kind: String) {
        let counter = self.cache.withLockedValue { cache in
            if let counter = cache.auditEvents[kind] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: Self.descriptor("audit_events", unit: "total", "Audit events recorded, by kind."), labels: [("kind", kind)])
            cache.auditEvents[kind] = counter
            return counter
        }
        counter.increment()
    }

    func streamStarted() { self.activeStreams.increment() }
    func streamEnded() { self.activeStreams.decrement() }
}
