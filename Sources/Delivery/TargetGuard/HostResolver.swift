#if canImport(Glibc)
import Glibc
#endif

/// Turns a host name into the addresses a connection to it could use. The guard asks it
/// only for names, through `HostLookups`: numeric hosts never reach it (see
/// `numericAddress(_:)`). Tests give the lookups a table instead, so they need no DNS.
public protocol HostResolver: Sendable {
    /// Every address `host` resolves to, in the order a client should try them. May block.
    func addresses(of host: String) throws(HostResolutionError) -> [IPAddress]
}

/// Why a host name gave no address.
public struct HostResolutionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The system resolver: `getaddrinfo`, so `/etc/hosts`, nsswitch and the DNS configuration
/// count as they do for every other program on the host. It asks for both families and
/// without `AI_ADDRCONFIG`, so the guard sees every address a name has, including an AAAA
/// record this host could not route to.
///
/// It blocks the calling thread for as long as the lookup takes (bounded by the resolver's
/// own timeouts, see resolv.conf). `HostLookups` calls it on a thread of its own, never
/// on the dispatcher's loop or Swift's cooperative pool.
public struct SystemResolver: HostResolver {
    public init() {}

    public func addresses(of host: String) throws(HostResolutionError) -> [IPAddress] {
        try lookUp(host, flags: 0)
    }
}

/// The address a numeric host means, read as libc reads it (`inet_aton` forms: `127.1`,
/// `2130706433`, `0x7f000001`, `0177.0.0.1`; any IPv6 text); nil for a name. No lookup
/// happens (`AI_NUMERICHOST`), so it is safe to call anywhere.
func numericAddress(_ host: String) -> IPAddress? {
    try? lookUp(host, flags: AI_NUMERICHOST).first
}

/// `getaddrinfo` for TCP, its list copied into values and freed here, once.
private func lookUp(_ host: String, flags: Int32) throws(HostResolutionError) -> [IPAddress] {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = flags
    var list: UnsafeMutablePointer<addrinfo>?
    let code = getaddrinfo(host, nil, &hints, &list)
    guard code == 0 else {
        let reason = code == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(code))
        throw HostResolutionError(reason)
    }
    defer { freeaddrinfo(list) }
    var addresses: [IPAddress] = []
    var entry = list
    while let current = entry {
        if let socketAddress = current.pointee.ai_addr, let address = IPAddress(socketAddress: socketAddress),
           !addresses.contains(address) {
            addresses.append(address)
        }
        entry = current.pointee.ai_next
    }
    guard !addresses.isEmpty else { throw HostResolutionError("no IPv4 or IPv6 address") }
    return addresses
}
