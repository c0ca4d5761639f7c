/// The parts of a Pod the injector decides on. Unknown fields are ignored: the patch only adds,
/// so nothing the injector does not read can be lost.
public struct PodView: Decodable, Sendable {
    public var metadata: Metadata?
    public var spec: Spec?

    public struct Metadata: Decodable, Sendable {
        public var name: String?
        public var generateName: String?
        public var namespace: String?
        public var labels: [String: String]?
        public var annotations: [String: String]?
    }

    public struct Spec: Decodable, Sendable {
        public var containers: [Container]
        public var initContainers: [Container]?
        public var volumes: [Volume]?
        public var hostNetwork: Bool?
        public var restartPolicy: String?
        public var shareProcessNamespace: Bool?
    }

    public struct Container: Decodable, Sendable {
        public var name: String
        public var env: [EnvVar]?
        public var envFrom: [EnvFromSource]?
    }

    public struct EnvVar: Decodable, Sendable {
        public var name: String
        public var valueFrom: ValueFrom?

        public struct ValueFrom: Decodable, Sendable {
            public var secretKeyRef: NameReference?
        }
    }

    public struct EnvFromSource: Decodable, Sendable {
        public var secretRef: NameReference?
    }

    public struct NameReference: Decodable, Sendable {
        public var name: String?
    }

    public struct Volume: Decodable, Sendable {
        public var name: String
        public var secret: SecretVolume?
        public var projected: Projected?

        public struct SecretVolume: Decodable, Sendable {
            public var secretName: String?
        }

        public struct Projected: Decodable, Sendable {
            public var sources: [Source]?

            public struct Source: Decodable, Sendable {
                public var secret: NameReference?
            }
        }
    }

    var labels: [String: String] { self.metadata?.labels ?? [:] }
    var annotations: [String: String] { self.metadata?.annotations ?? [:] }
    var containers: [Container] { self.spec?.containers ?? [] }
    var initContainers: [Container] { self.spec?.initContainers ?? [] }

    /// What to call the pod in logs and messages: its name, else its generateName prefix.
    var displayName: String {
        if let name = self.metadata?.name, !name.isEmpty { return name }
        if let prefix = self.metadata?.generateName, !prefix.isEmpty { return prefix + "*" }
        return "(unnamed)"
    }
}
