import ChaperoneCore
import NIOHTTP1

/// Which headers cross the proxy. Hop-by-hop headers never do (RFC 9110 §7.6.1); the agent's
/// credentials never do (the sidecar injects the real one); `x-chaperone-*` headers are for the
/// sidecar only.
enum HeaderPolicy {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Headers that can carry a provider credential, whatever the provider.
    static let credentials: Set<String> = ["authorization", "x-api-key", "api-key", "x-goog-api-key"]

    /// The agent's request headers as they go upstream, without the credential (added by the caller).
    static func upstreamRequestHeaders(from agent: HTTPHeaders) -> HTTPHeaders {
        let listed = Self.connectionTokens(agent)
        var out = HTTPHeaders()
        out.reserveCapacity(agent.count + 2)
        for (name, value) in agent {
            let lowered = name.lowercased()
            if Self.hopByHop.contains(lowered) || listed.contains(lowered) || Self.credentials.contains(lowered) { continue }
            switch lowered {
            // Set by the HTTP client from the target URL and the body it sends.
            case "host", "content-length", "expect": continue
            // The proxy reads the response to audit it, so it asks for it uncompressed.
            case "accept-encoding": continue
            default:
                if lowered.hasPrefix("x-chaperone-") { continue }
                out.add(name: name, value: value)
            }
        }
        out.add(name: "accept-encoding", value: "identity")
        return out
    }

    /// The upstream's response headers as they go to the agent.
    static func agentResponseHeaders(from upstream: HTTPHeaders) -> HTTPHeaders {
        let listed = Self.connectionTokens(upstream)
        var out = HTTPHeaders()
        out.reserveCapacity(upstream.count + 2)
        for (name, value) in upstream {
            let lowered = name.lowercased()
            if Self.hopByHop.contains(lowered) || listed.contains(lowered) { continue }
            out.add(name: name, value: value)
        }
        return out
    }

    private static func connectionTokens(_ headers: HTTPHeaders) -> Set<String> {
        var tokens: Set<String> = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                tokens.insert(token.trimmingWhitespace().lowercased())
            }
        }
        return tokens
    }

    /// Size of the header block as sent (names, values, ": " and CRLF), for the header limits.
    static func byteCount(_ headers: HTTPHeaders) -> Int {
        headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
    }
}
