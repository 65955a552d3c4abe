import Delivery
import Testing

private func ip(_ literal: String) -> IPAddress {
    guard let address = IPAddress(literal) else { preconditionFailure("bad test literal \(literal)") }
    return address
}

/// The classifier over every range it knows, at both ends and just outside.
@Suite struct AddressClassTests {
    @Test(arguments: [
        // 0.0.0.0/8
        ("0.0.0.0", .unspecified), ("0.0.0.1", .unspecified), ("0.255.255.255", .unspecified),
        // 127.0.0.0/8
        ("127.0.0.0", .loopback), ("127.0.0.1", .loopback), ("127.255.255.255", .loopback),
        // RFC 1918
        ("10.0.0.0", .privateUse), ("10.255.255.255", .privateUse),
        ("172.16.0.0", .privateUse), ("172.31.255.255", .privateUse),
        ("192.168.0.0", .privateUse), ("192.168.255.255", .privateUse),
        // 100.64.0.0/10
        ("100.64.0.0", .sharedAddressSpace), ("100.127.255.255", .sharedAddressSpace),
        // 169.254.0.0/16 and the metadata services
        ("169.254.0.0", .linkLocal), ("169.254.255.255", .linkLocal),
        ("169.254.169.253", .linkLocal), ("169.254.169.255", .linkLocal),
        ("169.254.169.254", .cloudMetadata(.linkLocal)),
        ("100.100.100.200", .cloudMetadata(.sharedAddressSpace)), ("100.100.100.201", .sharedAddressSpace),
        // reserved
        ("192.0.0.0", .reserved), ("192.0.0.9", .reserved), ("192.0.0.170", .reserved), ("192.0.0.255", .reserved),
        ("192.88.99.0", .reserved), ("192.88.99.255", .reserved),
        ("240.0.0.0", .reserved), ("255.255.255.254", .reserved),
        // documentation and benchmarking
        ("192.0.2.0", .documentation), ("192.0.2.255", .documentation),
        ("198.51.100.0", .documentation), ("198.51.100.255", .documentation),
        ("203.0.113.0", .documentation), ("203.0.113.255", .documentation),
        ("198.18.0.0", .benchmarking), ("198.19.255.255", .benchmarking),
        // multicast and broadcast
        ("224.0.0.0", .multicast), ("224.0.0.1", .multicast), ("239.255.255.255", .multicast),
        ("255.255.255.255", .broadcast),
    ] as [(String, AddressClass)])
    func ipv4Ranges(literal: String, expected: AddressClass) {
        #expect(classify(ip(literal)) == expected)
        #expect(!classify(ip(literal)).isPublic)
    }

    @Test(arguments: [
        "8.8.8.8", "1.1.1.1", "1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "100.128.0.1",
        "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0", "172.32.0.1",
        "192.0.1.255", "192.0.1.0", "192.0.3.0", "192.88.98.255", "192.88.100.0", "192.167.255.255", "192.169.0.1",
        "198.17.255.255", "198.20.0.0", "198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0",
        "223.255.255.255", "192.31.196.1", "192.52.193.1", "192.175.48.1",
    ])
    func publicIPv4(literal: String) {
        #expect(classify(ip(literal)) == .publicUnicast)
    }

    @Test(arguments: [
        ("::", .unspecified), ("::1", .loopback), ("0:0:0:0:0:0:0:1", .loopback),
        // fc00::/7, fe80::/10, fec0::/10, ff00::/8
        ("fc00::", .uniqueLocal), ("fd00::1", .uniqueLocal), ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .uniqueLocal),
        ("fd00:ec2::254", .cloudMetadata(.uniqueLocal)), ("fd00:ec2::253", .uniqueLocal),
        ("fe80::", .linkLocal), ("fe80::1", .linkLocal), ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .linkLocal),
        ("fec0::", .siteLocal), ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .siteLocal),
        ("ff00::", .multicast), ("ff02::1", .multicast), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .multicast),
        // documentation, benchmarking, IETF protocol assignments
        ("2001:db8::", .documentation), ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", .documentation),
        ("3fff::", .documentation), ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", .documentation),
        ("2001:2::", .benchmarking), ("2001:2:0:ffff:ffff:ffff:ffff:ffff", .benchmarking),
        ("2001:1::1", .reserved), ("2001:3::1", .reserved), ("2001:10::1", .reserved), ("2001:20::1", .reserved),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", .reserved),
        // outside 2000::/3 and not named
        ("100::", .reserved), ("100::1", .reserved), ("100:0:0:1::1", .reserved), ("5f00::1", .reserved),
        ("::1:0:0:0", .reserved), ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .reserved), ("4000::", .reserved),
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .reserved), ("fe00::", .reserved), ("64:ff9b:2::1", .reserved),
        // local-use NAT64 with a public IPv4 address: still not globally reachable
        ("64:ff9b:1::808:808", .localUseTranslation),
        // deprecated carriers of a public IPv4 address
        ("::8.8.8.8", .reserved), ("::ffff:0:8.8.8.8", .reserved),
    ] as [(String, AddressClass)])
    func ipv6Ranges(literal: String, expected: AddressClass) {
        #expect(classify(ip(literal)) == expected)
        #expect(!classify(ip(literal)).isPublic)
    }

    @Test(arguments: [
        ("::ffff:127.0.0.1", .mapped, "127.0.0.1", .loopback),
        ("::ffff:7f00:1", .mapped, "127.0.0.1", .loopback),
        ("::ffff:10.0.0.1", .mapped, "10.0.0.1", .privateUse),
        ("::ffff:a9fe:a9fe", .mapped, "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("::ffff:0.0.0.0", .mapped, "0.0.0.0", .unspecified),
        ("::ffff:255.255.255.255", .mapped, "255.255.255.255", .broadcast),
        ("::127.0.0.1", .compatible, "127.0.0.1", .loopback),
        ("::0.0.0.2", .compatible, "0.0.0.2", .unspecified),
        ("::192.168.1.1", .compatible, "192.168.1.1", .privateUse),
        ("::ffff:0:127.0.0.1", .translated, "127.0.0.1", .loopback),
        ("::ffff:0:a9fe:a9fe", .translated, "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("64:ff9b::127.0.0.1", .nat64, "127.0.0.1", .loopback),
        ("64:ff9b::a9fe:a9fe", .nat64, "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("64:ff9b::10.1.2.3", .nat64, "10.1.2.3", .privateUse),
        ("64:ff9b::", .nat64, "0.0.0.0", .unspecified),
        ("64:ff9b::ffff:ffff", .nat64, "255.255.255.255", .broadcast),
        ("64:ff9b:1::a00:1", .localUseNAT64, "10.0.0.1", .privateUse),
        ("64:ff9b:1:ffff:ffff:ffff:7f00:1", .localUseNAT64, "127.0.0.1", .loopback),
        ("2002:7f00:1::1", .sixToFour, "127.0.0.1", .loopback),
        ("2002:a9fe:a9fe::", .sixToFour, "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("2002:c0a8:101::1", .sixToFour, "192.168.1.1", .privateUse),
        ("2002::", .sixToFour, "0.0.0.0", .unspecified),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .sixToFour, "255.255.255.255", .broadcast),
        // Teredo: the client's address is stored inverted (80ff:fffe is 127.0.0.1).
        ("2001:0:808:808::80ff:fffe", .teredoClient, "127.0.0.1", .loopback),
        ("2001:0:808:808::3f57:fefe", .teredoClient, "192.168.1.1", .privateUse),
        ("2001::", .teredoClient, "255.255.255.255", .broadcast),
        ("2001:0:a00:1::f7f7:f7f7", .teredoServer, "10.0.0.1", .privateUse),
    ] as [(String, IPv4Embedding, String, AddressClass)])
    func embeddedIPv4(literal: String, form: IPv4Embedding, ipv4: String, inner: AddressClass) {
        #expect(classify(ip(literal)) == .embedded(form, ip(ipv4), inner))
        #expect(!classify(ip(literal)).isPublic)
    }

    @Test(arguments: [
        "2606:4700:4700::1111", "2001:4860:4860::8888", "2000::", "2001:200::", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::", "2003::1", "3fff:1000::", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2a00:1450:4001:81b::200e",
    ])
    func publicIPv6(literal: String) {
        #expect(classify(ip(literal)) == .publicUnicast)
    }

    @Test(arguments: [
        ("::ffff:8.8.8.8", .mapped, "8.8.8.8"),
        ("64:ff9b::808:808", .nat64, "8.8.8.8"),
        ("2002:808:808::1", .sixToFour, "8.8.8.8"),
        ("2001:0:808:808::f7f7:f7f7", .teredoClient, "8.8.8.8"),
    ] as [(String, IPv4Embedding, String)])
    func publicIPv4ThroughAnIPv6Form(literal: String, form: IPv4Embedding, ipv4: String) {
        #expect(classify(ip(literal)) == .embedded(form, ip(ipv4), .publicUnicast))
        #expect(classify(ip(literal)).isPublic)
    }

    @Test func descriptionsNameTheRangeAndTheCarrier() {
        #expect(classify(ip("169.254.169.254")).description == "link-local (cloud metadata)")
        #expect(classify(ip("10.1.2.3")).description == "private")
        #expect(classify(ip("::ffff:127.0.0.1")).description == "loopback via IPv4-mapped 127.0.0.1")
        #expect(classify(ip("64:ff9b::a9fe:a9fe")).description == "link-local (cloud metadata) via NAT64 169.254.169.254")
    }

    @Test func literalsAreStrictAndPrintCanonically() {
        #expect(IPAddress("0:0:0:0:0:0:0:1")?.description == "::1")
        #expect(IPAddress("::ffff:7f00:1")?.description == "::ffff:127.0.0.1")
        #expect(IPAddress("2001:DB8:0:0:1::1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("10.0.0.1")?.bytes == [10, 0, 0, 1])
        for shorthand in ["127.1", "2130706433", "0x7f000001", "[::1]", "fe80::1%eth0", "", "1.2.3.4.5", "::g"] {
            #expect(IPAddress(shorthand) == nil, "\(shorthand)")
        }
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress("::ffff:10.0.0.1")?.unmapped == IPAddress(10, 0, 0, 1))
        #expect(IPAddress("64:ff9b::a00:1")?.unmapped == IPAddress("64:ff9b::a00:1"))
    }
}
