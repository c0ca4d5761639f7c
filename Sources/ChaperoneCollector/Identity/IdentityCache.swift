import ChaperoneCore
import Crypto
import Foundation
import NIOConcurrencyHelpers

/// Identities already verified, by the SHA-256 of their token (the token itself is not kept),
/// each until a deadline. Bounded: past 10,000 entries it starts over.
final class IdentityCache: Sendable {
    private let entries = NIOLockedValueBox([String: (identity: PodIdentity, until: Double)]())

    func identity(for token: String, now: Double) -> PodIdentity? {
        guard let entry = self.entries.withLockedValue({ $0[Self.key(token)] }), entry.until > now else { return nil }
        return entry.identity
    }

    func remember(_ identity: PodIdentity, for token: String, until: Double) {
        let key = Self.key(token)
        self.entries.withLockedValue {
            if $0.count > 10_000 { $0.removeAll(keepingCapacity: true) }
            $0[key] = (identity, until)
        }
    }

    private static func key(_ token: String) -> String {
        CanonicalJSON.sha256Hex(Array(token.utf8))
    }
}
