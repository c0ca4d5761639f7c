import ChaperoneCore
import Foundation
import JWTKit
import Logging

/// A person who signed in with an OIDC ID token from the organisation's identity provider.
struct Approver: Sendable, Equatable {
    /// The `username_claim` (an email by default); what decisions are recorded under.
    var name: String
    /// The token's `sub`.
    var subject: String
    var groups: [String]
    /// Whether one of the groups is an approver group.
    var mayApprove: Bool

    /// True if this person is, by name or subject, the one the request says started the run.
    func initiated(_ initiator: String?) -> Bool {
        guard let initiator = initiator?.trimmingCharacters(in: .whitespaces).lowercased(), !initiator.isEmpty else { return false }
        return initiator == self.name.lowercased() || initiator == self.subject.lowercased()
    }
}

/// The claims of an ID token: the registered ones typed, and every other string or string-list
/// claim by name, since which claims hold the username and the groups is configuration.
struct IDTokenClaims: JWTPayload {
    var iss: IssuerClaim?
    var sub: SubjectClaim?
    var aud: AudienceClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var strings: [String: [String]] = [:]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.iss = try container.decodeIfPresent(IssuerClaim.self, forKey: Key(stringValue: "iss"))
        self.sub = try container.decodeIfPresent(SubjectClaim.self, forKey: Key(stringValue: "sub"))
        self.aud = try container.decodeIfPresent(AudienceClaim.self, forKey: Key(stringValue: "aud"))
        self.exp = try container.decodeIfPresent(ExpirationClaim.self, forKey: Key(stringValue: "exp"))
        self.nbf = try container.decodeIfPresent(NotBeforeClaim.self, forKey: Key(stringValue: "nbf"))
        for key in container.allKeys where !["iss", "sub", "aud", "exp", "nbf"].contains(key.stringValue) {
            if let value = try? container.decode(String.self, forKey: key) {
                self.strings[key.stringValue] = [value]
            } else if let values = try? container.decode([String].self, forKey: key) {
                self.strings[key.stringValue] = values
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(self.iss, forKey: Key(stringValue: "iss"))
        try container.encodeIfPresent(self.sub, forKey: Key(stringValue: "sub"))
        try container.encodeIfPresent(self.aud, forKey: Key(stringValue: "aud"))
        try container.encodeIfPresent(self.exp, forKey: Key(stringValue: "exp"))
        try container.encodeIfPresent(self.nbf, forKey: Key(stringValue: "nbf"))
        for (key, values) in self.strings { try container.encode(values, forKey: Key(stringValue: key)) }
    }

    /// Checked by `ApproverVerifier`, so each refusal has its own reason.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies approvers' OIDC ID tokens: signature against the provider's JWKS, then issuer,
/// audience, expiry and not-before; reads the username and groups claims.
final class ApproverVerifier: Sendable {
    let settings: CollectorConfiguration.OIDC
    let keys: SigningKeySet

    init(settings: CollectorConfiguration.OIDC, logger: Logger) throws {
        self.settings = settings
        self.keys = try SigningKeySet(source: settings.keys, field: "approvals.oidc", kubernetes: nil, logger: logger)
    }

    /// Whether a token claims to come from the approvers' identity provider (unverified; routing only).
    func claimsIssuer(_ token: String) -> Bool {
        JWTHeaderPeek.issuer(of: token) == self.settings.issuer
    }

    func authenticate(bearer token: String) async throws(TokenRejection) -> Approver {
        let claims = try await self.keys.verify(token, as: IDTokenClaims.self)
        let now = Date().timeIntervalSince1970
        guard claims.iss?.value == self.settings.issuer else { throw .wrongIssuer }
        guard let audience = claims.aud, audience.value.contains(self.settings.audience) else { throw .wrongAudience }
        guard let exp = claims.exp else { throw .malformed }
        guard exp.value.timeIntervalSince1970 > now else { throw .expired }
        if let nbf = claims.nbf, nbf.value.timeIntervalSince1970 > now + 60 { throw .notYetValid }
        guard let subject = claims.sub?.value, !subject.isEmpty else { throw .malformed }
        let name = claims.strings[self.settings.usernameClaim]?.first ?? subject
        let groups = claims.strings[self.settings.groupsClaim] ?? []
        return Approver(
            name: name, subject: subject, groups: groups,
            mayApprove: !Set(groups).isDisjoint(with: self.settings.approverGroups))
    }
}
