import Testing

@testable import ChaperoneCore

@Suite("Proxy configuration")
struct ConfigurationTests {
    @Test("embedded defaults: OpenAI and Anthropic with keys from mounted secrets")
    func defaults() {
        let config = ProxyConfiguration()
        #expect(config.listen == .init(host: "127.0.0.1", port: 15080))
        #expect(config.admin.port == 15090)
        #expect(config.upstreams["openai"]?.baseURL == "https://api.openai.com")
        #expect(config.upstreams["anthropic"]?.provider == .anthropic)
        #expect(config.upstreams["anthropic"]?.credential?.file == "/var/run/secrets/chaperone/anthropic/api-key")
    }

    @Test("a full file is read, with units and provider guesses")
    func full() throws {
        let config = try ProxyConfiguration.parse(yaml: """
            listen: { host: 0.0.0.0, port: 16080 }
            upstreams:
              openai:
                base_url: https://api.openai.com/
                credential: { file: /keys/openai }
              claude:
                base_url: https://api.anthropic.com
                credential: { file: /keys/anthropic }
              azure:
                base_url: https://myco.openai.azure.com
                credential: { file: /keys/azure }
              vllm:
                base_url: http://vllm.models.svc:8000
                provider: openai
                ca_bundle: /etc/ssl/private-ca.pem
            limits: { max_request_body: 2MiB, max_header_bytes: 16KiB, max_headers: 50 }
            timeouts: { connect: 500ms, idle: 2m, total: 1h, shutdown_grace: 10 }
            audit: { file: null, stdout: true, max_content_chars: 100 }
            """)
        #expect(config.listen == .init(host: "0.0.0.0", port: 16080))
        #expect(config.admin.port == 15090)
        #expect(config.upstreams.count == 4)
        #expect(config.upstreams["openai"]?.baseURL == "https://api.openai.com")
        #expect(config.upstreams["claude"]?.provider == .anthropic)
        #expect(config.upstreams["azure"]?.provider == .azureOpenAI)
        #expect(config.upstreams["vllm"]?.caBundle == "/etc/ssl/private-ca.pem")
        #expect(config.upstreams["vllm"]?.credential == nil)
        #expect(config.limits.maxRequestBodyBytes == 2 * 1024 * 1024)
        #expect(config.limits.maxHeaderBytes == 16 * 1024)
        #expect(config.limits.maxHeaderCount == 50)
        #expect(config.timeouts.connect.milliseconds == 500)
        #expect(config.timeouts.idle.milliseconds == 120_000)
        #expect(config.timeouts.total.milliseconds == 3_600_000)
        #expect(config.timeouts.shutdownGrace.milliseconds == 10_000)
        #expect(config.audit.file == nil)
        #expect(config.audit.maxContentCharacters == 100)
    }

    @Test("credential headers by provider")
    func credentialHeaders() {
        let credential = ProxyConfiguration.Credential(file: "/k")
        #expect(credential.resolvedHeader(for: .openai) == ("authorization", "Bearer "))
        #expect(credential.resolvedHeader(for: .anthropic) == ("x-api-key", ""))
        #expect(credential.resolvedHeader(for: .azureOpenAI) == ("api-key", ""))
        let custom = ProxyConfiguration.Credential(file: "/k", header: "x-token", prefix: "Token ")
        #expect(custom.resolvedHeader(for: .openai) == ("x-token", "Token "))
    }

    @Test("errors name the field and say why", arguments: [
        ("upstreams:\n  openai:\n    provider: openai\n", "upstreams.openai.base_url: required"),
        ("upstreams:\n  openai:\n    base_url: ftp://x\n", "upstreams.openai.base_url: 'ftp://x' is not an http(s) URL"),
        ("upstreams:\n  openai:\n    base_url: https://x\n    provder: openai\n", "upstreams.openai.provder: unknown key"),
        ("upstreams:\n  openai:\n    base_url: https://x\n    provider: gemini\n", "upstreams.openai.provider: unknown provider 'gemini'"),
        ("upstreams:\n  openai:\n    base_url: https://x\n    credential: {}\n", "upstreams.openai.credential.file: required"),
        ("upstreams:\n  'a b':\n    base_url: https://x\n", "upstreams.a b: upstream names may hold"),
        ("listen: { port: 99999 }\n", "listen.port: 99999 is out of range"),
        ("listen: { port: abc }\n", "listen.port: expected an integer"),
        ("timeouts: { total: soon }\n", "timeouts.total: 'soon' is not a duration"),
        ("limits: { max_request_body: lots }\n", "limits.max_request_body: 'lots' is not a size"),
        ("limits: { max_header_bytes: 1MiB }\n", "limits.max_header_bytes: at most 80KiB"),
        ("audit: { stdout: maybe }\n", "audit.stdout: expected true or false"),
        ("colour: blue\n", "colour: unknown key"),
        ("- just\n- a list\n", "expected a mapping"),
        ("listen: [\n", "not valid YAML"),
    ])
    func errors(yaml: String, expected: String) {
        do {
            _ = try ProxyConfiguration.parse(yaml: yaml)
            Issue.record("expected an error for \(yaml)")
        } catch {
            #expect(error.description.contains(expected), "got: \(error.description)")
        }
    }

    @Test("a missing file is reported with its path")
    func missingFile() {
        #expect(throws: ConfigError.self) { try ProxyConfiguration.load(file: "/nonexistent/chaperone.yaml") }
        do {
            _ = try ProxyConfiguration.load(file: "/nonexistent/chaperone.yaml")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/chaperone.yaml: cannot read the file"))
        }
    }

    @Test("an empty file means the defaults")
    func empty() throws {
        #expect(try ProxyConfiguration.parse(yaml: "") == ProxyConfiguration())
    }

    @Test("collector and spool: parsed, and bad values named by field")
    func delivery() throws {
        let config = try ProxyConfiguration.parse(yaml: """
            collector:
              url: https://chaperone-collector.chaperone-system.svc:8080/
              batch_events: 250
              batch_delay: 50ms
              retry_max: 10s
            spool:
              directory: /spool
              max_size: 64MiB
              overflow: drop-oldest
              sync: always
            """)
        #expect(config.collector?.url == "https://chaperone-collector.chaperone-system.svc:8080")
        #expect(config.collector?.tokenFile == "/var/run/secrets/chaperone/collector/token")
        #expect(config.collector?.batchEvents == 250 && config.collector?.batchDelay.milliseconds == 50)
        #expect(config.spool.directory == "/spool" && config.spool.maxBytes == 64 << 20)
        #expect(config.spool.overflow == .dropOldest && config.spool.sync == .always)
        #expect(config.spool.segmentBytes == 4 << 20)
        #expect(ProxyConfiguration().collector == nil, "no collector unless configured")

        func refusal(_ yaml: String) -> String {
            do {
                _ = try ProxyConfiguration.parse(yaml: yaml)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal("collector: { url: 'http://collector.example:8080' }").hasPrefix("collector.url: "))
        #expect(refusal("collector: { url: 'http://collector.example:8080' }").contains("use https"))
        #expect(refusal("collector: { url: 'http://127.0.0.1:8080' }") == "accepted")
        #expect(refusal("collector: { batch_events: 5 }").hasPrefix("collector.url: required"))
        #expect(refusal("spool: { overflow: drop-newest }").contains("fail-closed, drop-oldest"))
        #expect(refusal("spool: { max_size: 1KiB }").hasPrefix("spool.max_size: at least 1MiB"))
        #expect(refusal("collector: { url: 'https://c', retry_initial: 1m, retry_max: 1s }").hasPrefix("collector.retry_initial"))
    }

    @Test("the injector's handover: configuration, policy and collector CA from the environment")
    func environment() throws {
        let yaml = "collector: { url: 'https://chaperone-collector.chaperone-system.svc:8080' }\naudit: { stdout: false }\n"
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let env = ["CHAPERONE_CONFIG": yaml, "CHAPERONE_POLICY": "rules: []\n", "CHAPERONE_COLLECTOR_CA": pem]
        let config = try ProxyConfiguration.resolve(file: nil, environment: env)
        #expect(config.collector?.url == "https://chaperone-collector.chaperone-system.svc:8080")
        #expect(config.collector?.caPEM == pem)
        #expect(config.audit.stdout == false)
        #expect(config.policy.text == "rules: []\n")
        // Nothing set: the embedded defaults, no collector, so the CA is not used.
        let bare = try ProxyConfiguration.resolve(file: nil, environment: ["CHAPERONE_COLLECTOR_CA": pem])
        #expect(bare.collector == nil && bare.policy.text == nil)
        // Errors name the variable.
        do {
            _ = try ProxyConfiguration.resolve(file: nil, environment: ["CHAPERONE_CONFIG": "audit: { stdout: maybe }"])
            Issue.record("a bad value was accepted")
        } catch {
            #expect(error.file == "$CHAPERONE_CONFIG" && error.field == "audit.stdout")
        }
        do {
            _ = try ProxyConfiguration.resolve(file: nil, environment: ["CHAPERONE_CONFIG": yaml, "CHAPERONE_COLLECTOR_CA": "not a pem"])
            Issue.record("a CA that is not PEM was accepted")
        } catch {
            #expect(error.file == "$CHAPERONE_COLLECTOR_CA")
        }
    }
}
