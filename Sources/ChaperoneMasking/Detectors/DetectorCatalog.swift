/// The built-in credential formats. Ids are stable: they appear in placeholders, findings and
/// policy files. docs/masking.md lists them with examples. Variants of one credential (a legacy
/// and a current format) are separate entries with the same id.
public enum DetectorCatalog {
    private static let b62 = ByteSet.alphanumeric
    private static let b64url = ByteSet.base64URL
    private static let hexLower = ByteSet.lowerHex

    private static func prefixed(
        _ id: String, _ summary: String, _ prefixes: [String], body: ByteSet, length: ClosedRange<Int>,
        confidence: Confidence = .high, padding: Int = 0, check: Detector.Check? = nil, companion: Detector.Companion? = nil
    ) -> Detector {
        Detector(
            id: id, summary: summary, confidence: confidence,
            rule: .prefixed(.init(prefixes: prefixes, body: body, length: length, padding: padding, check: check, companion: companion))
        )
    }

    /// Characters a generic secret value may contain: any token byte except `=`-led syntax is
    /// handled by the rule; quotes and brackets already end the value.
    static let genericValue = ByteSet.token

    public static let builtIn: [Detector] = [
        // Cloud providers
        prefixed(
            "aws-access-key-id", "AWS access key id (AKIA…, ASIA…)",
            ["AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"],
            body: ByteSet.upper.union(.digits), length: 16...16,
            companion: .awsSecretKey(detectorID: "aws-secret-access-key")
        ),
        Detector(
            id: "aws-secret-access-key", summary: "AWS secret access key (40 characters, assigned to an AWS secret name or after a key id)",
            rule: .assigned(.init(
                names: ["aws", "secretaccesskey", "secret_access_key", "secret-access-key"],
                nameMustContain: [["secret"], ["aws", "access"]],
                value: .base64, length: 40...40, check: .mixedCase
            ))
        ),
        prefixed("google-api-key", "Google API key (AIza…)", ["AIza"], body: b64url, length: 35...35),
        prefixed("google-oauth-client-secret", "Google OAuth client secret (GOCSPX-…)", ["GOCSPX-"], body: b64url, length: 28...28),
        prefixed("google-oauth-access-token", "Google OAuth access token (ya29.…)", ["ya29."], body: b64url, length: 50...2048),
        Detector(
            id: "gcp-service-account-key-id", summary: "GCP service-account key id (private_key_id in a key file)",
            rule: .assigned(.init(names: ["private_key_id"], value: .lowerHex, length: 40...40))
        ),
        Detector(
            id: "azure-storage-account-key", summary: "Azure storage account key (AccountKey=… in a connection string)",
            rule: .assigned(.init(names: ["accountkey"], value: ByteSet.base64.union(ByteSet("=")), length: 88...88, check: .suffix("==")))
        ),
        Detector(id: "azure-ad-client-secret", summary: "Azure AD / Entra ID client secret (…Q~…)", rule: .azureClientSecret),
        prefixed("digitalocean-token", "DigitalOcean token (dop_v1_, doo_v1_, dor_v1_)", ["dop_v1_", "doo_v1_", "dor_v1_"], body: hexLower, length: 64...64),
        prefixed("heroku-api-key", "Heroku API key (HRKU-…)", ["HRKU-"], body: b64url, length: 60...60),
        Detector(
            id: "heroku-api-key", summary: "Heroku API key, legacy format (a UUID assigned to a Heroku key name)", confidence: .medium,
            rule: .assigned(.init(names: ["heroku"], nameMustContain: [["key", "token"]], value: ByteSet.hex.union(ByteSet("-")), length: 36...36, check: .uuid))
        ),
        // Source hosting and CI
        prefixed("github-pat", "GitHub personal access token (ghp_)", ["ghp_"], body: b62, length: 36...36, check: .githubChecksum),
        prefixed("github-oauth-token", "GitHub OAuth access token (gho_)", ["gho_"], body: b62, length: 36...36, check: .githubChecksum),
        prefixed("github-user-token", "GitHub user-to-server token (ghu_)", ["ghu_"], body: b62, length: 36...36, check: .githubChecksum),
        prefixed("github-server-token", "GitHub server-to-server token (ghs_)", ["ghs_"], body: b62, length: 36...36, check: .githubChecksum),
        prefixed("github-refresh-token", "GitHub refresh token (ghr_)", ["ghr_"], body: b62, length: 36...76, check: .githubChecksum),
        prefixed(
            "github-fine-grained-pat", "GitHub fine-grained personal access token (github_pat_)", ["github_pat_"],
            body: b62.union(ByteSet("_")), length: 82...82, check: .separators([(22, UInt8(ascii: "_"))])
        ),
        prefixed("gitlab-pat", "GitLab personal access token (glpat-)", ["glpat-"], body: b64url.union(ByteSet(".")), length: 20...80),
        prefixed(
            "gitlab-token", "GitLab deploy, runner, trigger, OAuth and other tokens (gldt-, glrt-, glptt-, …)",
            ["gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-", "glimt-", "glagent-", "glffct-", "glft-", "gloas-"],
            body: b64url.union(ByteSet(".")), length: 20...80
        ),
        prefixed("npm-token", "npm access token (npm_)", ["npm_"], body: b62, length: 36...36),
        prefixed("pypi-token", "PyPI API token (pypi-AgEIcHlwaS5vcmc…)", ["pypi-AgEIcHlwaS5vcmc"], body: b64url, length: 50...1024),
        prefixed("dockerhub-pat", "Docker Hub personal access token (dckr_pat_)", ["dckr_pat_"], body: b64url, length: 27...40),
        prefixed("databricks-token", "Databricks personal access token (dapi…)", ["dapi"], body: hexLower.union(ByteSet("-")), length: 32...34, check: .databricks),
        prefixed("vault-token", "HashiCorp Vault token (hvs., hvb.)", ["hvs.", "hvb."], body: b64url, length: 24...512),
        prefixed("doppler-token", "Doppler token (dp.pt., dp.st., dp.sa., dp.ct., dp.scim.)", ["dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim."], body: b62, length: 40...44),
        prefixed("sentry-token", "Sentry organisation auth token (sntrys_)", ["sntrys_"], body: ByteSet.base64.union(ByteSet("_=")), length: 60...512),
        prefixed("sentry-token", "Sentry user auth token (sntryu_)", ["sntryu_"], body: hexLower, length: 64...64),
        prefixed("grafana-cloud-token", "Grafana Cloud API token (glc_)", ["glc_"], body: .base64, length: 32...512, padding: 2),
        prefixed(
            "grafana-service-account-token", "Grafana service-account token (glsa_)", ["glsa_"],
            body: b62.union(ByteSet("_")), length: 41...41, check: .separators([(32, UInt8(ascii: "_"))])
        ),
        // Chat, payments, mail, messaging
        prefixed(
            "slack-token", "Slack bot, user, app or config token (xoxb-, xoxp-, xapp-, …)", ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xoxe.xoxp-", "xapp-"],
            body: b62.union(ByteSet("-")), length: 20...255, check: .leadingDigit
        ),
        prefixed(
            "slack-webhook-url", "Slack incoming webhook URL", ["https://hooks.slack.com/services/", "https://hooks.slack.com/workflows/", "https://hooks.slack.com/triggers/"],
            body: b62.union(ByteSet("/")), length: 30...120, check: .slackWebhook
        ),
        prefixed("stripe-secret-key", "Stripe secret or restricted key (sk_live_, rk_live_, sk_test_, rk_test_)", ["sk_live_", "sk_test_", "rk_live_", "rk_test_"], body: b62, length: 24...99),
        prefixed("stripe-webhook-secret", "Stripe webhook signing secret (whsec_)", ["whsec_"], body: .base64, length: 32...64, padding: 2),
        prefixed("twilio-api-key", "Twilio API key SID (SK + 32 hex)", ["SK"], body: hexLower, length: 32...32, confidence: .medium),
        prefixed(
            "sendgrid-api-key", "SendGrid API key (SG.…)", ["SG."], body: b64url.union(ByteSet(".")), length: 66...66,
            check: .separators([(22, UInt8(ascii: "."))])
        ),
        prefixed("shopify-token", "Shopify access token (shpat_, shpca_, shppa_, shpss_)", ["shpat_", "shpca_", "shppa_", "shpss_"], body: .hex, length: 32...32),
        // AI providers
        prefixed(
            "openai-api-key", "OpenAI API key (sk-proj-, sk-svcacct-, sk-admin-, sk-None-)", ["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-"],
            body: b64url, length: 32...256, check: .marker("T3BlbkFJ", otherwise: .medium)
        ),
        prefixed("openai-api-key", "OpenAI API key, legacy format (sk-…T3BlbkFJ…)", ["sk-"], body: b62, length: 48...48, check: .marker("T3BlbkFJ", otherwise: nil)),
        prefixed("anthropic-api-key", "Anthropic API key (sk-ant-api03-)", ["sk-ant-api03-"], body: b64url, length: 80...120, check: .suffix("AA")),
        prefixed("anthropic-admin-key", "Anthropic admin key (sk-ant-admin01-)", ["sk-ant-admin01-"], body: b64url, length: 80...120, check: .suffix("AA")),
        prefixed("huggingface-token", "Hugging Face access token (hf_)", ["hf_"], body: b62, length: 34...34),
        // Secrets managers and keys
        prefixed("onepassword-service-account-token", "1Password service-account token (ops_eyJ…)", ["ops_eyJ"], body: b64url.union(ByteSet("=")), length: 100...4096),
        prefixed(
            "age-secret-key", "age secret key (AGE-SECRET-KEY-1…)", ["AGE-SECRET-KEY-1"],
            body: ByteSet("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"), length: 58...58
        ),
        Detector(id: "private-key", summary: "PEM private key block (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP)", rule: .privateKeyBlock),
        Detector(id: "jwt", summary: "JSON Web Token", confidence: .medium, rule: .jsonWebToken(kubernetesID: "kubernetes-service-account-token")),
        Detector(id: "kubernetes-service-account-token", summary: "Kubernetes service-account token (a JWT with kubernetes.io claims)", rule: .reportedBy("jwt")),
        // Connection strings and headers
        Detector(
            id: "uri-password", summary: "Password in a URI's userinfo (postgres://user:password@host, …)",
            rule: .uriPassword(schemes: [
                "postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv", "redis", "rediss", "amqp", "amqps",
                "http", "https", "ftp", "ftps", "sftp", "smtp", "smtps", "ldap", "ldaps", "mssql", "sqlserver", "jdbc:postgresql",
                "jdbc:mysql", "clickhouse", "nats", "kafka", "git+https", "ssh",
            ])
        ),
        Detector(id: "http-bearer-token", summary: "Bearer credential (Authorization: Bearer …)", confidence: .medium, rule: .authorization(.bearer)),
        Detector(id: "http-basic-auth", summary: "Basic credential (Authorization: Basic base64(user:password))", rule: .authorization(.basic)),
        Detector(
            id: "generic-secret-assignment", summary: "A high-entropy value assigned to a password, secret, token or key name", confidence: .medium,
            rule: .assigned(.init(
                names: [
                    "password", "passwd", "pwd", "passphrase", "secret", "token", "api_key", "apikey", "api-key", "access_key",
                    "accesskey", "private_key", "privatekey", "client_secret", "auth_key", "authkey", "credential", "signing_key",
                    "encryption_key", "master_key",
                ],
                value: genericValue, length: 8...256, check: .secretLike
            ))
        ),
    ]
}
