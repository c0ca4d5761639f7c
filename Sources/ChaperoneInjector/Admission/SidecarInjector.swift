import Foundation
import NIOConcurrencyHelpers

/// Decides whether a pod gets the sidecar and builds the patch that adds it. Pure: no I/O, so
/// every rule is tested on AdmissionReview fixtures without a server.
public struct SidecarInjector: Sendable {
    public let configuration: InjectorConfiguration

    public static let sidecarName = "chaperone-proxy"
    public static let statusAnnotation = "chaperone.io/status"
    public static let injectLabel = "chaperone.io/inject"
    static let credentialsVolume = "chaperone-credentials"
    static let spoolVolume = "chaperone-spool"
    static let credentialsPath = "/var/run/secrets/chaperone"
    static let spoolPath = "/var/run/chaperone"

    /// Per-pod knobs. Anything that would change what the sidecar is (its image, its command)
    /// is deliberately not a pod annotation: the pod's author must not choose the program that
    /// holds the provider keys.
    enum Annotation {
        static let agentContainer = "chaperone.io/agent-container"
        static let nativeSidecar = "chaperone.io/native-sidecar"
        static let initiator = "chaperone.io/initiator"
        nonisolated(unsafe) static let resources: [(annotation: String, keyPath: WritableKeyPath<InjectorConfiguration.Resources, String?>)] = [
            ("chaperone.io/proxy-cpu-request", \.cpuRequest),
            ("chaperone.io/proxy-memory-request", \.memoryRequest),
            ("chaperone.io/proxy-cpu-limit", \.cpuLimit),
            ("chaperone.io/proxy-memory-limit", \.memoryLimit),
        ]
        static let defaultContainer = "kubectl.kubernetes.io/default-container"
    }

    /// Service meshes whose proxies may already be in the pod, and the ports they hold.
    struct Mesh {
        var name: String
        var container: String
        var annotation: String
        var reservedPorts: Set<Int>

        static let known: [Mesh] = [
            Mesh(name: "Istio", container: "istio-proxy", annotation: "sidecar.istio.io/status",
                 reservedPorts: [15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090]),
            Mesh(name: "Linkerd", container: "linkerd-proxy", annotation: "linkerd.io/proxy-version",
                 reservedPorts: [4140, 4143, 4190, 4191]),
        ]
    }

    /// CHAPERONE_CONFIG, CHAPERONE_POLICY and CHAPERONE_COLLECTOR_CA for the sidecar.
    private let handover: [(name: String, value: String)]
    /// Encoded once: the volumes and each agent env entry are the same for every pod.
    private let volumesJSON: [[UInt8]]
    private let volumeNames: [String]
    private let environmentJSON: [String: [UInt8]]
    /// The encoded sidecar per (agent, mode, resources, admin port): pods of one workload share it.
    private let sidecars = NIOLockedValueBox([SidecarKey: [UInt8]]())

    private struct SidecarKey: Hashable {
        var native: Bool
        var agent: String
        var resources: InjectorConfiguration.Resources
        var adminPort: Int
    }

    public init(configuration: InjectorConfiguration, handover: SidecarHandover = .init()) {
        self.configuration = configuration
        self.handover = handover.environment
        let volumes = Self.volumes(configuration.sidecar)
        // Encoding plain value types cannot fail; an empty fragment would only come from a bug.
        self.volumesJSON = volumes.map { (try? JSONFragment.encode($0)) ?? [] }
        self.volumeNames = volumes.map(\.name)
        var environment: [String: [UInt8]] = [:]
        for (name, value) in configuration.sidecar.agentEnvironment {
            environment[name] = (try? JSONFragment.encode(EnvVarSpec.literal(name, value))) ?? []
        }
        self.environmentJSON = environment
    }

    public func review(_ request: AdmissionReviewRequest.Request) -> AdmissionDecision {
        guard request.isPodCreate else {
            return .skipped("not a pod CREATE (\(request.operation) \(request.resource.resource))")
        }
        guard let pod = request.object, let spec = pod.spec else {
            let why = request.objectError.map { "the pod could not be read: \($0)" } ?? "the request carries no pod spec"
            return .failed(why, mode: self.configuration.failureMode, pod: request.name ?? "(unnamed)")
        }
        let namespace = request.namespace ?? pod.metadata?.namespace ?? ""
        guard !namespace.isEmpty else {
            return .failed("the request names no namespace", mode: self.configuration.failureMode, pod: pod.displayName)
        }
        if self.configuration.neverInjected.contains(namespace) {
            return .skipped("namespace \(namespace) is never injected")
        }
        if let found = self.providerKeyReader(pod) {
            return .denied("\(found.reader) references Secret \(found.secret); only the chaperone-proxy sidecar may read provider keys", code: 403)
        }
        if pod.labels[Self.injectLabel] == "false" {
            return .skipped("pod opted out (\(Self.injectLabel)=false)")
        }
        if spec.hostNetwork == true {
            return .skipped("hostNetwork pod", warnings: [
                "chaperone-injector: hostNetwork pods are not injected; this pod's LLM traffic is not audited",
            ])
        }
        if pod.annotations[Self.statusAnnotation] != nil {
            return .skipped("already injected (\(Self.statusAnnotation) present)")
        }
        if (pod.containers + pod.initContainers).contains(where: { $0.name == Self.sidecarName }) {
            return .skipped("already has a \(Self.sidecarName) container", warnings: [
                "chaperone-injector: pod already has a container named \(Self.sidecarName) but no \(Self.statusAnnotation); left unchanged",
            ])
        }
        guard !spec.containers.isEmpty else {
            return .failed("the pod has no containers", mode: self.configuration.failureMode, pod: pod.displayName)
        }
        do {
            var mutation = try self.mutation(of: pod, spec: spec)
            mutation.decision.patch = mutation.patch.encoded()
            return mutation.decision
        } catch let rejection as PodRejection {
            return .denied(rejection.message, code: rejection.code)
        } catch {
            return .failed("\(error)", mode: self.configuration.failureMode, pod: pod.displayName)
        }
    }

    /// The first container (or volume) of the pod itself that would see the provider keys or the
    /// fingerprint key (with which an agent could test guesses against placeholders).
    private func providerKeyReader(_ pod: PodView) -> (reader: String, secret: String)? {
        let secrets: Set<String> = [self.configuration.sidecar.providerKeysSecret, self.configuration.sidecar.fingerprintKeySecret]
        for container in pod.containers + pod.initContainers where container.name != Self.sidecarName {
            for name in (container.env ?? []).compactMap({ $0.valueFrom?.secretKeyRef?.name }) + (container.envFrom ?? []).compactMap({ $0.secretRef?.name })
            where secrets.contains(name) {
                return ("container \(container.name)", name)
            }
        }
        for volume in pod.spec?.volumes ?? [] where volume.name != Self.credentialsVolume {
            for name in [volume.secret?.secretName].compactMap({ $0 }) + (volume.projected?.sources ?? []).compactMap({ $0.secret?.name })
            where secrets.contains(name) {
                return ("volume \(volume.name)", name)
            }
        }
        return nil
    }

    private struct Mutation {
        var patch = JSONPatch()
        var decision: AdmissionDecision
    }

    private func mutation(of pod: PodView, spec: PodView.Spec) throws -> Mutation {
        let annotations = pod.annotations
        let sidecar = self.configuration.sidecar
        var warnings: [String] = []

        let agent = try self.agentContainer(pod)
        let native = try self.flag(annotations, Annotation.nativeSidecar) ?? sidecar.native
        var resources = sidecar.resources
        for (annotation, keyPath) in Annotation.resources {
            guard let value = annotations[annotation] else { continue }
            guard ResourceQuantity.isValid(value) else {
                throw PodRejection(message: "annotation \(annotation): '\(value)' is not a Kubernetes quantity (e.g. 100m, 128Mi)")
            }
            resources[keyPath: keyPath] = value
        }
        for volume in spec.volumes ?? [] where [Self.credentialsVolume, Self.spoolVolume].contains(volume.name) {
            throw PodRejection(message: "volume name \(volume.name) is reserved for the chaperone-proxy sidecar")
        }

        var adminPort = sidecar.adminPort
        let names = Set((pod.containers + pod.initContainers).map(\.name))
        for mesh in Mesh.known where names.contains(mesh.container) || annotations[mesh.annotation] != nil {
            if mesh.reservedPorts.contains(adminPort) {
                adminPort += 100
            }
            warnings.append("chaperone-injector: \(mesh.name) proxy present; chaperone-proxy added beside it (admin port \(adminPort))")
        }
        if !native, spec.restartPolicy == "Never" || spec.restartPolicy == "OnFailure" {
            warnings.append(
                "chaperone-injector: run-to-completion pod with a classic sidecar: it will not exit on its own; use native sidecars (Kubernetes >= 1.29)"
            )
        }
        if spec.shareProcessNamespace == true {
            warnings.append("chaperone-injector: shareProcessNamespace lets app containers inspect the sidecar; provider keys may be exposed")
        }

        var mutation = Mutation(decision: .init(outcome: .injected, reason: "", allowed: true))

        // App containers first, while their indices are still the pod's own.
        var configured: [String] = []
        for (index, container) in spec.containers.enumerated() {
            let present = Set((container.env ?? []).map(\.name))
            let added = sidecar.agentEnvironment.filter { !present.contains($0.name) }.compactMap { self.environmentJSON[$0.name] }
            let kept = sidecar.agentEnvironment.map(\.name).filter(present.contains)
            if !kept.isEmpty {
                warnings.append("chaperone-injector: container \(container.name) sets \(kept.joined(separator: ", ")) itself; left unchanged")
            }
            if !(container.envFrom ?? []).isEmpty, !added.isEmpty {
                warnings.append("chaperone-injector: container \(container.name) uses envFrom; Chaperone's env takes precedence over the same names")
            }
            mutation.patch.append(added, to: ["spec", "containers", String(index), "env"], exists: container.env != nil)
            if !added.isEmpty { configured.append(container.name) }
        }

        mutation.patch.append(self.volumesJSON, to: ["spec", "volumes"], exists: spec.volumes != nil)

        let container = try self.encodedSidecar(SidecarKey(native: native, agent: agent, resources: resources, adminPort: adminPort))
        if native {
            if spec.initContainers != nil {
                mutation.patch.add(["spec", "initContainers", "0"], json: container)
            } else {
                mutation.patch.add(["spec", "initContainers"], json: JSONFragment.array([container]))
            }
        } else {
            mutation.patch.add(["spec", "containers", "0"], json: container)
        }

        let status = InjectionStatus(
            version: ChaperoneInjectorVersion.current, mode: native ? "native" : "container",
            sidecar: Self.sidecarName, agent: agent, containers: configured, volumes: self.volumeNames
        )
        var added: [String: String] = [Self.statusAnnotation: try status.json()]
        if annotations[Annotation.defaultContainer] == nil {
            added[Annotation.defaultContainer] = agent
        }
        if pod.metadata == nil {
            try mutation.patch.add(["metadata"], ["annotations": added])
        } else if pod.metadata?.annotations == nil {
            try mutation.patch.add(["metadata", "annotations"], added)
        } else {
            for key in added.keys.sorted() {
                var value: [UInt8] = []
                JSONFragment.appendString(added[key]!, to: &value)
                mutation.patch.add(["metadata", "annotations", key], json: value)
            }
        }
        mutation.decision.reason = "\(status.mode) sidecar, env in \(configured.count) container(s)"
        mutation.decision.warnings = warnings
        return mutation
    }

    /// The container the agent runs in: named by annotation, else kubectl's default, else the first.
    private func agentContainer(_ pod: PodView) throws -> String {
        let names = pod.containers.map(\.name)
        if let named = pod.annotations[Annotation.agentContainer] {
            guard names.contains(named) else {
                throw PodRejection(message: "annotation \(Annotation.agentContainer): no container named '\(named)' (containers: \(names.joined(separator: ", ")))")
            }
            return named
        }
        if let named = pod.annotations[Annotation.defaultContainer], names.contains(named) {
            return named
        }
        return names[0]
    }

    private func flag(_ annotations: [String: String], _ key: String) throws -> Bool? {
        guard let value = annotations[key] else { return nil }
        switch value.lowercased() {
        case "true": return true
        case "false": return false
        default: throw PodRejection(message: "annotation \(key): '\(value)' is not true or false")
        }
    }

    private func encodedSidecar(_ key: SidecarKey) throws -> [UInt8] {
        if let cached = self.sidecars.withLockedValue({ $0[key] }) { return cached }
        let json = try JSONFragment.encode(self.sidecarContainer(native: key.native, agent: key.agent, resources: key.resources, adminPort: key.adminPort))
        self.sidecars.withLockedValue { cache in
            if cache.count >= 1024 { cache.removeAll(keepingCapacity: true) }
            cache[key] = json
        }
        return json
    }

    static func volumes(_ sidecar: InjectorConfiguration.Sidecar) -> [VolumeSpec] {
        let credentials = VolumeSpec(
            name: Self.credentialsVolume,
            projected: .init(sources: [
                .init(secret: .init(
                    name: sidecar.providerKeysSecret,
                    items: sidecar.upstreams.map { .init(key: $0, path: "\($0)/api-key") },
                    optional: true
                )),
                .init(secret: .init(name: sidecar.fingerprintKeySecret, items: [.init(key: "key", path: "fingerprint/key")], optional: true)),
                .init(serviceAccountToken: .init(
                    audience: sidecar.collectorAudience, expirationSeconds: sidecar.tokenExpirationSeconds, path: "collector/token"
                )),
                .init(downwardAPI: .init(items: [
                    .init(path: "pod/labels", fieldRef: .init(fieldPath: "metadata.labels")),
                    .init(path: "pod/annotations", fieldRef: .init(fieldPath: "metadata.annotations")),
                ])),
            ])
        )
        let spool = VolumeSpec(name: Self.spoolVolume, emptyDir: .init(sizeLimit: sidecar.spoolSizeLimit))
        return [credentials, spool]
    }

    func sidecarContainer(native: Bool, agent: String, resources: InjectorConfiguration.Resources, adminPort: Int) -> ContainerSpec {
        let sidecar = self.configuration.sidecar
        var env: [EnvVarSpec] = [
            .field("CHAPERONE_POD_NAME", "metadata.name"),
            .field("CHAPERONE_POD_NAMESPACE", "metadata.namespace"),
            .field("CHAPERONE_POD_UID", "metadata.uid"),
            .field("CHAPERONE_NODE_NAME", "spec.nodeName"),
            .field("CHAPERONE_SERVICE_ACCOUNT", "spec.serviceAccountName"),
            .field("CHAPERONE_INITIATOR", "metadata.annotations['\(Annotation.initiator)']"),
            .literal("CHAPERONE_AGENT_CONTAINER", agent),
        ]
        if !sidecar.cluster.isEmpty { env.append(.literal("CHAPERONE_CLUSTER", sidecar.cluster)) }
        env += self.handover.map { EnvVarSpec.literal($0.name, $0.value) }
        var requests: [String: String] = [:]
        var limits: [String: String] = [:]
        requests["cpu"] = resources.cpuRequest
        requests["memory"] = resources.memoryRequest
        limits["cpu"] = resources.cpuLimit
        limits["memory"] = resources.memoryLimit
        func probe(_ path: String, period: Int, failures: Int) -> Probe {
            Probe(httpGet: .init(path: path, port: adminPort), periodSeconds: period, timeoutSeconds: 1, failureThreshold: failures)
        }
        return ContainerSpec(
            name: Self.sidecarName,
            image: sidecar.image,
            imagePullPolicy: sidecar.imagePullPolicy,
            command: [sidecar.command],
            args: ["--listen", "127.0.0.1:\(sidecar.proxyPort)", "--admin", "0.0.0.0:\(adminPort)"],
            ports: [.init(name: "chaperone-admin", containerPort: adminPort)],
            env: env,
            resources: .init(requests: requests.isEmpty ? nil : requests, limits: limits.isEmpty ? nil : limits),
            volumeMounts: [
                .init(name: Self.credentialsVolume, mountPath: Self.credentialsPath, readOnly: true),
                .init(name: Self.spoolVolume, mountPath: Self.spoolPath),
            ],
            // A native sidecar must be up before the next container starts: the kubelet waits for
            // its startup probe. A classic one blocks the next container in its postStart hook.
            startupProbe: native ? probe("/readyz", period: 1, failures: 120) : nil,
            readinessProbe: probe("/readyz", period: 5, failures: 3),
            livenessProbe: probe("/healthz", period: 10, failures: 3),
            lifecycle: native ? nil : .init(postStart: .init(exec: .init(command: [
                sidecar.command, "wait-ready", "--admin", "127.0.0.1:\(adminPort)", "--timeout", "120s",
            ]))),
            securityContext: .init(runAsUser: sidecar.runAsUser, runAsGroup: sidecar.runAsGroup),
            restartPolicy: native ? "Always" : nil
        )
    }
}

/// The `chaperone.io/status` annotation: what was injected, by which version.
struct InjectionStatus: Codable, Sendable, Equatable {
    var version: String
    var mode: String
    var sidecar: String
    var agent: String
    var containers: [String]
    var volumes: [String]

    func json() throws -> String {
        String(decoding: try JSONFragment.encode(self), as: UTF8.self)
    }
}
