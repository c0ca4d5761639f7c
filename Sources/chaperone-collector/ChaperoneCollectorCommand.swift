import ArgumentParser
import ChaperoneCollector
import ChaperoneCore
import Logging

@main
struct ChaperoneCollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaperone-collector",
        abstract: "Receives audit events from Chaperone sidecars, stores them tamper-evidently and serves them to chaperonectl.",
        discussion: """
            Sidecars POST batches of events (JSON lines, gzip allowed) to /v1/events with their projected \
            service-account token (audience chaperone-collector). The collector verifies the token, stamps the \
            verified pod identity on every event, checks each stream's hash chain, stores the batch durably \
            (SQLite by default, PostgreSQL at scale) and only then answers. Every stored event is a leaf of a \
            Merkle log whose signed checkpoints `chaperonectl verify` checks.

            stdout carries the live audit trail: one JSON line per stored event, and each signed checkpoint. \
            Operational logs go to stderr.
            """,
        version: ChaperoneCollectorVersion.current
    )

    @Option(name: .long, help: "YAML configuration file (see docs/collector.md). Without it, the built-in defaults apply.")
    var config: String?

    @Option(name: .long, help: "API listen address HOST:PORT (overrides listen in the file). Default 0.0.0.0:8080.")
    var listen: String?

    @Option(name: .long, help: "Admin listen address HOST:PORT for /healthz, /readyz, /metrics. Default 0.0.0.0:8081.")
    var admin: String?

    @Option(name: .long, help: "SQLite data directory (overrides storage.data_directory).")
    var dataDirectory: String?

    @Flag(name: .long, help: "Validate the configuration and exit.")
    var checkConfig = false

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "json or text (operational logs, on stderr).")
    var logFormat: String = "json"

    func run() async throws {
        var configuration = CollectorConfiguration()
        do {
            if let config { configuration = try CollectorConfiguration.load(file: config) }
            if let listen { configuration.listen = try .init(parsing: listen, option: "--listen") }
            if let admin { configuration.admin = try .init(parsing: admin, option: "--admin") }
            if let dataDirectory { configuration.storage.dataDirectory = dataDirectory }
        } catch {
            throw ValidationError("\(error)")
        }
        if self.checkConfig {
            print("configuration OK")
            return
        }
        do {
            try JSONLogHandler.bootstrap(level: self.logLevel, format: self.logFormat)
        } catch {
            throw ValidationError("\(error)")
        }
        let logger = Logger(label: "chaperone-collector")
        try await CollectorApplication(configuration: configuration, logger: logger).run()
    }
}
