#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as bytes in network order: what a resolver returned, and what
/// the SSRF classifier looks at. It holds no zone (scope) id: the class of an address does
/// not depend on the interface it is reached through.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case v4, v6 }

    /// 4 bytes (IPv4) or 16 (IPv6), most significant first.
    public let bytes: [UInt8]

    /// Nil unless `bytes` holds 4 or 16 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        bytes = [a, b, c, d]
    }

    /// A strict literal, as `inet_pton` reads it: a dotted quad, or IPv6 text without
    /// brackets or zone. Shorthand such as `127.1` is not accepted here; host names and
    /// their numeric spellings go through the resolver, which reads them as libc does.
    public init?(_ literal: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, literal, &v6) == 1 else { return nil }
        bytes = withUnsafeBytes(of: &v6) { Array($0) }
    }

    /// The address in a `sockaddr_in` or `sockaddr_in6` (what getaddrinfo returns); nil
    /// for any other family.
    init?(socketAddress: UnsafePointer<sockaddr>) {
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            bytes = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                withUnsafeBytes(of: address.pointee.sin_addr) { Array($0) }
            }
        case AF_INET6:
            bytes = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                withUnsafeBytes(of: address.pointee.sin6_addr) { Array($0) }
            }
        default:
            return nil
        }
    }

    public var family: Family { bytes.count == 4 ? .v4 : .v6 }

    /// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for; any
    /// other address unchanged. A socket connecting to either reaches the same host.
    public var unmapped: IPAddress {
        guard family == .v6, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return self }
        return IPAddress(bytes[12], bytes[13], bytes[14], bytes[15])
    }

    /// The IPv4 address in the four bytes starting at `offset`, each XORed with `mask`.
    func ipv4(at offset: Int, xor mask: UInt8 = 0) -> IPAddress {
        IPAddress(bytes[offset] ^ mask, bytes[offset + 1] ^ mask, bytes[offset + 2] ^ mask, bytes[offset + 3] ^ mask)
    }

    /// The canonical text (`inet_ntop`: RFC 5952 for IPv6), which `IPAddress(_:)` and
    /// libcurl both read back.
    public var description: String {
        let family = family == .v4 ? AF_INET : AF_INET6
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        precondition(written != nil, "inet_ntop failed on a 4- or 16-byte address")
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address range: the addresses whose first `length` bits equal those of `address`.
struct IPPrefix: Sendable, ExpressibleByStringLiteral {
    let address: IPAddress
    let length: Int

    /// A prefix written as `address/length`, for the classifier's built-in tables: a
    /// malformed one is a programming error, caught by the first classification.
    init(stringLiteral text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let length = Int(parts[1]),
              length >= 0, length <= address.bytes.count * 8
        else { preconditionFailure("malformed built-in prefix \(text)") }
        self.address = address
        self.length = length
    }

    func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.family == address.family else { return false }
        let whole = length / 8, rest = length % 8
        guard candidate.bytes[0..<whole] == address.bytes[0..<whole] else { return false }
        guard rest > 0 else { return true }
        let mask = UInt8(0xFF) << (8 - rest)
        return candidate.bytes[whole] & mask == address.bytes[whole] & mask
    }
}
