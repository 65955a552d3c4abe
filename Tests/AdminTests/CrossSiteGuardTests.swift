@testable import Admin
import Testing

@Suite struct CrossSiteGuardTests {
    private static let open = CrossSiteGuard(hasToken: false)
    private static let tokened = CrossSiteGuard(hasToken: true)

    /// curl, Prometheus and the dashboard's own requests: no Origin, or the page's own.
    @Test(arguments: [
        ("127.0.0.1:9187", nil, nil), ("127.0.0.1:9187", "http://127.0.0.1:9187", "same-origin"),
        ("localhost:9187", "http://LOCALHOST:9187", nil), ("127.0.0.1:9187", nil, "none"),
    ] as [(String, String?, String?)])
    func sameOriginAndNonBrowserRequestsMayRetry(authority: String, origin: String?, fetchSite: String?) {
        #expect(Self.open.refusal(for: .retryDelivery, authority: authority, origin: origin, fetchSite: fetchSite) == nil)
    }

    /// The dashboard behind a TLS-terminating proxy that passes the Host on: its page's origin
    /// is an https one, of the very host the request is addressed to.
    @Test func theDashboardBehindAnHTTPSProxyMayRetry() {
        #expect(Self.tokened.refusal(for: .retryDelivery, authority: "relay.example.com", origin: "https://relay.example.com",
                                     fetchSite: "same-origin") == nil)
        #expect(Self.tokened.refusal(for: .retryDelivery, authority: "relay.example.com", origin: "https://evil.example",
                                     fetchSite: nil) != nil)
    }

    /// A page elsewhere can make the browser POST without reading the answer: refused with or
    /// without a token, by Origin or by Sec-Fetch-Site, whichever the browser sent.
    @Test(arguments: [
        ("http://evil.example", nil), ("null", nil), ("http://127.0.0.1:9188", nil), ("https://127.0.0.1:9188", nil),
        ("ftp://127.0.0.1:9187", nil),
        (nil, "cross-site"), (nil, "same-site"), ("http://127.0.0.1:9187", "cross-site"),
    ] as [(String?, String?)])
    func otherOriginsCannotRetry(origin: String?, fetchSite: String?) {
        for guardian in [Self.open, Self.tokened] {
            #expect(guardian.refusal(for: .retryDelivery, authority: "127.0.0.1:9187", origin: origin, fetchSite: fetchSite) != nil)
        }
    }

    /// DNS rebinding: a page's own name made to resolve to 127.0.0.1 addresses the server by
    /// that name. Without a token only localhost and IP literals are answered; the probes and
    /// the (empty) dashboard page always are, and a token makes the name irrelevant.
    @Test func withoutATokenTheAPIAnswersOnlyLocalNamesAndAddresses() {
        for authority in ["127.0.0.1:9187", "localhost:9187", "localhost", "[::1]:9187", "[::1]", "10.0.0.7:9187", "LocalHost:80"] {
            #expect(Self.open.refusal(for: .deliveries, authority: authority, origin: nil, fetchSite: nil) == nil, "\(authority)")
        }
        for authority in ["evil.example:9187", "evil.example", "127.0.0.1.evil.example:9187", "localhost.evil.example",
                          "127.0.0.1:x", "[::1]x", "1.2.3:9187", "256.1.1.1", ""] {
            #expect(Self.open.refusal(for: .metrics, authority: authority, origin: nil, fetchSite: nil) != nil, "\(authority)")
            #expect(Self.tokened.refusal(for: .metrics, authority: authority, origin: nil, fetchSite: nil) == nil, "\(authority)")
            #expect(Self.open.refusal(for: .healthz, authority: authority, origin: nil, fetchSite: nil) == nil, "\(authority)")
        }
    }

    /// The Host header is the client's: digits of other scripts, fractions, signs and
    /// oversized numbers are refused, never read as a number (`١` once stopped the process).
    @Test(arguments: ["١.0.0.1", "127.0.0.½", "١٢٧.0.0.1:9187", "127.0.0.1:٩١٨٧", "[::1]:٩", "+1.0.0.1", "1.0.0.-1",
                      "999.0.0.1", "01234.0.0.1", "１２７.0.0.1"])
    func hostsThatOnlyLookNumericAreRefused(authority: String) {
        #expect(Self.open.refusal(for: .metrics, authority: authority, origin: nil, fetchSite: nil) != nil)
    }
}
