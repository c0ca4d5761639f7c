public import ChaperoneCore
import ChaperoneMasking
import Foundation
import Logging
import NIOConcurrencyHelpers

/// What the injector hands every sidecar besides its pod's identity: the proxy configuration,
/// the policy rules and the CA that signs the collector's certificate. A sidecar runs in the
/// agent's namespace, where the installation's ConfigMap cannot be mounted, so they travel as
/// environment variables, which nobody can change once the pod exists.
public struct SidecarHandover: Sendable, Equatable {
    /// YAML for `CHAPERONE_CONFIG`.
    public var configuration: String?
    /// YAML for `CHAPERONE_POLICY`.
    public var policy: String?
    /// PEM for `CHAPERONE_COLLECTOR_CA`.
    public var collectorCA: String?

    public init(configuration: String? = nil, policy: String? = nil, collectorCA: String? = nil) {
        self.configuration = configuration
        self.policy = policy
        self.collectorCA = collectorCA
    }

    /// The environment entries, in a fixed order.
    public var environment: [(name: String, value: String)] {
        var entries: [(name: String, value: String)] = []
        if let configuration { entries.append((ProxyConfiguration.Environment.configuration, configuration)) }
        if let policy { entries.append((ProxyConfiguration.Environment.policy, policy)) }
        if let collectorCA { entries.append((ProxyConfiguration.Environment.collectorCA, collectorCA)) }
        return entries
    }

    /// Reads the files `sidecar` names and checks them as the proxy will: a configuration or
    /// policy the proxy would refuse must stop the injector (or be ignored on reload), not every
    /// agent pod's sidecar. `ownCA` is the injector's CA in self-signed mode, used when no
    /// `collector_ca_file` is set.
    public static func read(_ sidecar: InjectorConfiguration.Sidecar, ownCA: String?) throws(ConfigError) -> SidecarHandover {
        let handover = try Self.contents(sidecar, ownCA: ownCA)
        try handover.validate(sidecar)
        return handover
    }

    /// The files' text, unchecked.
    static func contents(_ sidecar: InjectorConfiguration.Sidecar, ownCA: String?) throws(ConfigError) -> SidecarHandover {
        SidecarHandover(
            configuration: try sidecar.configFile.map { file throws(ConfigError) in try Self.text(file, field: "sidecar.config_file") },
            policy: try sidecar.policyFile.map { file throws(ConfigError) in try Self.text(file, field: "sidecar.policy_file") },
            collectorCA: try sidecar.collectorCAFile.map { file throws(ConfigError) in try Self.text(file, field: "sidecar.collector_ca_file") } ?? ownCA)
    }

    /// Errors name the file each text came from.
    func validate(_ sidecar: InjectorConfiguration.Sidecar) throws(ConfigError) {
        if let text = self.configuration, let file = sidecar.configFile {
            let proxy = try ConfigNode.parse(text, source: file, ProxyConfiguration.parse(yaml:))
            if proxy.policy.file != nil {
                throw ConfigError(file: file, field: "policy.file", message: "the sidecar cannot read files of the injector's; put the rules in the file sidecar.policy_file names")
            }
            if let bundle = proxy.collector?.caBundle {
                throw ConfigError(file: file, field: "collector.ca_bundle", message: "\(bundle) does not exist in the sidecar; set the injector's sidecar.collector_ca_file instead")
            }
            for (name, upstream) in proxy.upstreams.sorted(by: { $0.key < $1.key }) {
                guard let credential = upstream.credential?.file, credential.hasPrefix("/var/run/secrets/chaperone/") else { continue }
                let expected = "/var/run/secrets/chaperone/\(name)/api-key"
                guard credential == expected, sidecar.upstreams.contains(name) else {
                    throw ConfigError(
                        file: file, field: "upstreams.\(name).credential.file",
                        message: "the injector mounts provider keys only at /var/run/secrets/chaperone/<upstream>/api-key for sidecar.upstreams (\(sidecar.upstreams.joined(separator: ", "))); add \(name) there or use \(expected)")
                }
            }
        }
        if let text = self.policy, let file = sidecar.policyFile {
            _ = try Policy.parse(yaml: text, file: file)
        }
        if let pem = self.collectorCA, let file = sidecar.collectorCAFile {
            try ProxyConfiguration.Environment.checkCertificates(pem, source: file)
        }
    }

    private static func text(_ file: String, field: String) throws(ConfigError) -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(field: field, message: "cannot read \(file)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The injector serving admissions, rebuilt whenever the handover changes (a ConfigMap update
/// reaches the mounted files within a minute or so; pods created from then on get it).
final class SidecarInjectorSource: Sendable {
    private struct State {
        var injector: SidecarInjector
        /// The files as last read, valid or not: unchanged files are neither parsed nor reported again.
        var lastRead: SidecarHandover
    }

    private let state: NIOLockedValueBox<State>
    let configuration: InjectorConfiguration

    init(configuration: InjectorConfiguration, handover: SidecarHandover) {
        self.configuration = configuration
        self.state = .init(State(injector: SidecarInjector(configuration: configuration, handover: handover), lastRead: handover))
    }

    var injector: SidecarInjector { self.state.withLockedValue { $0.injector } }

    /// Re-reads the files; a change replaces the injector, a bad file keeps the previous one.
    func refresh(ownCA: String?, logger: Logger) {
        let sidecar = self.configuration.sidecar
        do {
            let read = try SidecarHandover.contents(sidecar, ownCA: ownCA)
            let changed = self.state.withLockedValue { state in
                defer { state.lastRead = read }
                return state.lastRead != read
            }
            guard changed else { return }
            try read.validate(sidecar)
            self.state.withLockedValue { $0.injector = SidecarInjector(configuration: self.configuration, handover: read) }
            Self.log(read, logger: logger, message: "sidecar.handover_changed")
        } catch {
            logger.warning("sidecar.handover_reload_failed", metadata: [
                "error": "\(error)", "effect": "new pods get the previous sidecar configuration",
            ])
        }
    }

    static func log(_ handover: SidecarHandover, logger: Logger, message: Logger.Message) {
        logger.info(message, metadata: [
            "configuration": "\(handover.configuration.map { "\($0.utf8.count) bytes" } ?? "embedded defaults")",
            "policy": "\(handover.policy.map { "\($0.utf8.count) bytes" } ?? "built-in pack only")",
            "collector_ca": "\(handover.collectorCA == nil ? "system trust store" : "set")",
        ])
    }
}
