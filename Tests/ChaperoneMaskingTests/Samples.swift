import Foundation
@testable import ChaperoneMasking

/// Generated, never real, credentials in every built-in format, for tests.
enum Samples {
    static func random(_ alphabet: String, _ count: Int, using rng: inout some RandomNumberGenerator) -> String {
        let characters = Array(alphabet)
        return String((0..<count).map { _ in characters.randomElement(using: &rng)! })
    }

    static let alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    static let upperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    static let hex = "0123456789abcdef"
    static let b64url = alnum + "_-"
    static let b64 = alnum + "+/"

    static func githubToken(_ prefix: String, using rng: inout some RandomNumberGenerator) -> String {
        let random = Self.random(alnum, 30, using: &rng)
        let checksum = Plausibility.base62(Plausibility.crc32(Array(random.utf8)), width: 6)
        return prefix + random + String(decoding: checksum, as: UTF8.self)
    }

    static func jwt(payload: String, using rng: inout some RandomNumberGenerator) -> String {
        func encode(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        return encode(#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#) + "." + encode(payload) + "." + random(b64url, 86, using: &rng)
    }

    static func privateKey(label: String = "RSA PRIVATE KEY", newline: String = "\n", using rng: inout some RandomNumberGenerator) -> String {
        var lines = ["-----BEGIN \(label)-----"]
        for _ in 0..<12 { lines.append(random(b64, 64, using: &rng)) }
        lines.append(random(b64, 20, using: &rng) + "==")
        lines.append("-----END \(label)-----")
        return lines.joined(separator: newline)
    }

    /// (detector id, secret, text around it with `%s` where the secret goes).
    static func all(using rng: inout some RandomNumberGenerator) -> [(String, String, String)] {
        let awsID = "AKIA" + random(upperDigits, 16, using: &rng)
        var awsSecret = random(b64, 37, using: &rng) + "a1Z"
        awsSecret = String(awsSecret.shuffled(using: &rng))
        let userPass = Data("deploy:\(random(alnum, 14, using: &rng))".utf8).base64EncodedString()
        return [
            ("aws-access-key-id", awsID, "export AWS_ACCESS_KEY_ID=%s\n"),
            ("aws-secret-access-key", awsSecret, "aws_secret_access_key = %s\n"),
            ("aws-secret-access-key", awsSecret, "[default]\naws_access_key_id = \(awsID)\nsecret = %s\n"),
            ("google-api-key", "AIza" + random(b64url, 35, using: &rng), "const key = \"%s\";"),
            ("google-oauth-client-secret", "GOCSPX-" + random(b64url, 28, using: &rng), "client_secret: %s"),
            ("google-oauth-access-token", "ya29." + random(b64url, 120, using: &rng), "token %s expired"),
            ("gcp-service-account-key-id", random(hex, 40, using: &rng), #"{"type": "service_account", "private_key_id": "%s", "#),
            ("azure-storage-account-key", random(b64, 86, using: &rng) + "==", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=%s;EndpointSuffix=core.windows.net"),
            ("azure-ad-client-secret", random(alnum, 3, using: &rng) + "8Q~" + random(alnum + "_~.-", 34, using: &rng), "AZURE_CLIENT_SECRET='%s'"),
            ("digitalocean-token", "dop_v1_" + random(hex, 64, using: &rng), "DO_TOKEN=%s"),
            ("heroku-api-key", "HRKU-" + random(b64url, 60, using: &rng), "heroku key: %s"),
            ("heroku-api-key", UUID().uuidString.lowercased(), "HEROKU_API_KEY=%s"),
            ("github-pat", githubToken("ghp_", using: &rng), "git clone https://x:%s@github.com/o/r"),
            ("github-oauth-token", githubToken("gho_", using: &rng), "token: %s"),
            ("github-user-token", githubToken("ghu_", using: &rng), "%s"),
            ("github-server-token", githubToken("ghs_", using: &rng), "GH=%s;"),
            ("github-refresh-token", githubToken("ghr_", using: &rng), "(%s)"),
            ("github-fine-grained-pat", "github_pat_" + random(alnum, 22, using: &rng) + "_" + random(alnum, 59, using: &rng), "use %s here"),
            ("gitlab-pat", "glpat-" + random(b64url, 20, using: &rng), "PRIVATE-TOKEN: %s"),
            ("gitlab-token", "glrt-" + random(b64url, 24, using: &rng), "runner %s"),
            ("npm-token", "npm_" + random(alnum, 36, using: &rng), "//registry.npmjs.org/:_authToken=%s"),
            ("pypi-token", "pypi-AgEIcHlwaS5vcmc" + random(b64url, 80, using: &rng), "password = %s"),
            ("dockerhub-pat", "dckr_pat_" + random(b64url, 27, using: &rng), "docker login -p %s"),
            ("databricks-token", "dapi" + random(hex, 32, using: &rng), "DATABRICKS_TOKEN=%s"),
            ("vault-token", "hvs." + random(b64url, 90, using: &rng), "VAULT_TOKEN=%s"),
            ("doppler-token", "dp.pt." + random(alnum, 43, using: &rng), "doppler %s"),
            ("sentry-token", "sntrys_" + random(b64, 80, using: &rng), "SENTRY_AUTH_TOKEN=%s"),
            ("sentry-token", "sntryu_" + random(hex, 64, using: &rng), "%s"),
            ("grafana-cloud-token", "glc_" + random(b64, 60, using: &rng) + "==", "GRAFANA=%s"),
            ("grafana-service-account-token", "glsa_" + random(alnum, 32, using: &rng) + "_" + random(hex, 8, using: &rng), "%s"),
            ("slack-token", "xoxb-123456789012-1234567890123-" + random(alnum, 24, using: &rng), "SLACK_BOT_TOKEN=%s"),
            ("slack-webhook-url", "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/" + random(alnum, 24, using: &rng), "webhook: %s"),
            ("stripe-secret-key", "sk_live_" + random(alnum, 32, using: &rng), "Stripe.api_key = '%s'"),
            ("stripe-webhook-secret", "whsec_" + random(alnum, 32, using: &rng), "%s"),
            ("twilio-api-key", "SK" + random(hex, 32, using: &rng), "sid=%s"),
            ("sendgrid-api-key", "SG." + random(b64url, 22, using: &rng) + "." + random(b64url, 43, using: &rng), "SENDGRID_API_KEY=%s"),
            ("shopify-token", "shpat_" + random(hex, 32, using: &rng), "%s"),
            ("openai-api-key", "sk-proj-" + random(b64url, 60, using: &rng) + "T3BlbkFJ" + random(b64url, 60, using: &rng), "OPENAI_API_KEY=%s"),
            ("openai-api-key", "sk-" + random(alnum, 20, using: &rng) + "T3BlbkFJ" + random(alnum, 20, using: &rng), "openai.api_key = \"%s\""),
            ("anthropic-api-key", "sk-ant-api03-" + random(b64url, 93, using: &rng) + "AA", "x-api-key: %s"),
            ("anthropic-admin-key", "sk-ant-admin01-" + random(b64url, 93, using: &rng) + "AA", "%s"),
            ("huggingface-token", "hf_" + random(alnum, 34, using: &rng), "HF_TOKEN=%s"),
            ("onepassword-service-account-token", "ops_eyJ" + random(b64url, 300, using: &rng), "OP_SERVICE_ACCOUNT_TOKEN=%s"),
            ("age-secret-key", "AGE-SECRET-KEY-1" + random("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, using: &rng), "# secret key: %s"),
            ("private-key", privateKey(using: &rng), "key:\n%s\nend"),
            ("private-key", privateKey(label: "PRIVATE KEY", newline: "\\n", using: &rng), #"{"private_key": "%s\n"}"#),
            ("private-key", privateKey(label: "OPENSSH PRIVATE KEY", using: &rng), "%s"),
            ("jwt", jwt(payload: #"{"sub":"1234567890","name":"Jo","iat":1516239022}"#, using: &rng), "Authorization: Bearer %s"),
            ("kubernetes-service-account-token", jwt(payload: #"{"iss":"https://kubernetes.default.svc.cluster.local","kubernetes.io":{"namespace":"agents"},"sub":"system:serviceaccount:agents:default"}"#, using: &rng), "cat token: %s"),
            ("uri-password", random(alnum, 16, using: &rng), "DATABASE_URL=postgres://app:%s@db.internal:5432/app"),
            ("uri-password", random(alnum, 12, using: &rng) + "!x", "redis://default:%s@cache:6379/0"),
            ("http-bearer-token", random(alnum, 40, using: &rng), "curl -H 'Authorization: Bearer %s' https://api"),
            ("http-basic-auth", userPass, "Authorization: Basic %s\n"),
            ("generic-secret-assignment", "Xq7" + random(alnum, 20, using: &rng), "DB_PASSWORD=%s\n"),
            ("generic-secret-assignment", "s3cr3t-" + random(alnum, 16, using: &rng), #"{"client_secret": "%s"}"#),
        ]
    }
}

/// A deterministic generator so a failing case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
