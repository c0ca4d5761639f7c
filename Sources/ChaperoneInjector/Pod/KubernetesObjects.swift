/// The Kubernetes objects the injector writes into a pod, as typed values (field names are the
/// API's). Optional fields left nil are not written.
struct ContainerSpec: Encodable, Sendable, Equatable {
    var name: String
    var image: String
    var imagePullPolicy: String?
    var command: [String]?
    var args: [String]?
    var ports: [ContainerPort]?
    var env: [EnvVarSpec]?
    var resources: ResourceRequirements?
    var volumeMounts: [VolumeMount]?
    var startupProbe: Probe?
    var readinessProbe: Probe?
    var livenessProbe: Probe?
    var lifecycle: Lifecycle?
    var securityContext: SecurityContext?
    /// `Always` on an init container makes it a native sidecar (Kubernetes ≥ 1.29).
    var restartPolicy: String?
}

struct ContainerPort: Encodable, Sendable, Equatable {
    var name: String
    var containerPort: Int
    var `protocol` = "TCP"
}

struct EnvVarSpec: Encodable, Sendable, Equatable {
    var name: String
    var value: String?
    var valueFrom: Source?

    struct Source: Encodable, Sendable, Equatable {
        var fieldRef: FieldReference
    }

    static func literal(_ name: String, _ value: String) -> Self { .init(name: name, value: value) }
    static func field(_ name: String, _ path: String) -> Self {
        .init(name: name, valueFrom: .init(fieldRef: .init(fieldPath: path)))
    }
}

struct FieldReference: Encodable, Sendable, Equatable {
    var apiVersion = "v1"
    var fieldPath: String
}

struct ResourceRequirements: Encodable, Sendable, Equatable {
    var requests: [String: String]?
    var limits: [String: String]?
}

struct VolumeMount: Encodable, Sendable, Equatable {
    var name: String
    var mountPath: String
    var readOnly: Bool?
}

struct Probe: Encodable, Sendable, Equatable {
    var httpGet: HTTPGetAction
    var initialDelaySeconds: Int?
    var periodSeconds: Int
    var timeoutSeconds: Int
    var failureThreshold: Int
}

struct HTTPGetAction: Encodable, Sendable, Equatable {
    var path: String
    var port: Int
    var scheme = "HTTP"
}

struct Lifecycle: Encodable, Sendable, Equatable {
    var postStart: Handler

    struct Handler: Encodable, Sendable, Equatable {
        var exec: ExecAction
    }

    struct ExecAction: Encodable, Sendable, Equatable {
        var command: [String]
    }
}

struct SecurityContext: Encodable, Sendable, Equatable {
    var runAsUser: Int
    var runAsGroup: Int
    var runAsNonRoot = true
    var readOnlyRootFilesystem = true
    var allowPrivilegeEscalation = false
    var privileged = false
    var capabilities = Capabilities(drop: ["ALL"])
    var seccompProfile = SeccompProfile(type: "RuntimeDefault")

    struct Capabilities: Encodable, Sendable, Equatable {
        var drop: [String]
    }

    struct SeccompProfile: Encodable, Sendable, Equatable {
        var type: String
    }
}

struct VolumeSpec: Encodable, Sendable, Equatable {
    var name: String
    var emptyDir: EmptyDir?
    var projected: Projected?

    struct EmptyDir: Encodable, Sendable, Equatable {
        var sizeLimit: String?
    }

    struct Projected: Encodable, Sendable, Equatable {
        var sources: [Source]
    }

    struct Source: Encodable, Sendable, Equatable {
        var secret: SecretProjection?
        var serviceAccountToken: ServiceAccountTokenProjection?
        var downwardAPI: DownwardAPIProjection?
    }

    struct SecretProjection: Encodable, Sendable, Equatable {
        var name: String
        var items: [KeyToPath]
        var optional: Bool
    }

    struct KeyToPath: Encodable, Sendable, Equatable {
        var key: String
        var path: String
    }

    struct ServiceAccountTokenProjection: Encodable, Sendable, Equatable {
        var audience: String
        var expirationSeconds: Int
        var path: String
    }

    struct DownwardAPIProjection: Encodable, Sendable, Equatable {
        var items: [Item]

        struct Item: Encodable, Sendable, Equatable {
            var path: String
            var fieldRef: FieldReference
        }
    }
}
