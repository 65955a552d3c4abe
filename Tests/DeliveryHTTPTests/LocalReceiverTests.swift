#if canImport(Glibc)
import Core
import PlannedEffects
import Glibc
#endif
import Delivery
import LocalReceiver
import Testing

/// A raw TCP client to 127.0.0.1, for what libcurl would not send.
private final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw RawError() }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the peer closes (or 10 s pass).
    func readToEnd() -> String {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            result += chunk[0..<count]
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Reads until `text` has been seen `times` times.
    func read(until text: String, times: Int = 1) -> String {
        var result = ""
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.components(text) < times {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            result += String(decoding: chunk[0..<count], as: UTF8.self)
        }
        return result
    }
}

private struct RawError: Error {}

extension String {
    fileprivate func components(_ needle: String) -> Int {
        let haystack = Array(utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty, haystack.count >= pattern.count else { return 0 }
        var count = 0
        var index = 0
        while index <= haystack.count - pattern.count {
            if haystack[index..<(index + pattern.count)].elementsEqual(pattern) {
                count += 1
                index += pattern.count
            } else {
                index += 1
            }
        }
        return count
    }
}

@Suite(.timeLimit(.minutes(1)))
struct LocalReceiverTests {
    @Test func chunkedRequestBodyIsDecoded() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        let body = Array(repeating: UInt8(ascii: "z"), count: 100_000)
        _ = try await client.send(HTTPRequest(method: "POST", url: receiver.url, headers: [("Transfer-Encoding", "chunked")], body: body))
        let seen = try #require(receiver.requests.first)
        #expect(seen.header("Transfer-Encoding") == "chunked")
        #expect(seen.body == body)
    }

    /// The receiver answers `100 Continue` before the body is sent (without it libcurl waits a
    /// second for a 100 that never comes), and libcurl's body then arrives whole.
    @Test func expectContinueIsAnswered() async throws {
        let receiver = try LocalReceiver()
        let raw = try RawConnection(port: receiver.port)
        raw.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        #expect(raw.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 100 Continue\r\n"), "the 100 comes before any body byte")
        raw.send("abc")
        #expect(raw.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 200 "))

        let client = try HTTPClient()
        _ = try await client.send(HTTPRequest(method: "POST", url: receiver.url, headers: [("Expect", "100-continue")], body: [1, 2, 3]))
        #expect(receiver.requests.map(\.body) == [Array("abc".utf8), [1, 2, 3]])
    }

    @Test func pipelinedRequestsAndConnectionClose() throws {
        let receiver = try LocalReceiver(behavior: .dynamic { .status(200, body: $0.path) })
        let raw = try RawConnection(port: receiver.port)
        raw.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let text = raw.readToEnd()
        #expect(text.components("HTTP/1.1 200 OK") == 3)
        #expect(text.hasSuffix("/three"))
        #expect(text.components("Connection: close") == 1)
        #expect(receiver.requests.map(\.path) == ["/one", "/two", "/three"])
        #expect(receiver.requests[1].bodyText == "abc")
        #expect(receiver.acceptedConnections == 1)
    }

    @Test func http10ClosesByDefault() throws {
        let receiver = try LocalReceiver(behavior: .status(200, body: "x"))
        let raw = try RawConnection(port: receiver.port)
        raw.send("GET / HTTP/1.0\r\n\r\n")
        let text = raw.readToEnd()
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Connection: close"))
    }

    @Test func malformedRequestGets400() throws {
        let receiver = try LocalReceiver()
        let raw = try RawConnection(port: receiver.port)
        raw.send("NONSENSE\r\n\r\n")
        #expect(raw.readToEnd().hasPrefix("HTTP/1.1 400 "))
        #expect(receiver.requestCount == 0)
    }

    @Test func waitForRequestsTimesOutAndSucceeds() async throws {
        let receiver = try LocalReceiver()
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await receiver.waitForRequests(count: 1, timeout: .milliseconds(100)) == false)
        #expect(clock.now - started < .seconds(30), "returned after its timeout, not never")
        #expect(receiver.waitForRequestsBlocking(count: 1, timeout: .milliseconds(50)) == false)

        let client = try HTTPClient()
        async let waited = receiver.waitForRequests(count: 3, timeout: .seconds(10))
        for _ in 0..<3 { _ = try await client.send(HTTPRequest(url: receiver.url)) }
        #expect(await waited)
        #expect(receiver.waitForRequestsBlocking(count: 3, timeout: .zero))
        #expect(await receiver.waitForRequests(count: 3, timeout: .zero))
    }

    @Test func sequenceRestartsWhenBehaviorIsSet() async throws {
        let receiver = try LocalReceiver(behavior: .sequence([.status(500), .status(500), .status(200)]))
        let client = try HTTPClient()
        var statuses: [Int] = []
        for _ in 0..<3 { statuses.append(try await client.send(HTTPRequest(url: receiver.url)).status) }
        receiver.behavior = .sequence([.status(503), .status(201)])
        for _ in 0..<3 { statuses.append(try await client.send(HTTPRequest(url: receiver.url)).status) }
        #expect(statuses == [500, 500, 200, 503, 201, 201])
        #expect(receiver.requests.map(\.index) == Array(0..<6))
    }

    @Test func recordingCanBeBoundedAndCleared() async throws {
        let receiver = try LocalReceiver(maxRecordedRequests: 3)
        let client = try HTTPClient()
        for index in 0..<10 { _ = try await client.send(HTTPRequest(url: receiver.url(path: "/\(index)"))) }
        #expect(receiver.requestCount == 10)
        #expect(receiver.requests.map(\.path) == ["/7", "/8", "/9"])
        receiver.clearRequests()
        #expect(receiver.requestCount == 0)
        #expect(receiver.requests.isEmpty)
        _ = try await client.send(HTTPRequest(method: "POST", url: receiver.url(path: "/after")))
        #expect(await receiver.waitForRequests(count: 1, timeout: .seconds(5)))
        let after = try #require(receiver.requests.first)
        #expect(after.index == 10)
        #expect(after.header("Content-Length") == "0")
    }

    @Test func stopClosesHeldConnections() async throws {
        let receiver = try LocalReceiver(behavior: .neverAnswer)
        let client = try HTTPClient()
        let task = Task { () -> HTTPError? in
            do throws(HTTPError) { _ = try await client.send(HTTPRequest(url: receiver.url, timeout: .seconds(30))); return nil } catch { return error }
        }
        #expect(await receiver.waitForRequests(count: 1, timeout: .seconds(10)))
        #expect(receiver.openConnections == 1)
        receiver.stop()
        #expect(receiver.openConnections == 0)
        let error = await task.value
        #expect(error?.kind == .receiveFailed)
        receiver.stop()  // idempotent
    }
}
