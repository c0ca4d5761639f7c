import ChaperoneCore
import ChaperoneProxy
import Foundation
import Logging

// chaperone-spool-bench: the spool's cost on the proxy's request path, and filling a spool for the
// shipping-throughput run (bench/spool/run.sh).
//
//   chaperone-spool-bench latency DIR [EVENTS] [SYNC]   time each Spool.write (what an exchange waits for)
//   chaperone-spool-bench fill DIR EVENTS               write EVENTS events into a spool, then exit
//
// Events are shaped like the proxy's llm.request/llm.response pairs, about 1.5 KB each.

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: chaperone-spool-bench latency|fill DIR [EVENTS] [always|interval|never]\n".utf8))
    exit(2)
}
let mode = arguments[1]
let directory = arguments[2]
let events = arguments.count > 3 ? Int(arguments[3]) ?? 100_000 : 100_000
var settings = ProxyConfiguration.Spool()
settings.directory = directory
settings.maxBytes = 8 << 30
if arguments.count > 4, let sync = ProxyConfiguration.Spool.Sync(rawValue: arguments[4]) { settings.sync = sync }
let logger = Logger(label: "spool-bench")

func sampleEvent(_ i: Int) -> AuditEvent {
    let prompt = "Refactor the function below so that it streams its results instead of collecting them; keep the public signature. " + String(repeating: "let value = compute(index) // \(i)\n", count: 24)
    return AuditEvent(
        kind: i % 2 == 0 ? .llmRequest : .llmResponse, sessionID: "bench-session", exchangeID: "exchange-\(i / 2)", source: .init(namespace: "agents", pod: "agent-0"),
        http: .init(method: "POST", upstream: "openai", path: "/v1/chat/completions", status: i % 2 == 0 ? nil : 200, bytesIn: 1800, bytesOut: 900),
        content: .init(messages: [.init(role: "user", content: prompt)]),
        outcome: i % 2 == 0 ? nil : .completed)
}

// The events are sealed by a trail with no sinks first, so only the spool's write is timed.
let sealer = AuditTrail(sinks: [], logger: logger)
var records: [AuditRecord] = []
records.reserveCapacity(events)
for i in 0..<events { records.append(await sealer.record(sampleEvent(i))) }

let spool = try Spool(settings: settings, logger: logger)
_ = try spool.recover()

switch mode {
case "fill":
    for record in records { try spool.write(record) }
    try spool.close()
    print("filled \(directory) with \(events) events, \(spool.depth.bytes) bytes")
case "latency":
    // What runs beside the request path in the proxy: the interval flush and a shipper claiming
    // and acknowledging as fast as it can (lock contention included).
    let stop = ManagedAtomicFlag()
    let syncInterval = settings.syncInterval.duration
    let background = Thread {
        var lastSync = ContinuousClock.now
        while !stop.isSet {
            if let claim = spool.claim(maxEvents: 1000, maxBytes: 1 << 20) {
                spool.acknowledge(through: claim.lastSeq)
            } else {
                usleep(2000)
            }
            if ContinuousClock.now - lastSync >= syncInterval {
                spool.syncNow()
                lastSync = .now
            }
        }
    }
    background.start()
    var samples = [Double]()
    samples.reserveCapacity(events)
    let clock = ContinuousClock()
    for record in records {
        let started = clock.now
        try spool.write(record)
        let elapsed = clock.now - started
        samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
        // An agent's exchanges are not back to back: leave the flush room to run.
        if samples.count % 64 == 0 { usleep(200) }
    }
    stop.set()
    samples.sort()
    func percentile(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
    let bytes = records.reduce(0) { $0 + $1.canonicalJSON.count + 1 }
    print(String(format: "{\"events\":%d,\"sync\":\"%@\",\"mean_event_bytes\":%d,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}",
                 events, settings.sync.rawValue, bytes / events, percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999), samples.last ?? 0))
default:
    FileHandle.standardError.write(Data("unknown mode \(mode)\n".utf8))
    exit(2)
}

final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { self.lock.withLock { self.value } }
    func set() { self.lock.withLock { self.value = true } }
}
