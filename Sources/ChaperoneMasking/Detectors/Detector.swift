/// How sure a detector is that what it matched is a live credential.
public enum Confidence: String, Sendable, Comparable, CaseIterable {
    case low, medium, high

    public static func < (a: Confidence, b: Confidence) -> Bool {
        let order: [Confidence] = [.low, .medium, .high]
        return order.firstIndex(of: a)! < order.firstIndex(of: b)!
    }
}

/// One credential format: its id (what findings and placeholders name), how sure a match is,
/// the keywords that make the one-pass prefilter look closer, and the rule that confirms a hit.
/// Detectors are data: adding one is adding a value to `DetectorCatalog`, not writing a scanner.
public struct Detector: Sendable {
    public let id: String
    public let summary: String
    public let confidence: Confidence
    public let rule: Rule

    public init(id: String, summary: String, confidence: Confidence = .high, rule: Rule) {
        self.id = id
        self.summary = summary
        self.confidence = confidence
        self.rule = rule
    }

    /// How a keyword hit becomes a match.
    public enum Rule: Sendable {
        /// A token that starts with one of the prefixes (exact case) and goes on with body characters.
        case prefixed(PrefixedToken)
        /// A value assigned to a name (`NAME = value`, `"name": "value"`, `name: value`).
        case assigned(AssignedValue)
        /// A PEM private-key block, from its BEGIN line to its END line, real or escaped newlines.
        case privateKeyBlock
        /// A JSON Web Token; `kubernetesID` names the detector used when the claims show a
        /// Kubernetes service-account token.
        case jsonWebToken(kubernetesID: String)
        /// Reported by another detector's rule (for example Kubernetes tokens by the JWT rule).
        case reportedBy(String)
        /// The password in `scheme://user:password@host`.
        case uriPassword(schemes: [String])
        /// The credential after an `Authorization` scheme word.
        case authorization(AuthorizationScheme)
        /// Azure AD client secrets: three characters, a digit, `Q~`, then 31–34 characters.
        case azureClientSecret
    }

    public enum AuthorizationScheme: String, Sendable { case bearer, basic }

    public struct PrefixedToken: Sendable {
        public var prefixes: [String]
        public var body: ByteSet
        public var length: ClosedRange<Int>
        /// Trailing `=` padding allowed after the body.
        public var padding: Int
        public var check: Check?
        /// After this token, look for a companion secret (an AWS secret key after its key id).
        public var companion: Companion?

        public init(
            prefixes: [String], body: ByteSet, length: ClosedRange<Int>, padding: Int = 0,
            check: Check? = nil, companion: Companion? = nil
        ) {
            self.prefixes = prefixes
            self.body = body
            self.length = length
            self.padding = padding
            self.check = check
            self.companion = companion
        }
    }

    public struct AssignedValue: Sendable {
        /// Keywords that, found in a name, make it a candidate (lower case).
        public var names: [String]
        /// Every one of these groups must have a member in the name (lower case).
        public var nameMustContain: [[String]]
        public var value: ByteSet
        public var length: ClosedRange<Int>
        public var check: Check?

        public init(names: [String], nameMustContain: [[String]] = [], value: ByteSet, length: ClosedRange<Int>, check: Check? = nil) {
            self.names = names
            self.nameMustContain = nameMustContain
            self.value = value
            self.length = length
            self.check = check
        }
    }

    /// Extra validation after the shape matched.
    public enum Check: Sendable {
        /// GitHub's CRC32 checksum in the last six characters: valid → high confidence; invalid →
        /// no match for the classic 36-character body (every real one has the checksum), medium
        /// confidence for longer bodies.
        case githubChecksum
        /// Contains the marker → high confidence; without it → the given confidence, or no match if nil.
        case marker(String, otherwise: Confidence?)
        /// Must end with the suffix.
        case suffix(String)
        /// Hooks URL: T…/B…/secret.
        case slackWebhook
        /// Fixed-position separator characters: (offset from the start of the body, byte).
        case separators([(Int, UInt8)])
        /// Databricks: 32 lower-case hex, optionally `-<digit>`.
        case databricks
        /// A mix of upper, lower and digits (AWS secret keys).
        case mixedCase
        /// The body starts with a digit (Slack tokens: `xoxb-<team id>-…`, `xapp-1-…`).
        case leadingDigit
        /// Looks like a real secret value: entropy, classes, not a placeholder.
        case secretLike
        /// A UUID.
        case uuid
    }

    public enum Companion: Sendable {
        /// A 40-character AWS secret access key within 200 bytes after the key id.
        case awsSecretKey(detectorID: String)
    }
}
