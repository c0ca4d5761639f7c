import ChaperoneCore

/// Where a base-URL-mode request goes: `/<upstream>/<rest>` → `<baseURL>/<rest>`.
struct UpstreamTarget: Sendable, Equatable {
    /// The configured upstream name (first path segment).
    var name: String
    /// Path below the upstream, with a leading `/`, without the query.
    var path: String
    /// Query string including its `?`, or empty.
    var query: String
}

enum RouteError: Error, Equatable {
    /// Not an origin-form path (`/name/...`): absolute URIs, `*`, or an empty path.
    case notBaseURLPath
    /// A `.` or `..` segment, literal or percent-encoded, which could escape a base URL's prefix.
    case dotSegment
    case unknownUpstream(String)
}

extension UpstreamTarget {
    /// Splits a request URI into the upstream name and what follows it.
    static func parse(uri: String, knownUpstreams: some Collection<String>) throws(RouteError) -> UpstreamTarget {
        guard uri.hasPrefix("/") else { throw .notBaseURLPath }
        let pathEnd = uri.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? uri.endIndex
        let fullPath = uri[..<pathEnd]
        let query = uri[pathEnd...].prefix(while: { $0 != "#" })
        let afterSlash = fullPath.dropFirst()
        let nameEnd = afterSlash.firstIndex(of: "/") ?? afterSlash.endIndex
        let name = String(afterSlash[..<nameEnd])
        guard !name.isEmpty else { throw .notBaseURLPath }
        var rest = String(afterSlash[nameEnd...])
        if rest.isEmpty { rest = "/" }
        for segment in rest.split(separator: "/", omittingEmptySubsequences: false) {
            let decoded = segment.lowercased().replacing("%2e", with: ".")
            if decoded == "." || decoded == ".." { throw .dotSegment }
        }
        guard knownUpstreams.contains(name) else { throw .unknownUpstream(name) }
        return UpstreamTarget(name: name, path: rest, query: String(query))
    }
}
