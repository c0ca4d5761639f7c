import ChaperoneAdmin
import ChaperoneMetrics
public import Prometheus

/// The collector's Prometheus metrics (`chaperone_collector_*`).
public struct CollectorMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let stored: Counter
    private let duplicates: Counter
    private let batches: Counter
    private let transactions: Counter
    private let batchDuration: DurationHistogram
    private let storageBytes: Gauge
    private let treeSize: Gauge
    private let searchBacklog: Gauge
    private let counters: LabelledCounters

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.counters = LabelledCounters(registry: registry, subsystem: "collector")
        self.stored = registry.makeCounter(descriptor: Self.descriptor("events_stored", unit: "total", "Events durably stored (new, not duplicates)."))
        self.duplicates = registry.makeCounter(descriptor: Self.descriptor("events_duplicate", unit: "total", "Events received again and acknowledged without storing."))
        self.batches = registry.makeCounter(descriptor: Self.descriptor("batches", unit: "total", "Batches committed."))
        self.transactions = registry.makeCounter(
            descriptor: Self.descriptor("transactions", unit: "total", "Write transactions that stored batches (batches_total / transactions_total is the average group size)."))
        self.batchDuration = registry.makeDurationHistogram(
            descriptor: Self.descriptor("batch_duration", unit: "seconds", "Time from a batch's request head to its commit."),
            labels: [],
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)])
        self.storageBytes = registry.makeGauge(descriptor: Self.descriptor("storage", unit: "bytes", "Size of the database on disk."))
        self.treeSize = registry.makeGauge(descriptor: Self.descriptor("log_tree_size", unit: "", "Leaves covered by the latest signed checkpoint."))
        self.searchBacklog = registry.makeGauge(
            descriptor: Self.descriptor("search_backlog", unit: "events", "Stored events whose text is not yet in the search index (PostgreSQL; always 0 on SQLite)."))
    }

    private static func descriptor(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "chaperone", subsystem: "collector", metricName: name, unitName: unit.isEmpty ? nil : unit, helpText: help)
    }

    func committed(stored: Int, duplicates: Int, duration: Duration) {
        self.stored.increment(by: Int64(stored))
        self.duplicates.increment(by: Int64(duplicates))
        self.batches.increment()
        self.batchDuration.record(duration)
    }

    func transaction() { self.transactions.increment() }

    /// A line refused inside an otherwise accepted batch.
    func rejectedEvents(_ count: Int) {
        guard count > 0 else { return }
        self.counters.increment("events_rejected", help: "Event lines refused (malformed, too large).", label: ("reason", "invalid"), by: Int64(count))
    }

    /// A whole request refused (401, 413, 415, 400, 503).
    func rejectedBatch(reason: String) {
        self.counters.increment("batches_rejected", help: "Ingest requests refused, by reason.", label: ("reason", reason))
    }

    func rejectedToken(_ reason: TokenRejection) {
        self.counters.increment("rejected_tokens", help: "Bearer tokens refused, by reason.", label: ("reason", reason.rawValue))
    }

    func integrityFinding(kind: String) {
        self.counters.increment("integrity_findings", help: "integrity.* events raised at ingest, by kind.", label: ("kind", kind))
    }

    /// An approval opened, voted on or ended, by what happened (`opened`, `approved`, `denied`, ...).
    func approval(_ step: String) {
        self.counters.increment("approvals", help: "Approval steps, by step (opened, voted, approved, denied, expired, cancelled).", label: ("step", step))
    }

    func notification(result: String) {
        self.counters.increment("approval_notifications", help: "Approval webhook notifications, by result (sent, failed).", label: ("result", result))
    }

    func storage(bytes: Int64) { self.storageBytes.set(Double(bytes)) }
    func checkpoint(size: Int64) { self.treeSize.set(Double(size)) }
    func searchBacklog(events: Int64) { self.searchBacklog.set(Double(events)) }
}
