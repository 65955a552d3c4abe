import Core
/// The SSRF guard for webhook targets. A webhook URL comes from a table row that anyone
/// with write access to `webhook_configs` controls, and the service sends it from inside
/// the network: without the guard such a row could make ChangeRelay post to the cloud
/// metadata service, to an admin port on localhost, or to anything on the private network.
///
/// `check(url:)` accepts http and https only, resolves the host, and refuses the URL when
/// any address it resolves to is not public (`classify(_:)`). It returns the address to
/// pin the request to (`HTTPRequest.pinnedAddress`), so libcurl connects to an address
/// that was checked and never resolves the name again: a DNS answer that changes between
/// check and connect (rebinding) cannot redirect the request.
///
/// The guard is for webhook targets only; the operator's own endpoints (such as
/// `functions.base_url`) are not checked. Names are looked up through `HostLookups`, which
/// never blocks the caller: the dispatcher's loop must not wait on DNS.
public struct TargetGuard: Sendable {
    /// The configuration setting that relaxes the guard, named in every refusal it lifts.
    public static let allowSetting = "webhooks.allow_private_targets"

    /// `webhooks.allow_private_targets`: when true, any address passes (the scheme rule
    /// still applies, and the request is still pinned to the address that was resolved).
    public let allowPrivateTargets: Bool
    private let lookups: HostLookups

    public init(allowPrivateTargets: Bool = false, lookups: HostLookups = HostLookups()) {
        self.allowPrivateTargets = allowPrivateTargets
        self.lookups = lookups
    }

    /// The target of `url` and the address to send it to, or why not. A refusal is final
    /// for this URL (send nothing, do not retry) unless `TargetRefused.isRetryable`. A name
    /// is looked up through `lookups`, off the caller's thread.
    public func check(url: String) async throws(TargetRefused) -> CheckedTarget {
        let target = try TargetURL(parsing: url)
        if let literal = numericAddress(target.host) { return try verdict(url, target, [literal]) }
        switch await lookups.addresses(of: target.host) {
        case .success(let addresses): return try verdict(url, target, addresses)
        case .failure(let error): throw TargetRefused(.unresolvable(error.message), host: target.host)
        }
    }

    private func verdict(_ url: String, _ target: TargetURL, _ addresses: [IPAddress]) throws(TargetRefused) -> CheckedTarget {
        guard !addresses.isEmpty else { throw TargetRefused(.unresolvable("no address"), host: target.host) }
        if !allowPrivateTargets {
            for address in addresses {
                let range = classify(address)
                if !range.isPublic { throw TargetRefused(.forbiddenAddress(address, range), host: target.host) }
            }
        }
        return CheckedTarget(url: url, target: target, addresses: addresses)
    }
}

/// A URL the guard let through, and where to connect for it.
public struct CheckedTarget: Sendable, Equatable {
    /// The URL as given: send exactly this, with `pinnedAddress`.
    public let url: String
    /// The URL's host as libcurl reads it (IPv6 without brackets or zone).
    public let host: String
    public let port: Int
    /// Every address the host resolved to, each one checked.
    public let addresses: [IPAddress]
    /// The address to connect to: the first IPv4 address, else the first address (an
    /// IPv4-mapped one as the IPv4 address it maps to). A pinned request has no second
    /// address to fall back on, and IPv4 is the family a webhook endpoint is most often
    /// reachable on from a server whose IPv6 may be configured but not routed.
    public let address: IPAddress
    /// The zone of a link-local IPv6 literal URL (`[fe80::1%25eth0]`), which that address
    /// needs to be reachable. Dropped for any other address: the kernel ignores it there,
    /// and getaddrinfo (which libcurl hands the pin to) refuses an interface name on it.
    public let zone: String?

    /// `addresses` is not empty.
    init(url: String, target: TargetURL, addresses: [IPAddress]) {
        self.url = url
        host = target.host
        port = target.port
        self.addresses = addresses
        let candidates = addresses.map(\.unmapped)
        address = candidates.first { $0.family == .v4 } ?? candidates[0]
        zone = linkLocalIPv6.contains(address) ? target.zone : nil
    }

    /// The value for `HTTPRequest.pinnedAddress`: the address literal, with `%zone` when
    /// there is one.
    public var pinnedAddress: String {
        zone.map { "\(address)%\($0)" } ?? address.description
    }
}

private let linkLocalIPv6: IPPrefix = "fe80::/10"

extension CheckedTarget: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "\(redactedURL(url)) via \(pinnedAddress)" }

    public var debugDescription: String {
        "CheckedTarget(\(redactedURL(url)), host: \(host), port: \(port), addresses: \(addresses), pinned: \(pinnedAddress))"
    }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "url": redactedURL(url), "host": host, "port": port, "addresses": addresses, "pinnedAddress": pinnedAddress,
        ])
    }
}

/// Why the guard did not let a webhook URL through. Its text names the host, the address
/// and its class, and the setting that would allow it; never the URL itself, whose
/// user-info, path or query may hold a credential (`https://hooks.example/T0/B0/secret`).
public struct TargetRefused: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// libcurl's URL parser rejected it, or it has no host, or a host or zone the guard
        /// cannot vouch for. The text says which.
        case malformedURL(String)
        /// Any scheme but http and https (lower case here).
        case schemeNotAllowed(String)
        /// The resolver found no address; its reason.
        case unresolvable(String)
        /// The host resolved to (or is) this address, which is not public.
        case forbiddenAddress(IPAddress, AddressClass)
    }

    public var reason: Reason
    /// The URL's host as libcurl reads it; nil when the URL did not get that far.
    public var host: String?

    public init(_ reason: Reason, host: String?) {
        self.reason = reason
        self.host = host
    }

    /// Whether checking the same URL later can pass: only a host that did not resolve
    /// (DNS may answer later, as for `HTTPError.Kind.couldNotResolve`). Everything else
    /// is decided by the URL and the address and fails the delivery at once.
    public var isRetryable: Bool {
        if case .unresolvable = reason { return true }
        return false
    }

    public var description: String {
        let named = host.map { "host \($0)" } ?? "the URL"
        switch reason {
        case .malformedURL(let why):
            return "webhook URL refused: " + (host.map { "host \($0): " } ?? "") + why
        case .schemeNotAllowed(let scheme):
            return "webhook URL refused: scheme \(scheme) is not allowed, only http and https"
        case .unresolvable(let why):
            return "webhook URL refused: \(named) did not resolve (\(why))"
        case .forbiddenAddress(let address, let range):
            let found = host == address.description
                ? "\(named) is \(range)" : "\(named) resolves to \(address), which is \(range)"
            return "webhook URL refused: \(found); set \(TargetGuard.allowSetting) = true to allow non-public addresses"
        }
    }
}
