/// The built-in rule pack: prompts that try to get at credentials. They tag the exchange (the
/// audit event names the rule, with severity high); operators who want them to deny or to wait
/// for approval write a rule of their own with the same keywords and that action, before these.
extension Policy {
    public static let builtInRules: [PolicyRule] = {
        func rule(_ id: String, _ message: String, severity: Severity = .high, keywords: [String] = [], detectors: [String] = []) -> PolicyRule {
            var match = PolicyRule.Match()
            match.keywords = keywords
            match.detectors = detectors
            return PolicyRule(id: "builtin.\(id)", action: .tag, message: message, severity: severity, match: match, origin: "built-in")
        }
        return [
            rule(
                "read-cloud-credentials", "The prompt refers to a local credentials file.",
                keywords: [
                    ".aws/credentials", ".aws/config", "application_default_credentials.json", ".config/gcloud", ".azure/",
                    ".kube/config", "kubeconfig", ".docker/config.json", ".netrc", ".git-credentials", ".npmrc", ".pypirc",
                    ".ssh/id_rsa", ".ssh/id_ed25519", ".ssh/id_ecdsa", ".vault-token", ".terraformrc", "credentials.json",
                ]
            ),
            rule(
                "service-account-token", "The prompt refers to the pod's Kubernetes service-account token.",
                keywords: ["/var/run/secrets/kubernetes.io", "/run/secrets/kubernetes.io", "/var/run/secrets/eks.amazonaws.com", "serviceaccount/token"]
            ),
            rule(
                "dump-environment", "The prompt asks to print the process environment.",
                keywords: [
                    "printenv", "/proc/self/environ", "/proc/1/environ", "env | grep", "env | sort", "env|grep", "print(os.environ)",
                    "dict(os.environ)", "console.log(process.env)", "json.stringify(process.env", "get-childitem env:", "export -p", "os.environ.items()",
                ]
            ),
            rule(
                "disable-tls-verification", "The prompt asks to turn off TLS certificate verification.",
                keywords: [
                    "verify=false", "--insecure", "curl -k ", "node_tls_reject_unauthorized", "insecureskipverify: true",
                    "insecureskipverify = true", "rejectunauthorized: false", "curlopt_ssl_verifypeer", "git_ssl_no_verify",
                    "insecure-skip-tls-verify", "pythonhttpsverify=0", "_create_unverified_context", "ssl_verify=false",
                    "strictssl false", "-o stricthostkeychecking=no",
                ]
            ),
            rule(
                "pipe-to-shell", "The prompt pipes downloaded content into a shell.",
                keywords: ["| sh", "|sh", "| bash", "|bash", "| sudo sh", "| sudo bash", "| zsh", "| python", "iex (iwr", "iex(new-object"]
            ),
            rule(
                "read-cluster-secrets", "The prompt asks to read secrets from a cluster or a secrets manager.",
                keywords: [
                    "kubectl get secret", "kubectl describe secret", "kubectl get secrets", "secretsmanager get-secret-value",
                    "ssm get-parameter", "gcloud secrets versions access", "az keyvault secret show", "vault kv get", "vault read",
                    "gcloud auth print-access-token", "az account get-access-token", "aws sts get-session-token",
                ]
            ),
            rule(
                "secret-in-prompt", "The prompt carried a credential (masked before it left the pod).", severity: .medium,
                detectors: ["*"]
            ),
        ]
    }()
}
