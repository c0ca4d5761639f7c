@testable import ChaperoneInjector
import Foundation
import Testing

/// The injection rules on the same AdmissionReview fixtures the e2e suite sends over TLS.
@Suite struct SidecarInjectorTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/admission")

    static func request(_ name: String, edit: (inout [String: Any]) -> Void = { _ in }) throws -> AdmissionReviewRequest.Request {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("\(name).json"))
        var review = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&review)
        let edited = try JSONSerialization.data(withJSONObject: review)
        return try JSONDecoder().decode(AdmissionReviewRequest.self, from: edited).request
    }

    static func editPod(_ review: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var request = review["request"] as! [String: Any]
        var pod = request["object"] as! [String: Any]
        edit(&pod)
        request["object"] = pod
        review["request"] = request
    }

    static func operations(_ decision: AdmissionDecision) throws -> [[String: Any]] {
        let patch = try #require(decision.patch)
        return try #require(try JSONSerialization.jsonObject(with: Data(patch)) as? [[String: Any]])
    }

    let injector = SidecarInjector(configuration: InjectorConfiguration())

    @Test(arguments: [
        ("deployment-pod", AdmissionDecision.Outcome.injected), ("job-pod", .injected), ("cronjob-pod", .injected),
        ("init-containers", .injected), ("multi-container", .injected), ("existing-env", .injected),
        ("existing-volumes", .injected), ("tricky-annotation-keys", .injected), ("bare-pod", .injected),
        ("istio-pod", .injected), ("classic-sidecar-job", .injected),
        ("already-injected", .skipped), ("host-network", .skipped), ("opt-out", .skipped), ("kube-system-pod", .skipped),
        ("update", .skipped), ("provider-key-reader", .denied), ("bad-annotation", .denied),
    ])
    func fixtureOutcomes(name: String, outcome: AdmissionDecision.Outcome) throws {
        let decision = self.injector.review(try Self.request(name))
        #expect(decision.outcome == outcome, "\(name): \(decision.reason)")
        #expect(decision.allowed == (outcome != .denied))
        #expect((decision.patch != nil) == (outcome == .injected))
    }

    @Test func userSetVariablesAreKeptAndWarned() throws {
        let decision = self.injector.review(try Self.request("existing-env"))
        let added = try Self.operations(decision).filter { ($0["path"] as? String)?.hasPrefix("/spec/containers/0/env") == true }
        let names = added.compactMap { ($0["value"] as? [String: Any])?["name"] as? String }
        #expect(names == ["OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"])
        #expect(decision.warnings.contains { $0.contains("sets OPENAI_BASE_URL itself") })
        #expect(decision.warnings.contains { $0.contains("envFrom") })
    }

    @Test func ownNamespaceIsNeverInjected() throws {
        var configuration = InjectorConfiguration()
        configuration.namespace = "agents"
        let decision = SidecarInjector(configuration: configuration).review(try Self.request("deployment-pod"))
        #expect(decision.outcome == .skipped)
        #expect(decision.reason.contains("never injected"))
    }

    @Test func istioPortsAreAvoided() throws {
        let decision = self.injector.review(try Self.request("istio-pod"))
        let sidecar = try #require(try Self.operations(decision).first { $0["path"] as? String == "/spec/initContainers/0" })
        let args = try #require((sidecar["value"] as? [String: Any])?["args"] as? [String])
        #expect(args.last == "0.0.0.0:15190")
    }

    @Test func unknownAgentContainerIsRefused() throws {
        let decision = self.injector.review(try Self.request("bare-pod") { review in
            Self.editPod(&review) { pod in
                var metadata = pod["metadata"] as! [String: Any]
                metadata["annotations"] = ["chaperone.io/agent-container": "nope"]
                pod["metadata"] = metadata
            }
        })
        #expect(decision.outcome == .denied)
        #expect(decision.message?.contains("no container named 'nope'") == true)
    }

    @Test func reservedVolumeNameIsRefused() throws {
        let decision = self.injector.review(try Self.request("bare-pod") { review in
            Self.editPod(&review) { pod in
                var spec = pod["spec"] as! [String: Any]
                spec["volumes"] = [["name": "chaperone-spool", "emptyDir": [String: Any]()]]
                pod["spec"] = spec
            }
        })
        #expect(decision.outcome == .denied)
        #expect(decision.message?.contains("reserved") == true)
    }

    @Test func providerKeySecretVolumeIsRefused() throws {
        let decision = self.injector.review(try Self.request("bare-pod") { review in
            Self.editPod(&review) { pod in
                var spec = pod["spec"] as! [String: Any]
                spec["volumes"] = [["name": "keys", "projected": ["sources": [["secret": ["name": "chaperone-provider-keys"]]]]]]
                pod["spec"] = spec
            }
        })
        #expect(decision.outcome == .denied)
        #expect(decision.statusCode == 403)
    }

    @Test func fingerprintKeyReaderIsRefused() throws {
        let decision = self.injector.review(try Self.request("bare-pod") { review in
            Self.editPod(&review) { pod in
                var spec = pod["spec"] as! [String: Any]
                spec["containers"] = [["name": "agent", "image": "x", "envFrom": [["secretRef": ["name": "chaperone-fingerprint-key"]]]]]
                pod["spec"] = spec
            }
        })
        #expect(decision.outcome == .denied)
        #expect(decision.message?.contains("container agent references Secret chaperone-fingerprint-key") == true)
    }

    @Test func unreadablePodFollowsFailureMode() throws {
        let request = try Self.request("bare-pod") { review in
            Self.editPod(&review) { pod in pod["spec"] = ["containers": 7] }
        }
        #expect(request.objectError?.contains("spec.containers") == true)
        let denied = self.injector.review(request)
        #expect(denied.outcome == .failed && !denied.allowed && denied.statusCode == 500)
        var configuration = InjectorConfiguration()
        configuration.failureMode = .allow
        let allowed = SidecarInjector(configuration: configuration).review(request)
        #expect(allowed.outcome == .failed && allowed.allowed && allowed.warnings.count == 1)
    }

    @Test func missingNamespaceIsAFailure() throws {
        let request = try Self.request("bare-pod") { review in
            var inner = review["request"] as! [String: Any]
            inner.removeValue(forKey: "namespace")
            review["request"] = inner
        }
        #expect(self.injector.review(request).outcome == .failed)
    }

    @Test func statusAnnotationRecordsWhatWasInjected() throws {
        let decision = self.injector.review(try Self.request("multi-container"))
        let operations = try Self.operations(decision)
        let status = try #require(operations.first { $0["path"] as? String == "/metadata/annotations/chaperone.io~1status" }?["value"] as? String)
        let decoded = try JSONDecoder().decode(InjectionStatus.self, from: Data(status.utf8))
        #expect(decoded.agent == "agent")
        #expect(decoded.containers == ["git-sync", "agent", "lsp"])
        #expect(decoded.mode == "native")
        // kubectl's default-container was already set by the user: not touched.
        #expect(!operations.contains { $0["path"] as? String == "/metadata/annotations/kubectl.kubernetes.io~1default-container" })
    }
}
