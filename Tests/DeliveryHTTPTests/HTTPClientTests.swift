#if canImport(Glibc)
import Core
import PlannedEffects
import Glibc
#endif
import Delivery
import LocalReceiver
import Testing

/// Sends and returns the error, or nil when a response came back.
private func failure(_ client: HTTPClient, _ request: HTTPRequest) async -> HTTPError? {
    do {
        _ = try await client.send(request)
        return nil
    } catch {
        return error
    }
}

/// A loopback port that refuses connections: bound, never listening, held open.
private final class RefusingPort {
    let fd: Int32
    let port: Int

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

private let secret = "Bearer sk_live_9f8e7d6c5b4a_SECRET"

@Suite(.timeLimit(.minutes(1)))
struct HTTPClientTests {
    @Test func getRoundTripCarriesHeadersAndReturnsResponse() async throws {
        let receiver = try LocalReceiver(behavior: .respond(ReceiverResponse(
            status: 201, headers: [("X-Reply", "yes"), ("Content-Type", "text/plain")], body: "created")))
        let client = try HTTPClient()
        let response = try await client.send(HTTPRequest(
            url: receiver.url(path: "/items?id=7"),
            headers: [("Idempotency-Key", "k-1"), ("X-Empty", ""), ("Authorization", secret)]))
        #expect(response.status == 201)
        #expect(response.bodyText == "created")
        #expect(response.header("x-reply") == "yes")
        #expect(!response.bodyTruncated)
        #expect(response.timings.total > .zero)
        #expect(response.remoteAddress == "127.0.0.1")

        let seen = try #require(receiver.requests.first)
        #expect(seen.method == "GET")
        #expect(seen.target == "/items?id=7")
        #expect(seen.path == "/items")
        #expect(seen.header("idempotency-key") == "k-1")
        #expect(seen.header("X-Empty") == "")
        #expect(seen.header("Authorization") == secret)
        #expect(seen.header("Expect") == nil)
        #expect(seen.body.isEmpty)
    }

    @Test func postSendsBinaryBodyExactly() async throws {
        let receiver = try LocalReceiver(behavior: .status(200, body: "{\"ok\":true}"))
        let client = try HTTPClient()
        let body: [UInt8] = Array("{\"a\":1}".utf8) + [0, 255, 10, 13] + Array(repeating: 0x42, count: 200_000)
        let response = try await client.send(HTTPRequest(
            method: "POST", url: receiver.url(path: "/functions/v1/check-conversation"),
            headers: [("Content-Type", "application/json"), ("Idempotency-Key", "abc")], body: body))
        #expect(response.status == 200)
        #expect(response.bodyText == "{\"ok\":true}")
        let seen = try #require(receiver.requests.first)
        #expect(seen.method == "POST")
        #expect(seen.body == body)
        #expect(seen.header("Content-Type") == "application/json")
        #expect(seen.header("Content-Length") == String(body.count))
        #expect(seen.header("Expect") == nil)  // no 100-continue round trip for large bodies
    }

    @Test func bodyWithoutContentTypeIsNotLabelledAsForm() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        _ = try await client.send(HTTPRequest(method: "PUT", url: receiver.url, body: Array("x=1".utf8)))
        _ = try await client.send(HTTPRequest(method: "DELETE", url: receiver.url))
        let seen = receiver.requests
        #expect(seen.map(\.method) == ["PUT", "DELETE"])
        #expect(seen[0].header("Content-Type") == nil)
        #expect(seen[0].bodyText == "x=1")
    }

    @Test func sequentialRequestsReuseOneConnection() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        var reused: [Bool] = []
        for index in 0..<50 {
            let response = try await client.send(.post(receiver.url(path: "/\(index)"), body: "n=\(index)"))
            #expect(response.status == 200)
            reused.append(response.reusedConnection)
        }
        #expect(receiver.acceptedConnections == 1)
        #expect(reused.first == false)
        #expect(reused.dropFirst().allSatisfy { $0 })
        #expect(receiver.requests.map(\.path) == (0..<50).map { "/\($0)" })
    }

    @Test func hundredConcurrentRequests() async throws {
        let receiver = try LocalReceiver(behavior: .dynamic { request in .status(200, body: request.path) })
        let client = try HTTPClient(configuration: .init(maxConcurrentTransfers: 64))
        let results = await withTaskGroup(of: (Int, Result<HTTPResponse, HTTPError>).self) { group in
            for index in 0..<100 {
                group.addTask {
                    do throws(HTTPError) {
                        return (index, .success(try await client.send(HTTPRequest(url: receiver.url(path: "/r/\(index)")))))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var all: [(Int, Result<HTTPResponse, HTTPError>)] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 100)
        for (index, result) in results {
            let response = try result.get()
            #expect(response.status == 200)
            #expect(response.bodyText == "/r/\(index)")
        }
        #expect(receiver.requestCount == 100)
        #expect(Set(receiver.requests.map(\.path)).count == 100)
        #expect(receiver.acceptedConnections <= 64)
        #expect(client.inFlight == 0)
    }

    @Test func redirectIsReturnedNotFollowed() async throws {
        let receiver = try LocalReceiver(behavior: .sequence([.redirect(to: "/elsewhere", status: 301), .status(200)]))
        let client = try HTTPClient()
        let response = try await client.send(HTTPRequest(method: "POST", url: receiver.url(path: "/start"), body: [1]))
        #expect(response.status == 301)
        #expect(response.header("Location") == "/elsewhere")
        #expect(receiver.requests.map(\.path) == ["/start"])
    }

    @Test func scriptedStatusesAndRetryAfterPassThrough() async throws {
        let receiver = try LocalReceiver(behavior: .sequence([.status(500), .retryAfter(7, status: 429), .status(200)]))
        let client = try HTTPClient()
        var statuses: [Int] = []
        var retryAfter: String?
        for _ in 0..<4 {
            let response = try await client.send(HTTPRequest(url: receiver.url))
            statuses.append(response.status)
            if response.status == 429 { retryAfter = response.header("retry-after") }
        }
        #expect(statuses == [500, 429, 200, 200])
        #expect(retryAfter == "7")
    }

    @Test func refusedConnectionIsCouldNotConnectNamingTheURL() async throws {
        let refusing = RefusingPort()
        let client = try HTTPClient()
        let url = "http://127.0.0.1:\(refusing.port)/functions/v1/automation-executor"
        let error = try #require(await failure(client, HTTPRequest(method: "POST", url: url, headers: [("Authorization", secret)])))
        #expect(error.kind == .couldNotConnect)
        #expect(error.url == url)
        #expect(error.method == "POST")
        #expect(error.description.contains(url))
        #expect(error.isRetryable)
    }

    @Test func neverAnsweringReceiverTimesOutWithinTheTotalTimeout() async throws {
        let receiver = try LocalReceiver(behavior: .neverAnswer)
        let client = try HTTPClient()
        let clock = ContinuousClock()
        let started = clock.now
        let error = try #require(await failure(client, HTTPRequest(url: receiver.url, timeout: .milliseconds(400))))
        let elapsed = clock.now - started
        #expect(error.kind == .timedOut)
        #expect(elapsed >= .milliseconds(350))
        #expect(elapsed < .seconds(30))  // the 400 ms timeout ended it: the receiver never would
        #expect(receiver.requestCount == 1)
    }

    /// An answer counts from its status line: a body that trickles past the timeout is cut
    /// there, and the answer stands with what arrived (a 2xx was received and acted on).
    @Test func aBodyTricklingPastTheTimeoutIsCutAndTheAnswerStands() async throws {
        let receiver = try LocalReceiver(behavior: .trickle(bytes: 10_000, interval: .milliseconds(20)))
        let client = try HTTPClient()
        let clock = ContinuousClock()
        let started = clock.now
        let response = try await client.send(HTTPRequest(url: receiver.url, timeout: .milliseconds(500)))
        #expect(response.status == 200)
        #expect(response.bodyTruncated)
        #expect(response.body.count < 10_000 && response.body.allSatisfy { $0 == UInt8(ascii: "x") })
        #expect(clock.now - started < .seconds(30))  // 10 000 bytes would take 200 s
    }

    /// Headers that never end are no answer: the timeout is an error, tried again.
    @Test func headersThatNeverEndTimeOut() async throws {
        let receiver = try LocalReceiver(behavior: .unfinishedHeaders)
        let client = try HTTPClient()
        let error = try #require(await failure(client, HTTPRequest(url: receiver.url, timeout: .milliseconds(500))))
        #expect(error.kind == .timedOut)
    }

    @Test func tenMegabyteBodyIsCappedAndTheClientStaysHealthy() async throws {
        let receiver = try LocalReceiver(behavior: .tenMegabyteBody)
        let client = try HTTPClient()
        let big = try await client.send(HTTPRequest(url: receiver.url, responseBodyLimit: 4096))
        #expect(big.status == 200)
        #expect(big.body.count == 4096)
        #expect(big.bodyTruncated)
        #expect(big.header("Content-Length") == String(10 * 1024 * 1024))

        receiver.behavior = .status(200, body: "fine")
        let next = try await client.send(HTTPRequest(url: receiver.url))
        #expect(next.status == 200)
        #expect(next.bodyText == "fine")
        #expect(!next.bodyTruncated)
        #expect(!next.reusedConnection)  // .abort closed the connection
    }

    @Test func discardPolicyReadsTheRestAndKeepsTheConnection() async throws {
        let rest = OversizedBodyPolicy.discardLimit
        let receiver = try LocalReceiver(behavior: .sequence([.largeBody(bytes: 100 + rest), .status(204)]))
        let client = try HTTPClient()
        let big = try await client.send(HTTPRequest(url: receiver.url, responseBodyLimit: 100, oversizedBody: .discard))
        #expect(big.body.count == 100)
        #expect(big.bodyTruncated)
        let next = try await client.send(HTTPRequest(url: receiver.url))
        #expect(next.status == 204)
        #expect(next.reusedConnection)
        #expect(receiver.acceptedConnections == 1)
    }

    /// A 2xx whose body never ends has still been answered: the discard policy stops reading
    /// past its bound and returns the answer, rather than reading to the timeout and turning
    /// an accepted request into a failure that would be sent again.
    @Test func discardPolicyCutsABodyWithoutEndAndReturnsTheAnswer() async throws {
        let receiver = try LocalReceiver(behavior: .sequence([.largeBody(bytes: 1 << 40), .status(204)]))
        let client = try HTTPClient()
        let endless = try await client.send(HTTPRequest(url: receiver.url, timeout: .seconds(600), responseBodyLimit: 100,
                                                        oversizedBody: .discard))
        #expect(endless.status == 200)
        #expect(endless.body == Array(repeating: UInt8(ascii: "a"), count: 100))
        #expect(endless.bodyTruncated)
        let next = try await client.send(HTTPRequest(url: receiver.url))
        #expect(next.status == 204)
        #expect(!next.reusedConnection)
    }

    @Test func bodyExactlyAtTheLimitIsNotTruncated() async throws {
        let receiver = try LocalReceiver(behavior: .status(200, body: "12345"))
        let client = try HTTPClient()
        let exact = try await client.send(HTTPRequest(url: receiver.url, responseBodyLimit: 5))
        #expect(exact.bodyText == "12345")
        #expect(!exact.bodyTruncated)
        let short = try await client.send(HTTPRequest(url: receiver.url, responseBodyLimit: 4))
        #expect(short.bodyText == "1234")
        #expect(short.bodyTruncated)
    }

    @Test func invalidHTTPIsInvalidResponse() async throws {
        let receiver = try LocalReceiver(behavior: .invalidHTTP)
        let client = try HTTPClient()
        let error = try #require(await failure(client, HTTPRequest(url: receiver.url)))
        #expect(error.kind == .invalidResponse)

        receiver.behavior = .closeWithoutAnswer
        let empty = try #require(await failure(client, HTTPRequest(url: receiver.url)))
        #expect(empty.kind == .receiveFailed)

        receiver.behavior = .status(200)
        #expect(try await client.send(HTTPRequest(url: receiver.url)).status == 200)
    }

    /// A receiver that reads a request and closes without answering, on a kept-alive
    /// connection: libcurl would send the request again on a new connection, unasked, within
    /// the same try. The try fails instead, the request having arrived once.
    @Test func aRequestIsSentOnceWhenItsKeptAliveConnectionDiesUnderIt() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        for index in 0..<3 { _ = try await client.send(.post(receiver.url(path: "/warm/\(index)"), body: "w")) }
        #expect(receiver.acceptedConnections == 1)
        receiver.behavior = .closeWithoutAnswer
        let error = try #require(await failure(client, .post(receiver.url(path: "/once"), body: "x")))
        #expect(error.kind == .receiveFailed)
        #expect(error.message.contains("not sent again within this try"), "\(error)")
        #expect(receiver.requests.filter { $0.path == "/once" }.count == 1)

        receiver.behavior = .status(200)
        #expect(try await client.send(.post(receiver.url(path: "/after"), body: "y")).status == 200)
    }

    /// A header line past libcurl's own limit is a response too large, not "out of memory".
    @Test func aHeaderLinePastLibcurlsLimitIsTooLarge() async throws {
        let huge = String(repeating: "h", count: 300_000)
        let receiver = try LocalReceiver(behavior: .respond(ReceiverResponse(status: 200, headers: [("X-Huge", huge)])))
        let client = try HTTPClient(configuration: .init(maxResponseHeaderBytes: 1024 * 1024))
        let error = try #require(await failure(client, HTTPRequest(url: receiver.url)))
        #expect(error.kind == .tooLarge, "\(error)")
    }

    @Test func oversizedResponseHeadersAreTooLarge() async throws {
        let huge = String(repeating: "h", count: 40_000)
        let receiver = try LocalReceiver(behavior: .respond(ReceiverResponse(status: 200, headers: [("X-Huge", huge)])))
        let client = try HTTPClient(configuration: .init(maxResponseHeaderBytes: 16 * 1024))
        let error = try #require(await failure(client, HTTPRequest(url: receiver.url)))
        #expect(error.kind == .tooLarge)
    }

    @Test func authorizationNeverAppearsInErrors() async throws {
        let refusing = RefusingPort()
        let silent = try LocalReceiver(behavior: .neverAnswer)
        let garbage = try LocalReceiver(behavior: .invalidHTTP)
        let client = try HTTPClient()
        let headers = [("Authorization", secret), ("X-Api-Key", "apikey-SECRET-2"), ("Content-Type", "application/json")]
        let requests = [
            HTTPRequest(method: "POST", url: "http://127.0.0.1:\(refusing.port)/x", headers: headers, body: [1]),
            HTTPRequest(method: "POST", url: silent.url, headers: headers, body: [1], timeout: .milliseconds(200)),
            HTTPRequest(method: "POST", url: garbage.url, headers: headers, body: [1]),
            HTTPRequest(url: "ftp://example.invalid/", headers: headers),
            HTTPRequest(url: garbage.url, headers: headers + [("X-Bad", "a\r\nInjected: yes")]),
            HTTPRequest(url: garbage.url, headers: [("Authorization", secret + "\r\nInjected: yes")]),
            HTTPRequest(url: "http://user:hunter2-SECRET@127.0.0.1:\(refusing.port)/", headers: headers),
        ]
        for request in requests {
            let error = try #require(await failure(client, request))
            for text in [error.description, String(reflecting: error), error.message, error.url, "\(error.kind)"] {
                #expect(!text.contains("SECRET"), "leaked in: \(text)")
            }
            var dumped = ""
            dump(request, to: &dumped)
            for text in [request.description, request.debugDescription, String(reflecting: request), dumped] {
                #expect(!text.contains("SECRET"), "leaked in: \(text)")
            }
        }
    }

    @Test func invalidRequestsAreRejectedBeforeSending() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        let cases = [
            HTTPRequest(url: "ftp://127.0.0.1/file"),
            HTTPRequest(url: "file:///etc/passwd"),
            HTTPRequest(url: receiver.url + "/a b"),
            HTTPRequest(method: "GET /x", url: receiver.url),
            HTTPRequest(url: receiver.url, headers: [("X-Bad", "a\nb")]),
            HTTPRequest(url: receiver.url, headers: [("Bad Name", "v")]),
            HTTPRequest(url: receiver.url, pinnedAddress: "evil.example"),
            HTTPRequest(url: receiver.url, pinnedAddress: "127.0.0.1%lo"),
            HTTPRequest(url: receiver.url, pinnedAddress: "fe80::1%"),
            HTTPRequest(url: receiver.url, pinnedAddress: "fe80::1%eth0/x"),
            HTTPRequest(url: receiver.url, pinnedAddress: "[::1]"),
        ]
        for request in cases {
            let error = try #require(await failure(client, request))
            guard case .invalidRequest = error.kind else {
                Issue.record("expected invalidRequest, got \(error)")
                continue
            }
            #expect(!error.isRetryable)
        }
        #expect(receiver.requestCount == 0)
    }

    @Test func pinnedAddressOverridesTheURLHost() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        // Nothing listens on 127.0.0.2; the pin sends the request to 127.0.0.1 instead.
        let url = "http://127.0.0.2:\(receiver.port)/pinned"
        let response = try await client.send(HTTPRequest(url: url, connectTimeout: .seconds(2), pinnedAddress: "127.0.0.1"))
        #expect(response.status == 200)
        #expect(response.remoteAddress == "127.0.0.1")
        #expect(receiver.requests.first?.header("Host") == "127.0.0.2:\(receiver.port)")
        let unpinned = try #require(await failure(client, HTTPRequest(url: url, connectTimeout: .seconds(2))))
        #expect(unpinned.kind == .couldNotConnect)
    }

    @Test func closeResumesRequestsInFlight() async throws {
        let receiver = try LocalReceiver(behavior: .neverAnswer)
        let client = try HTTPClient(configuration: .init(maxConcurrentTransfers: 3))
        let clock = ContinuousClock()
        let started = clock.now
        let tasks = (0..<5).map { index in
            Task { () -> HTTPError? in await failure(client, HTTPRequest(url: receiver.url(path: "/\(index)"), timeout: .seconds(30))) }
        }
        // Three transfers running, two queued behind the concurrency limit.
        #expect(await receiver.waitForRequests(count: 3, timeout: .seconds(10)))
        client.close()
        for task in tasks {
            let error = await task.value
            #expect(error?.kind == .clientClosed)
        }
        #expect(clock.now - started < .seconds(10))
        let late = try #require(await failure(client, HTTPRequest(url: receiver.url)))
        #expect(late.kind == .clientClosed)
        client.close()  // idempotent
    }

    @Test func closeWithDrainLetsRunningRequestsFinish() async throws {
        let receiver = try LocalReceiver(behavior: .trickle(bytes: 5, interval: .milliseconds(50)))
        let client = try HTTPClient()
        let task = Task { try await client.send(HTTPRequest(url: receiver.url)) }
        #expect(await receiver.waitForRequests(count: 1, timeout: .seconds(10)))
        client.close(drain: .seconds(10))
        let response = try await task.value
        #expect(response.bodyText == "xxxxx")
    }

    @Test func cancellingTheTaskCancelsTheTransfer() async throws {
        let receiver = try LocalReceiver(behavior: .neverAnswer)
        let client = try HTTPClient()
        let task = Task { await failure(client, HTTPRequest(url: receiver.url, timeout: .seconds(30))) }
        #expect(await receiver.waitForRequests(count: 1, timeout: .seconds(10)))
        task.cancel()
        let error = await task.value
        #expect(error?.kind == .cancelled)
        #expect(client.inFlight == 0)

        receiver.behavior = .status(200)
        #expect(try await client.send(HTTPRequest(url: receiver.url)).status == 200)
    }

    @Test func alreadyCancelledTaskFailsAtOnce() async throws {
        let receiver = try LocalReceiver()
        let client = try HTTPClient()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await failure(client, HTTPRequest(url: receiver.url))
        }
        let error = await task.value
        #expect(error?.kind == .cancelled)
    }
}
