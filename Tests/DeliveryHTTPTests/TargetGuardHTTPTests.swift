#if canImport(Glibc)
import Glibc
#endif
import Delivery
import LocalReceiver
import Testing

/// One HTTP exchange on [::1]: `LocalReceiver` listens on 127.0.0.1 only, and these tests
/// need an IPv6 peer to prove that a pinned IPv6 address (bracketed for libcurl, with or
/// without a zone) is where the request goes. It answers 204 to the first request and
/// returns its head.
private final class IPv6LoopbackResponder {
    let fd: Int32
    let port: Int

    /// Nil when this host has no IPv6 loopback.
    init?() {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard listening else {
            close(fd)
            return nil
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin6_port))
    }

    deinit { close(fd) }

    static var isAvailable: Bool { IPv6LoopbackResponder() != nil }

    /// Waits up to 5 s for one connection, reads the request head, answers 204 and closes.
    /// Polls without blocking, so no thread of the cooperative pool is held.
    func serveOne() async throws -> String? {
        let deadline = ContinuousClock.now + .seconds(5)
        guard try await isReadable(fd, until: deadline) else { return nil }
        let connection = accept(fd, nil, nil)
        guard connection >= 0 else { return nil }
        defer { close(connection) }
        var head: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            guard try await isReadable(connection, until: deadline) else { return nil }
            let count = read(connection, &chunk, chunk.count)
            guard count > 0 else { return nil }
            head += chunk[0..<count]
        }
        let answer = Array("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".utf8)
        _ = answer.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
        return String(decoding: head, as: UTF8.self)
    }

    /// True once `descriptor` is readable, false at `deadline`.
    private func isReadable(_ descriptor: Int32, until deadline: ContinuousClock.Instant) async throws -> Bool {
        while ContinuousClock.now < deadline {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 0) == 1 { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }
}

/// Every name resolves to ::1, so a test can show where a request goes without DNS.
private struct IPv6LoopbackResolver: HostResolver {
    func addresses(of host: String) throws(HostResolutionError) -> [IPAddress] {
        guard let loopback = IPAddress("::1") else { throw HostResolutionError("::1 does not parse") }
        return [loopback]
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix) }
}

/// The guard and the client together, on loopback only: what the guard checked is where
/// the request goes.
@Suite(.timeLimit(.minutes(1)))
struct TargetGuardHTTPTests {
    @Test(arguments: ["127.0.0.1", "localhost"])
    func anAllowedTargetIsSentToTheCheckedAddress(host: String) async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        let url = "http://\(host):\(receiver.port)/hook"

        await #expect(throws: TargetRefused.self) { try await TargetGuard().check(url: url) }

        let target = try await TargetGuard(allowPrivateTargets: true).check(url: url)
        #expect(target.pinnedAddress == "127.0.0.1")
        let response = try await client.send(HTTPRequest(
            method: "POST", url: target.url, body: Array("{}".utf8), connectTimeout: .seconds(2),
            pinnedAddress: target.pinnedAddress))
        #expect(response.status == 200)
        #expect(response.remoteAddress == "127.0.0.1")
        let seen = try #require(receiver.requests.first)
        #expect(seen.path == "/hook")
        #expect(seen.header("Host") == "\(host):\(receiver.port)")
        #expect(receiver.requestCount == 1)
    }

    @Test(.enabled(if: IPv6LoopbackResponder.isAvailable, "needs an IPv6 loopback"),
          arguments: [("[::1]", "::1"), ("[0:0:0:0:0:0:0:1]", "::1"), ("[::1%25lo]", "::1")])
    func anIPv6TargetIsSentToTheCheckedAddressInBrackets(host: String, pinned: String) async throws {
        let responder = try #require(IPv6LoopbackResponder())
        let client = try HTTPClient()
        let target = try await TargetGuard(allowPrivateTargets: true).check(url: "http://\(host):\(responder.port)/v6")
        #expect(target.pinnedAddress == pinned)

        let request = HTTPRequest(url: target.url, connectTimeout: .seconds(2), timeout: .seconds(10),
                                  pinnedAddress: target.pinnedAddress)
        async let response = client.send(request)
        let head = try #require(try await responder.serveOne())
        #expect(try await response.status == 204)
        #expect(head.hasPrefix("GET /v6 HTTP/1.1\r\n"))
    }

    /// libcurl would resolve `localhost` to 127.0.0.1 itself; the request reaches [::1]
    /// only through the bracketed pin.
    @Test(.enabled(if: IPv6LoopbackResponder.isAvailable, "needs an IPv6 loopback"))
    func aNameIsSentToTheIPv6AddressItWasCheckedAt() async throws {
        let responder = try #require(IPv6LoopbackResponder())
        let client = try HTTPClient()
        let guarded = TargetGuard(allowPrivateTargets: true, lookups: HostLookups(resolver: IPv6LoopbackResolver()))
        let target = try await guarded.check(url: "http://localhost:\(responder.port)/named")
        #expect(target.pinnedAddress == "::1")

        async let response = client.send(HTTPRequest(url: target.url, connectTimeout: .seconds(2), timeout: .seconds(10),
                                                     pinnedAddress: target.pinnedAddress))
        let head = try #require(try await responder.serveOne())
        #expect(try await response.status == 204)
        #expect(head.contains("\r\nHost: localhost:\(responder.port)\r\n"))
    }
}
