@testable import Delivery
import Testing

private func ip(_ literal: String) -> IPAddress {
    guard let address = IPAddress(literal) else { preconditionFailure("bad test literal \(literal)") }
    return address
}

/// Names from a table, so no test asks DNS. Any other name fails to resolve with a message
/// that says so, which no test expects for a numeric host.
private struct TableResolver: HostResolver {
    var table: [String: [String]] = [
        "public.example": ["93.184.215.14"],
        "dual.example": ["2606:4700:4700::1111", "1.1.1.1"],
        "v6only.example": ["2606:4700:4700::1111"],
        "mapped.example": ["::ffff:8.8.8.8"],
        "localhost": ["::1", "127.0.0.1"],
        "localhost.": ["127.0.0.1"],
        "mixed.example": ["8.8.8.8", "10.0.0.7"],
        "mixed6.example": ["2606:4700:4700::1111", "::1"],
        "metadata.example": ["169.254.169.254"],
        "rebind.example": ["::ffff:127.0.0.1"],
        "xn--bcher-kva.example": ["127.0.0.1"],
        "empty.example": [],
    ]

    func addresses(of host: String) throws(HostResolutionError) -> [IPAddress] {
        guard let literals = table[host.lowercased()] else { throw HostResolutionError("not in the test table: \(host)") }
        return literals.map(ip)
    }
}

private func refusal(_ url: String, allowPrivateTargets: Bool = false) async -> TargetRefused? {
    do {
        _ = try await checked(url, allowPrivateTargets: allowPrivateTargets)
        return nil
    } catch {
        return error
    }
}

private func checked(_ url: String, allowPrivateTargets: Bool = false) async throws(TargetRefused) -> CheckedTarget {
    try await TargetGuard(allowPrivateTargets: allowPrivateTargets, lookups: HostLookups(resolver: TableResolver())).check(url: url)
}

@Suite struct TargetGuardTests {
    /// Every numeric spelling libcurl and libc accept, judged by the address it means.
    @Test(arguments: [
        ("http://127.0.0.1/", "127.0.0.1", .loopback),
        ("http://127.1/", "127.0.0.1", .loopback),
        ("http://2130706433/", "127.0.0.1", .loopback),
        ("http://0x7f000001/", "127.0.0.1", .loopback),
        ("http://0177.0.0.1/", "127.0.0.1", .loopback),
        ("http://0x7f.1/", "127.0.0.1", .loopback),
        ("http://0x7f.0.0.0x1/", "127.0.0.1", .loopback),
        ("http://%31%32%37.0.0.1/", "127.0.0.1", .loopback),
        ("http://[0:0:0:0:0:0:0:1]/", "::1", .loopback),
        ("http://[::1]:8080/", "::1", .loopback),
        ("http://0.0.0.0/", "0.0.0.0", .unspecified),
        ("http://0/", "0.0.0.0", .unspecified),
        ("http://[::]/", "::", .unspecified),
        ("http://[fe80::1%25eth0]/", "fe80::1", .linkLocal),
        ("http://[fe80::1%eth0]/", "fe80::1", .linkLocal),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("http://0xa9fea9fe/", "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("http://0251.0376.0251.0376/", "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254", .cloudMetadata(.uniqueLocal)),
        ("http://10.0.0.1/", "10.0.0.1", .privateUse),
        ("http://172.16.0.1/", "172.16.0.1", .privateUse),
        ("http://192.168.1.1/", "192.168.1.1", .privateUse),
        ("http://100.64.0.1/", "100.64.0.1", .sharedAddressSpace),
        ("http://224.0.0.1/", "224.0.0.1", .multicast),
        ("http://4294967295/", "255.255.255.255", .broadcast),
        ("http://240.0.0.1/", "240.0.0.1", .reserved),
        ("http://192.0.2.1/", "192.0.2.1", .documentation),
        ("http://[fc00::1]/", "fc00::1", .uniqueLocal),
        ("http://[fec0::1]/", "fec0::1", .siteLocal),
        ("http://[ff02::1]/", "ff02::1", .multicast),
        ("http://[2001:db8::1]/", "2001:db8::1", .documentation),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", .embedded(.mapped, ip("127.0.0.1"), .loopback)),
        ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", .embedded(.mapped, ip("127.0.0.1"), .loopback)),
        ("http://[::127.0.0.1]/", "::127.0.0.1", .embedded(.compatible, ip("127.0.0.1"), .loopback)),
        ("http://[::ffff:0:127.0.0.1]/", "::ffff:0:7f00:1", .embedded(.translated, ip("127.0.0.1"), .loopback)),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe",
         .embedded(.nat64, ip("169.254.169.254"), .cloudMetadata(.linkLocal))),
        ("http://[64:ff9b:1::a00:1]/", "64:ff9b:1::a00:1", .embedded(.localUseNAT64, ip("10.0.0.1"), .privateUse)),
        ("http://[2002:7f00:1::1]/", "2002:7f00:1::1", .embedded(.sixToFour, ip("127.0.0.1"), .loopback)),
        ("http://[2001:0:808:808::80ff:fffe]/", "2001:0:808:808::80ff:fffe",
         .embedded(.teredoClient, ip("127.0.0.1"), .loopback)),
    ] as [(String, String, AddressClass)])
    func numericHostsAreJudgedByTheAddressTheyMean(url: String, address: String, expected: AddressClass) async throws {
        let refused = try #require(await refusal(url))
        #expect(refused.reason == .forbiddenAddress(ip(address), expected))
        #expect(!refused.isRetryable)
    }

    /// What getaddrinfo reads as a number, before libcurl's own normalisation is involved.
    @Test(arguments: [
        ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"), ("0", "0.0.0.0"), ("4294967295", "255.255.255.255"), ("0xa9fea9fe", "169.254.169.254"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"), ("::ffff:7f00:1", "::ffff:127.0.0.1"), ("0:0:0:0:0:0:0:1", "::1"),
        ("::", "::"), ("0.0.0.0", "0.0.0.0"),
    ])
    func numericSpellingsAsLibcReadsThem(host: String, address: String) {
        #expect(numericAddress(host) == ip(address))
    }

    @Test(arguments: ["localhost", "localhost.", "127.0.0.1.", "1.2.3.4.5", "0x100000000", "08.0.0.1", "4294967296", "example.com"])
    func namesAreNotNumbers(host: String) {
        #expect(numericAddress(host) == nil)
    }

    @Test(arguments: [
        ("http://public.example@127.0.0.1/", "127.0.0.1", AddressClass.loopback),
        ("http://public.example:443@127.0.0.1/", "127.0.0.1", .loopback),
        ("http://public.example\\@127.0.0.1/", "127.0.0.1", .loopback),
        ("http://127.0.0.1#@public.example/", "127.0.0.1", .loopback),
        ("http://127.0.0.1?@public.example/", "127.0.0.1", .loopback),
        ("HTTP://127.0.0.1/", "127.0.0.1", .loopback),
        ("hTtPs://127.0.0.1:8443/", "127.0.0.1", .loopback),
        ("http://localhost/", "::1", .loopback),
        ("http://LOCALHOST/", "::1", .loopback),
        ("http://localhost./", "127.0.0.1", .loopback),
        ("http://metadata.example/latest/", "169.254.169.254", .cloudMetadata(.linkLocal)),
        ("http://rebind.example/", "::ffff:127.0.0.1", .embedded(.mapped, ip("127.0.0.1"), .loopback)),
        ("http://mixed.example/", "10.0.0.7", .privateUse),
        ("http://mixed6.example/", "::1", .loopback),
        ("http://xn--bcher-kva.example/", "127.0.0.1", .loopback),
    ] as [(String, String, AddressClass)])
    func hostileFormsAreJudgedByTheHostLibcurlWouldUse(url: String, address: String, expected: AddressClass) async throws {
        let refused = try #require(await refusal(url))
        #expect(refused.reason == .forbiddenAddress(ip(address), expected))
    }

    @Test(arguments: [
        ("http://127.0.0.1\\@public.example/", "public.example"),
        ("http://public%2eexample/", "public.example"),
        ("HTTPS://PUBLIC.EXAMPLE/hook", "PUBLIC.EXAMPLE"),
        ("http://user:pass@public.example:8080/x?y#z", "public.example"),
    ])
    func aPublicHostPassesWhateverTheSpelling(url: String, host: String) async throws {
        let target = try await checked(url)
        #expect(target.host == host)
        #expect(target.pinnedAddress == "93.184.215.14")
        #expect(target.url == url)
    }

    @Test(arguments: [
        ("file:///etc/passwd", "file"), ("gopher://public.example/", "gopher"), ("ftp://public.example/", "ftp"),
        ("dict://public.example/", "dict"), ("ldap://public.example/", "ldap"), ("ws://public.example/", "ws"),
        ("FILE:///etc/passwd", "file"), ("whatever://public.example/", "whatever"),
    ])
    func onlyHTTPAndHTTPSSchemes(url: String, scheme: String) async throws {
        for allowPrivateTargets in [false, true] {
            let refused = try #require(await refusal(url, allowPrivateTargets: allowPrivateTargets))
            #expect(refused.reason == .schemeNotAllowed(scheme))
            #expect(refused.description.contains("only http and https"))
        }
    }

    @Test(arguments: [
        "", "public.example", "127.0.0.1/x", "//127.0.0.1/", "http:127.0.0.1", "javascript:alert(1)",
        "http://", "http://:80/", "http://user@/", "http://public.example:99999/", "http://public.example:80:80/",
        "http://[127.0.0.1]/", "http://[v1.x]/", "http://[::1]x/", "http://pub lic.example/", "http://public.example/a b",
        "http://public\u{0}.example/", "http://public%00.example/", "http://public%0a.example/", "http://u:p@x@127.0.0.1/",
        "http://[fe80::1%25%2F]/", "http://[fe80::1%25eth0%25x]/",
    ])
    func urlsThatDoNotParseAreRefusedWithAReason(url: String) async throws {
        let refused = try #require(await refusal(url, allowPrivateTargets: true))
        guard case .malformedURL(let why) = refused.reason else {
            Issue.record("\(url): expected a malformed URL, got \(refused)")
            return
        }
        #expect(!why.isEmpty)
        #expect(!refused.isRetryable)
    }

    /// The IDN host reaches the resolver in the ASCII form libcurl would look up, or, where
    /// this process's libcurl cannot convert it (no UTF-8 locale), not at all.
    @Test func internationalisedNamesAreResolvedAsPunycode() async throws {
        let refused = try #require(await refusal("http://bücher.example/"))
        switch refused.reason {
        case .forbiddenAddress(let address, _): #expect(address == ip("127.0.0.1"))
        case .malformedURL(let why): #expect(why.contains("IDNA"))
        default: Issue.record("unexpected \(refused)")
        }
    }

    @Test func theRefusalNamesHostAddressClassAndSettingButNoSecret() async throws {
        let url = "https://hookuser:s3cr3t-pass@metadata.example:8443/services/T0/B0/t0k3n?token=q5ery#frag"
        let refused = try #require(await refusal(url))
        let text = refused.description
        #expect(text.contains("metadata.example"))
        #expect(text.contains("169.254.169.254"))
        #expect(text.contains("link-local (cloud metadata)"))
        #expect(text.contains("webhooks.allow_private_targets"))
        var dumped = ""
        dump(refused, to: &dumped)
        for secret in ["hookuser", "s3cr3t", "t0k3n", "q5ery", "frag", "services"] {
            for shown in [text, String(reflecting: refused), dumped] {
                #expect(!shown.contains(secret), "\(secret) leaked in: \(shown)")
            }
        }
        #expect(refused.host == "metadata.example")
    }

    @Test func userInfoBeforeTheRealHostNeverReachesTheMessage() async throws {
        let refused = try #require(await refusal("http://public.example:secret@127.0.0.1/"))
        #expect(refused.description == "webhook URL refused: host 127.0.0.1 is loopback;"
            + " set webhooks.allow_private_targets = true to allow non-public addresses")
    }

    @Test func aNameThatDoesNotResolveIsRetryable() async throws {
        for url in ["http://nowhere.example/", "http://empty.example/"] {
            let refused = try #require(await refusal(url))
            guard case .unresolvable = refused.reason else {
                Issue.record("\(url): expected unresolvable, got \(refused)")
                continue
            }
            #expect(refused.isRetryable)
            #expect(refused.description.contains("nowhere.example") || refused.description.contains("empty.example"))
        }
    }

    @Test func allowingPrivateTargetsPassesEveryAddressAndStillPins() async throws {
        let cases: [(String, String)] = [
            ("http://127.0.0.1:9/", "127.0.0.1"),
            ("http://localhost/", "127.0.0.1"),
            ("http://[::1]/", "::1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://metadata.example/", "169.254.169.254"),
            ("http://[fe80::1%25eth0]:8080/", "fe80::1%eth0"),
            ("http://[fe80::1]:8080/", "fe80::1"),
            ("http://[::1%25lo]/", "::1"),
            ("http://[fd00::1%25eth0]/", "fd00::1"),
            ("http://rebind.example/", "127.0.0.1"),
            ("http://[::ffff:10.0.0.1]/", "10.0.0.1"),
        ]
        for (url, pinned) in cases {
            let target = try await checked(url, allowPrivateTargets: true)
            #expect(target.pinnedAddress == pinned, "\(url)")
        }
    }

    @Test func thePinPrefersIPv4AndTheTargetKeepsEveryCheckedAddress() async throws {
        let dual = try await checked("https://dual.example/")
        #expect(dual.addresses == [ip("2606:4700:4700::1111"), ip("1.1.1.1")])
        #expect(dual.pinnedAddress == "1.1.1.1")
        #expect(dual.port == 443)
        #expect(try await checked("http://v6only.example:8080/").pinnedAddress == "2606:4700:4700::1111")
        #expect(try await checked("http://mapped.example/").pinnedAddress == "8.8.8.8")
        #expect(try await checked("http://[2606:4700:4700::1111]/").pinnedAddress == "2606:4700:4700::1111")
        #expect(try await checked("http://8.8.8.8/").host == "8.8.8.8")
    }

    @Test func aCheckedTargetPrintsWithoutUserInfo() async throws {
        let target = try await checked("https://user:s3cr3t@public.example/hook")
        var dumped = ""
        dump(target, to: &dumped)
        for shown in [target.description, target.debugDescription, String(reflecting: target), dumped] {
            #expect(!shown.contains("s3cr3t"), "leaked in: \(shown)")
            #expect(shown.contains("93.184.215.14"))
        }
    }

    /// The system resolver on names and numbers this host answers itself (no DNS traffic).
    @Test func theSystemResolverRefusesLocalhostAndPinsItWhenAllowed() async throws {
        #expect(try SystemResolver().addresses(of: "localhost").contains(ip("127.0.0.1")))
        let strict = TargetGuard()
        for url in ["http://localhost:9/", "http://127.0.0.1:9/", "http://127.1:9/"] {
            do {
                _ = try await strict.check(url: url)
                Issue.record("\(url) passed")
            } catch {
                guard case .forbiddenAddress(_, .loopback) = error.reason else {
                    Issue.record("\(url): \(error)")
                    continue
                }
            }
        }
        let relaxed = TargetGuard(allowPrivateTargets: true)
        #expect(try await relaxed.check(url: "http://localhost:9/").pinnedAddress == "127.0.0.1")
        #expect(try await relaxed.check(url: "http://127.0.0.1:9/").pinnedAddress == "127.0.0.1")
    }
}
