import AsyncHTTPClient
public import ChaperoneCore
import Foundation
import JWTKit
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// An issuer's public keys (a JWKS from a URL or a file), re-read periodically and when a token
/// names a key the set does not hold, and the signature check of tokens against them. Shared by
/// the pods' service-account tokens and the approvers' OIDC ID tokens.
public final class SigningKeySet: Sendable {
    public enum Source: Sendable {
        case url(String)
        case file(String)
    }

    private let source: Source
    /// The configuration field errors name (`authentication`, `approvals.oidc`).
    private let field: String
    private let logger: Logger
    private let httpClient: HTTPClient?
    private let apiTokenFile: String?
    private let state = NIOLockedValueBox(State())

    private struct State {
        var keys = JWTKeyCollection()
        /// Key ids in the set: a token naming another is refused (jwt-kit would fall back to a default key).
        var keyIDs: Set<String> = []
        var lastAttempt: Double = -.infinity
    }

    /// `kubernetes` is used for the API server's own JWKS endpoint (cluster CA and the
    /// collector's token); any other URL is public and verified against the system roots.
    public init(source: Source, field: String, kubernetes: KubernetesAPISettings?, logger: Logger) throws {
        self.source = source
        self.field = field
        self.logger = logger
        if case .url(let url) = source {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            let inCluster = URL(string: url)?.host.map { $0.hasPrefix("kubernetes.default") } ?? false
            if inCluster, let kubernetes {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(kubernetes.caFile))
                self.apiTokenFile = kubernetes.tokenFile
            } else {
                self.apiTokenFile = nil
            }
            self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        } else {
            self.httpClient = nil
            self.apiTokenFile = nil
        }
    }

    public func shutdown() async throws {
        try await self.httpClient?.shutdown()
    }

    var sourceDescription: String {
        switch self.source {
        case .url(let url): url
        case .file(let path): path
        }
    }

    /// Loads the key set; called at start-up (readiness waits for it) and periodically.
    public func refresh() async throws {
        self.state.withLockedValue { $0.lastAttempt = Date().timeIntervalSince1970 }
        let json = try await self.fetch()
        let keys = JWTKeyCollection()
        do {
            try await keys.add(jwksJSON: json)
        } catch {
            throw ConfigError(field: self.field, message: "the JWKS from \(self.sourceDescription) is not a key set: \(error)")
        }
        struct KeySet: Decodable {
            struct Key: Decodable { var kid: String? }
            var keys: [Key]
        }
        let keyIDs = Set(((try? JSONDecoder().decode(KeySet.self, from: Data(json.utf8)))?.keys ?? []).compactMap(\.kid))
        self.state.withLockedValue {
            $0.keys = keys
            $0.keyIDs = keyIDs
        }
    }

    private func fetch() async throws -> String {
        switch self.source {
        case .file(let path):
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigError(field: "\(self.field).jwks_file", message: "cannot read \(path): \(error.localizedDescription)")
            }
        case .url(let url):
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            if let tokenFile = self.apiTokenFile, let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) {
                request.headers.add(name: "Authorization", value: "Bearer \(token.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            let response = try await self.httpClient!.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else {
                throw ConfigError(field: "\(self.field).jwks_url", message: "\(url) answered HTTP \(response.status.code)")
            }
            return String(buffer: body)
        }
    }

    /// The token's claims if its signature verifies against a key of the set. A token naming an
    /// unknown key re-reads the set once (a rotated issuer key), at most every 10 seconds.
    func verify<Claims: JWTPayload>(_ token: String, as type: Claims.Type, retryOnUnknownKey: Bool = true) async throws(TokenRejection) -> Claims {
        let (keys, keyIDs) = self.state.withLockedValue { ($0.keys, $0.keyIDs) }
        guard let header = JWTHeaderPeek.header(of: token) else { throw .malformed }
        do {
            guard let kid = header.kid else { throw JWTError.missingKIDHeader }
            guard keyIDs.contains(kid) else { throw JWTError.unknownKID(JWKIdentifier(string: kid)) }
            return try await keys.verify(token, as: Claims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .signatureVerificationFailed: throw .badSignature
            case .malformedToken: throw .malformed
            case .unknownKID, .missingKIDHeader, .noKeyProvided:
                let lastAttempt = self.state.withLockedValue { $0.lastAttempt }
                guard retryOnUnknownKey, Date().timeIntervalSince1970 - lastAttempt > 10 else { throw .unknownKey }
                do {
                    try await self.refresh()
                } catch {
                    self.logger.warning("auth.jwks_refresh_failed", metadata: ["source": "\(self.sourceDescription)", "error": "\(error)"])
                    throw .unavailable
                }
                return try await self.verify(token, as: Claims.self, retryOnUnknownKey: false)
            case .unsupportedAlgorithm: throw .unknownKey
            default: throw .malformed
            }
        } catch {
            throw .malformed
        }
    }
}

/// A JWT's header and claims read without verifying anything: to route a token to the
/// verifier of its issuer, never to trust it.
enum JWTHeaderPeek {
    struct Header: Decodable {
        var kid: String?
    }

    struct Issuer: Decodable {
        var iss: String?
    }

    /// nil if the token is not three base64url parts with a JSON header.
    static func header(of token: String) -> Header? {
        Self.part(0, of: token).flatMap { try? JSONDecoder().decode(Header.self, from: $0) }
    }

    /// The unverified `iss` claim.
    static func issuer(of token: String) -> String? {
        Self.part(1, of: token).flatMap { try? JSONDecoder().decode(Issuer.self, from: $0) }?.iss
    }

    private static func part(_ index: Int, of token: String) -> Data? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        var base64 = parts[index].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
