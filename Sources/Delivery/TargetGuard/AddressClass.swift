/// What an address is for, as far as a webhook is concerned: public, or one of the ranges
/// a request from this service must not reach unless the operator allows it (its own
/// host, the internal network, the cloud's metadata service, addresses with no single
/// destination).
///
/// The ranges follow the IANA IPv4 and IPv6 Special-Purpose Address Registries, the
/// multicast registries and the IPv6 address space registry; see `classify(_:)`.
public indirect enum AddressClass: Sendable, Hashable, CustomStringConvertible {
    /// Globally reachable unicast: the only class a webhook may go to by default.
    case publicUnicast
    /// 0.0.0.0/8 ("this network"; 0.0.0.0 is "this host") and `::`: a connection to
    /// them reaches the local host.
    case unspecified
    /// 127.0.0.0/8, `::1`.
    case loopback
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918).
    case privateUse
    /// 100.64.0.0/10 (RFC 6598): carrier-grade NAT and, on some clouds, internal services.
    case sharedAddressSpace
    /// 169.254.0.0/16, fe80::/10.
    case linkLocal
    /// A well-known instance metadata endpoint (credentials, user data) inside the range
    /// given: 169.254.169.254 (AWS, GCP, Azure, OpenStack, …), fd00:ec2::254 (AWS),
    /// 100.100.100.200 (Alibaba Cloud).
    case cloudMetadata(AddressClass)
    /// fc00::/7 (RFC 4193), the IPv6 counterpart of private-use.
    case uniqueLocal
    /// fec0::/10, deprecated by RFC 3879 but still routed internally by some networks.
    case siteLocal
    /// 224.0.0.0/4, ff00::/8.
    case multicast
    /// 255.255.255.255.
    case broadcast
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
    case documentation
    /// 198.18.0.0/15, 2001:2::/48.
    case benchmarking
    /// 64:ff9b:1::/48 (RFC 8215): a translator run inside one network, not globally
    /// reachable, and free to reach that network's private IPv4 addresses.
    case localUseTranslation
    /// Set aside, deprecated, or not allocated for global unicast: 240.0.0.0/4, the IETF
    /// protocol assignments 192.0.0.0/24 and 2001::/23 (Teredo aside), the deprecated 6to4
    /// relay anycast 192.88.99.0/24, discard-only 100::/64, the dummy prefix 100:0:0:1::/64,
    /// SRv6 SIDs 5f00::/16, and any IPv6 address outside 2000::/3 not named above.
    case reserved
    /// An IPv6 address carrying an IPv4 one (`form`), classified by that IPv4 address:
    /// connecting to `::ffff:127.0.0.1` or `64:ff9b::a9fe:a9fe` ends at 127.0.0.1 or at
    /// 169.254.169.254.
    case embedded(IPv4Embedding, IPAddress, AddressClass)

    /// Whether a webhook may go there without `webhooks.allow_private_targets`.
    public var isPublic: Bool {
        switch self {
        case .publicUnicast: true
        case .embedded(_, _, let inner): inner.isPublic
        default: false
        }
    }

    /// The words an operator reads in a refusal: "loopback", "private",
    /// "link-local (cloud metadata)", "loopback via IPv4-mapped 127.0.0.1", ….
    public var description: String {
        switch self {
        case .publicUnicast: "public"
        case .unspecified: "unspecified (this host)"
        case .loopback: "loopback"
        case .privateUse: "private"
        case .sharedAddressSpace: "shared address space (CGNAT)"
        case .linkLocal: "link-local"
        case .cloudMetadata(let range): "\(range) (cloud metadata)"
        case .uniqueLocal: "unique-local (IPv6 private)"
        case .siteLocal: "site-local (deprecated IPv6 private)"
        case .multicast: "multicast"
        case .broadcast: "broadcast"
        case .documentation: "documentation"
        case .benchmarking: "benchmarking"
        case .localUseTranslation: "local-use IPv4/IPv6 translation"
        case .reserved: "reserved"
        case .embedded(let form, let ipv4, let inner): "\(inner) via \(form) \(ipv4)"
        }
    }
}

/// How an IPv6 address carries an IPv4 one, and where.
public enum IPv4Embedding: Sendable, Hashable, CustomStringConvertible {
    /// `::ffff:a.b.c.d` (RFC 4291): what a dual-stack socket uses for an IPv4 peer.
    case mapped
    /// `::a.b.c.d` (RFC 4291, deprecated).
    case compatible
    /// `::ffff:0:a.b.c.d` (RFC 2765, stateless IP/ICMP translation).
    case translated
    /// `64:ff9b::a.b.c.d`, the well-known NAT64 prefix (RFC 6052).
    case nat64
    /// `64:ff9b:1::/48` with the IPv4 address in the last 32 bits (RFC 8215, as a /96).
    case localUseNAT64
    /// `2002:aabb:ccdd::/48` (RFC 3056): the IPv4 address follows the prefix.
    case sixToFour
    /// Teredo's client (RFC 4380): the last 32 bits, every bit inverted.
    case teredoClient
    /// Teredo's server (RFC 4380): the 32 bits after `2001:0000`.
    case teredoServer

    /// The IPv4 address inside `address`, which must be in this form's range.
    func ipv4(in address: IPAddress) -> IPAddress {
        switch self {
        case .mapped, .compatible, .translated, .nat64, .localUseNAT64: address.ipv4(at: 12)
        case .sixToFour: address.ipv4(at: 2)
        case .teredoClient: address.ipv4(at: 12, xor: 0xFF)
        case .teredoServer: address.ipv4(at: 4)
        }
    }

    public var description: String {
        switch self {
        case .mapped: "IPv4-mapped"
        case .compatible: "IPv4-compatible"
        case .translated: "IPv4-translated"
        case .nat64: "NAT64"
        case .localUseNAT64: "local-use NAT64"
        case .sixToFour: "6to4"
        case .teredoClient: "Teredo client"
        case .teredoServer: "Teredo server"
        }
    }
}

/// The class of `address`. Pure: the bytes alone decide, no lookup.
///
/// IPv4 (first match wins):
///
/// | range | class |
/// | --- | --- |
/// | 169.254.169.254/32, 100.100.100.200/32 | cloud metadata |
/// | 0.0.0.0/8 | unspecified |
/// | 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 | private |
/// | 100.64.0.0/10 | shared address space |
/// | 127.0.0.0/8 | loopback |
/// | 169.254.0.0/16 | link-local |
/// | 192.0.0.0/24, 192.88.99.0/24, 240.0.0.0/4 (but 255.255.255.255) | reserved |
/// | 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 | documentation |
/// | 198.18.0.0/15 | benchmarking |
/// | 224.0.0.0/4 | multicast |
/// | 255.255.255.255/32 | broadcast |
/// | anything else | public |
///
/// IPv6 (first match wins):
///
/// | range | class |
/// | --- | --- |
/// | ::/128, ::1/128 | unspecified, loopback |
/// | ::ffff:0:0/96 | the embedded IPv4's class (public stays public) |
/// | ::ffff:0:0:0/96, ::/96 | the embedded IPv4's class; reserved when that is public |
/// | 64:ff9b::/96 | the embedded IPv4's class (public stays public) |
/// | 64:ff9b:1::/48 | the embedded IPv4's class; local-use translation when that is public |
/// | 2001::/32 (Teredo) | the client's, then the server's IPv4 class (public stays public) |
/// | 2001:2::/48 | benchmarking |
/// | 2001::/23 | reserved |
/// | 2001:db8::/32, 3fff::/20 | documentation |
/// | 2002::/16 (6to4) | the embedded IPv4's class (public stays public) |
/// | fd00:ec2::254/128 | cloud metadata |
/// | fc00::/7 | unique-local |
/// | fe80::/10 | link-local |
/// | fec0::/10 | site-local |
/// | ff00::/8 | multicast |
/// | 2000::/3 | public |
/// | anything else (100::/64 discard-only, 100:0:0:1::/64 dummy, 5f00::/16 SRv6 SIDs, …) | reserved |
///
/// Stricter than the registries where they mark a few blocks inside non-global ones
/// globally reachable (PCP and TURN anycast in 192.0.0.0/24; AMT, AS112, ORCHIDv2 and
/// drone remote ID in 2001::/23): anycast protocol services, never webhook receivers.
/// Operator-chosen NAT64 prefixes (RFC 6052 network-specific) cannot be recognised from
/// the address and are classified as the IPv6 addresses they are.
public func classify(_ address: IPAddress) -> AddressClass {
    let rules = address.family == .v4 ? ipv4Rules : ipv6Rules
    for (prefix, rule) in rules where prefix.contains(address) {
        switch rule {
        case .range(let range):
            return range
        case .carries(let forms, let whenPublic):
            for form in forms {
                let ipv4 = form.ipv4(in: address)
                let range = classify(ipv4)
                if !range.isPublic { return .embedded(form, ipv4, range) }
            }
            return whenPublic ?? .embedded(forms[0], forms[0].ipv4(in: address), .publicUnicast)
        }
    }
    return address.family == .v4 ? .publicUnicast : .reserved
}

/// What a range in the tables below stands for.
private enum Rule: Sendable {
    /// Every address in the range has this class.
    case range(AddressClass)
    /// Each IPv4 address carried in `forms` is classified in turn; the first one that is
    /// not public decides. When all are public: `whenPublic`, or nil for "public, through
    /// the first form".
    case carries([IPv4Embedding], whenPublic: AddressClass?)
}

private let ipv4Rules: [(IPPrefix, Rule)] = [
    ("169.254.169.254/32", .range(.cloudMetadata(.linkLocal))),
    ("100.100.100.200/32", .range(.cloudMetadata(.sharedAddressSpace))),
    ("0.0.0.0/8", .range(.unspecified)),
    ("10.0.0.0/8", .range(.privateUse)),
    ("100.64.0.0/10", .range(.sharedAddressSpace)),
    ("127.0.0.0/8", .range(.loopback)),
    ("169.254.0.0/16", .range(.linkLocal)),
    ("172.16.0.0/12", .range(.privateUse)),
    ("192.0.0.0/24", .range(.reserved)),
    ("192.0.2.0/24", .range(.documentation)),
    ("192.88.99.0/24", .range(.reserved)),
    ("192.168.0.0/16", .range(.privateUse)),
    ("198.18.0.0/15", .range(.benchmarking)),
    ("198.51.100.0/24", .range(.documentation)),
    ("203.0.113.0/24", .range(.documentation)),
    ("224.0.0.0/4", .range(.multicast)),
    ("255.255.255.255/32", .range(.broadcast)),
    ("240.0.0.0/4", .range(.reserved)),
]

private let ipv6Rules: [(IPPrefix, Rule)] = [
    ("::/128", .range(.unspecified)),
    ("::1/128", .range(.loopback)),
    ("::ffff:0:0/96", .carries([.mapped], whenPublic: nil)),
    ("::ffff:0:0:0/96", .carries([.translated], whenPublic: .reserved)),
    ("::/96", .carries([.compatible], whenPublic: .reserved)),
    ("64:ff9b::/96", .carries([.nat64], whenPublic: nil)),
    ("64:ff9b:1::/48", .carries([.localUseNAT64], whenPublic: .localUseTranslation)),
    ("2001::/32", .carries([.teredoClient, .teredoServer], whenPublic: nil)),
    ("2001:2::/48", .range(.benchmarking)),
    ("2001::/23", .range(.reserved)),
    ("2001:db8::/32", .range(.documentation)),
    ("2002::/16", .carries([.sixToFour], whenPublic: nil)),
    ("3fff::/20", .range(.documentation)),
    ("fd00:ec2::254/128", .range(.cloudMetadata(.uniqueLocal))),
    ("fc00::/7", .range(.uniqueLocal)),
    ("fe80::/10", .range(.linkLocal)),
    ("fec0::/10", .range(.siteLocal)),
    ("ff00::/8", .range(.multicast)),
    ("2000::/3", .range(.publicUnicast)),
]
