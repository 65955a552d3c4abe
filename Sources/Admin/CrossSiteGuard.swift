/// Keeps web pages on other sites away from the admin server. The default listener is on
/// loopback without a token, where any page the operator has open can make the browser send
/// requests to it: a `POST` that re-queues deliveries needs no response to do harm, and a page
/// whose name is made to resolve to 127.0.0.1 (DNS rebinding) could read the API too. A
/// bearer token stops both (a browser never adds one by itself); without one, the API answers
/// only requests addressed to `localhost` or an IP address, and a state-changing request only
/// from its own origin. curl, Prometheus and the dashboard itself send what passes.
struct CrossSiteGuard: Sendable {
    /// Whether a bearer token is required (then the API is safe from pages by itself).
    var hasToken: Bool

    /// Why the request is refused, or nil. `authority` is the `Host` the client addressed,
    /// `origin` and `fetchSite` the `Origin` and `Sec-Fetch-Site` headers a browser adds.
    func refusal(for endpoint: AdminEndpoint, authority: String?, origin: String?, fetchSite: String?) -> String? {
        if endpoint.method != "GET" {
            if let fetchSite, fetchSite != "same-origin", fetchSite != "none" {
                return "a request from another site (Sec-Fetch-Site: \(fetchSite)) cannot change anything here"
            }
            if let origin {
                guard let authority, Self.authority(ofOrigin: origin) == authority.lowercased() else {
                    return "a request from another origin cannot change anything here"
                }
            }
        }
        if !hasToken, !endpoint.isOpen, let authority, !Self.isLocalOrLiteral(authority) {
            return "without admin.token_file the API answers only requests addressed to localhost or an IP address, not \(authority.prefix(100))"
        }
        return nil
    }

    /// `http://host:port` → `host:port`, lowercased; an `https:` origin too (the dashboard
    /// behind a TLS-terminating proxy that passes the `Host` on); nil for any other scheme.
    static func authority(ofOrigin origin: String) -> String? {
        let origin = origin.lowercased()
        guard let scheme = ["http://", "https://"].first(where: origin.hasPrefix) else { return nil }
        return String(origin.dropFirst(scheme.count))
    }

    /// `localhost`, an IPv4 address or a bracketed IPv6 one, with or without a port.
    static func isLocalOrLiteral(_ authority: String) -> Bool {
        var host = Substring(authority.lowercased())
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let rest = host[host.index(after: close)...]
            return rest.isEmpty || (rest.hasPrefix(":") && isASCIIDigits(rest.dropFirst()))
        }
        if let colon = host.lastIndex(of: ":") {
            guard isASCIIDigits(host[host.index(after: colon)...]) else { return false }
            host = host[..<colon]
        }
        if host == "localhost" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && isASCIIDigits(part) && (Int(part) ?? 256) <= 255
        }
    }

    /// ASCII digits only, or nothing (an empty port is allowed). Not `Character.isNumber`, which also holds for
    /// `١` or `½`: the Host header is the client's to choose, and `Int` cannot read those.
    private static func isASCIIDigits(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }
}
