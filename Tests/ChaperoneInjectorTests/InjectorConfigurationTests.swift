import ChaperoneCore
@testable import ChaperoneInjector
import Foundation
import Testing

@Suite struct InjectorConfigurationTests {
    @Test func readsEveryKey() throws {
        let config = try InjectorConfiguration.parse(yaml: """
            listen: {host: 127.0.0.1, port: 9443}
            namespace: chaperone
            excluded_namespaces: [kube-system, monitoring]
            failure_mode: allow
            max_request_body: 2MiB
            tls:
              mode: self-signed
              secret: webhook-tls
              service: injector
              webhook_configuration: injector-hooks
              serving_validity: 90d
              renew_before: 10d
            kubernetes:
              api_url: https://10.0.0.1:6443
            sidecar:
              image: registry.example.com/chaperone:1.2.3
              native: false
              run_as_user: 2000
              admin_port: 15091
              resources: {cpu_request: 100m, memory_limit: 1Gi}
              upstreams: [openai]
              token_expiration: 2h
              cluster: prod-eu
              agent_env:
                OPENAI_BASE_URL: http://127.0.0.1:15080/openai/v1
            """)
        #expect(config.listen.port == 9443)
        #expect(config.neverInjected == ["kube-system", "monitoring", "chaperone"])
        #expect(config.failureMode == .allow)
        #expect(config.maxRequestBodyBytes == 2 * 1024 * 1024)
        #expect(config.tls.mode == .selfSigned && config.tls.secretName == "webhook-tls")
        #expect(config.tls.servingValidity.milliseconds == 90 * 86_400_000)
        #expect(config.kubernetes.apiURL == "https://10.0.0.1:6443")
        #expect(!config.sidecar.native && config.sidecar.runAsUser == 2000 && config.sidecar.adminPort == 15091)
        #expect(config.sidecar.resources == .init(cpuRequest: "100m", memoryRequest: nil, cpuLimit: nil, memoryLimit: "1Gi"))
        #expect(config.sidecar.upstreams == ["openai"])
        #expect(config.sidecar.tokenExpirationSeconds == 7200)
        #expect(config.sidecar.agentEnvironment.map(\.name) == ["OPENAI_BASE_URL"])
    }

    @Test func proxyPortMovesTheAgentEnvironment() throws {
        let config = try InjectorConfiguration.parse(yaml: "sidecar:\n  proxy_port: 16000\n")
        #expect(config.sidecar.agentEnvironment.first { $0.name == "OPENAI_BASE_URL" }?.value == "http://127.0.0.1:16000/openai/v1")
    }

    @Test(arguments: [
        ("sidecar:\n  imag: x\n", "sidecar.imag", "unknown key"),
        ("failure_mode: maybe\n", "failure_mode", "not one of deny, allow"),
        ("sidecar:\n  resources:\n    cpu_limit: lots\n", "sidecar.resources.cpu_limit", "not a Kubernetes quantity"),
        ("sidecar:\n  token_expiration: 5m\n", "sidecar.token_expiration", "at least 10m"),
        ("sidecar:\n  admin_port: 15080\n", "sidecar.admin_port", "must differ"),
        ("tls:\n  serving_validity: 10d\n  renew_before: 20d\n", "tls.renew_before", "shorter than"),
        ("kubernetes:\n  api_url: http://insecure\n", "kubernetes.api_url", "not an https URL"),
        ("excluded_namespaces: kube-system\n", "excluded_namespaces", "list of strings"),
    ])
    func rejectsBadValuesNamingTheField(yaml: String, field: String, message: String) {
        do {
            _ = try InjectorConfiguration.parse(yaml: yaml)
            Issue.record("accepted \(yaml)")
        } catch {
            #expect(error.field == field)
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test(arguments: ["100m", "0.5", "128Mi", "1G", "2", "1e3", "1.5Gi"])
    func acceptsQuantities(_ text: String) { #expect(ResourceQuantity.isValid(text)) }

    @Test(arguments: ["", "lots", "1.2.3", "Mi", "12XB", "-1", "1e"])
    func rejectsQuantities(_ text: String) { #expect(!ResourceQuantity.isValid(text)) }
}
