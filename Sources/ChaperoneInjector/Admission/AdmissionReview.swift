public import Foundation

/// `admission.k8s.io/v1` AdmissionReview as the API server sends it: the fields a mutating
/// webhook reads. The pod is decoded into `PodView`; a pod that does not decode is kept as an
/// error next to the uid, so the answer can still name the request it refuses.
public struct AdmissionReviewRequest: Decodable, Sendable {
    public var apiVersion: String
    public var kind: String
    public var request: Request

    public struct GroupVersionKind: Codable, Sendable, Equatable {
        public var group: String
        public var version: String
        public var kind: String
    }

    public struct GroupVersionResource: Codable, Sendable, Equatable {
        public var group: String
        public var version: String
        public var resource: String
    }

    public struct Request: Decodable, Sendable {
        public var uid: String
        public var kind: GroupVersionKind
        public var resource: GroupVersionResource
        public var subResource: String?
        public var name: String?
        public var namespace: String?
        public var operation: String
        public var dryRun: Bool?
        public var object: PodView?
        /// Why `object` could not be read as a pod, when it could not.
        public var objectError: String?

        enum CodingKeys: String, CodingKey {
            case uid, kind, resource, subResource, name, namespace, operation, dryRun, object
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.uid = try container.decode(String.self, forKey: .uid)
            self.kind = try container.decode(GroupVersionKind.self, forKey: .kind)
            self.resource = try container.decode(GroupVersionResource.self, forKey: .resource)
            self.subResource = try container.decodeIfPresent(String.self, forKey: .subResource)
            self.name = try container.decodeIfPresent(String.self, forKey: .name)
            self.namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
            self.operation = try container.decode(String.self, forKey: .operation)
            self.dryRun = try container.decodeIfPresent(Bool.self, forKey: .dryRun)
            do {
                self.object = try container.decodeIfPresent(PodView.self, forKey: .object)
            } catch {
                self.object = nil
                self.objectError = DecodingFailure.describe(error)
            }
        }

        public var isPodCreate: Bool {
            self.operation == "CREATE" && self.kind.group.isEmpty && self.kind.kind == "Pod"
                && self.resource.resource == "pods" && (self.subResource ?? "").isEmpty
        }
    }

    public static let apiVersion = "admission.k8s.io/v1"
}

/// The webhook's answer, wrapped in an AdmissionReview of the same apiVersion.
public struct AdmissionReviewResponse: Encodable, Sendable {
    public var apiVersion: String = AdmissionReviewRequest.apiVersion
    public var kind: String = "AdmissionReview"
    public var response: Response

    public struct Status: Encodable, Sendable, Equatable {
        public var code: Int
        public var message: String
    }

    public struct Response: Encodable, Sendable {
        public var uid: String
        public var allowed: Bool
        public var status: Status?
        /// The RFC 6902 patch; `JSONEncoder` writes `Data` as base64, which is what the API wants.
        public var patch: Data?
        public var patchType: String?
        public var warnings: [String]?
    }

    public init(apiVersion: String, response: Response) {
        self.apiVersion = apiVersion
        self.response = response
    }
}

/// Turns a `DecodingError` into one line naming the JSON path at fault.
enum DecodingFailure {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return text.isEmpty ? "the document" : String(text.drop(while: { $0 == "." }))
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)): expected \(type), found null"
        case .keyNotFound(let key, let context): return "\(path(context)): missing field '\(key.stringValue)'"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
