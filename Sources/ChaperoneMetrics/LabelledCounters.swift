import NIOConcurrencyHelpers
public import Prometheus

/// Counters of one `chaperone_<subsystem>_…_total` family with one label each, made on first use,
/// for metrics whose label values are not all known up front (a refusal reason, a finding kind).
public struct LabelledCounters: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let subsystem: String
    private let counters = NIOLockedValueBox([String: Counter]())

    public init(registry: PrometheusCollectorRegistry, subsystem: String) {
        self.registry = registry
        self.subsystem = subsystem
    }

    public func increment(_ name: String, help: String, label: (String, String), by amount: Int64 = 1) {
        let counter = self.counters.withLockedValue { counters in
            let key = name + "|" + label.0 + "|" + label.1
            if let counter = counters[key] { return counter }
            let descriptor = MetricNameDescriptor(namespace: "chaperone", subsystem: self.subsystem, metricName: name, unitName: "total", helpText: help)
            let counter = self.registry.makeCounter(descriptor: descriptor, labels: [label])
            counters[key] = counter
            return counter
        }
        counter.increment(by: amount)
    }
}
