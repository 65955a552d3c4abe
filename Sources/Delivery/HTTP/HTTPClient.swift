#if canImport(Glibc)
import PlannedEffects
import Glibc
#endif
import CCurl
import Core
import Synchronization

/// An HTTP/1.1 and HTTP/2 client over libcurl's multi interface.
///
/// One dedicated thread owns the `CURLM` handle and every easy handle; it sleeps in
/// `curl_multi_poll` and is woken with `curl_multi_wakeup` when a request is queued.
/// `send` can be called from any task; up to `maxConcurrentTransfers` requests run at
/// once, the rest wait in order. Connections are kept alive and reused through the multi
/// handle's connection cache; redirects are never followed; only http and https are
/// spoken; proxies from the environment (`http_proxy`, …) are ignored.
///
/// `close(drain:)` (or releasing the client) stops the thread: requests still running
/// after the drain time resume with `.clientClosed`.
public final class HTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// Transfers running at once; further requests wait in the client's queue.
        public var maxConcurrentTransfers: Int
        /// Idle connections kept open for reuse (`CURLMOPT_MAXCONNECTS`); default
        /// `maxConcurrentTransfers`.
        public var maxCachedConnections: Int?
        /// A response whose header section is larger fails with `.tooLarge`.
        public var maxResponseHeaderBytes: Int
        /// Sent as `User-Agent` unless a request gives its own.
        public var userAgent: String
        /// A CA bundle (PEM) instead of the system's, e.g. for a private CA.
        public var caBundlePath: String?
        /// An idle kept-alive connection older than this is not reused (`CURLOPT_MAXAGE_CONN`).
        public var maxIdleConnectionAge: Duration

        public init(
            maxConcurrentTransfers: Int = 64,
            maxCachedConnections: Int? = nil,
            maxResponseHeaderBytes: Int = 64 * 1024,
            userAgent: String = "ChangeRelay",
            caBundlePath: String? = nil,
            maxIdleConnectionAge: Duration = .seconds(118)
        ) {
            self.maxConcurrentTransfers = maxConcurrentTransfers
            self.maxCachedConnections = maxCachedConnections
            self.maxResponseHeaderBytes = maxResponseHeaderBytes
            self.userAgent = userAgent
            self.caBundlePath = caBundlePath
            self.maxIdleConnectionAge = maxIdleConnectionAge
        }
    }

    /// The client could not be started (libcurl or thread creation failed).
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let configuration: Configuration
    private let core: ClientCore
    private let thread: Locked<pthread_t?>

    public init(configuration: Configuration = Configuration()) throws(StartError) {
        precondition(configuration.maxConcurrentTransfers > 0, "maxConcurrentTransfers must be positive")
        self.configuration = configuration
        guard let multi = MultiHandle() else { throw StartError(description: "curl_multi_init failed") }
        multi.set(CURLMOPT_MAXCONNECTS, max(1, configuration.maxCachedConnections ?? configuration.maxConcurrentTransfers))
        let core = ClientCore(multi: multi, configuration: configuration)
        self.core = core
        guard let thread = startThread({ CurlEngine(core: core).run() }) else {
            throw StartError(description: "could not start the HTTP client thread")
        }
        self.thread = Locked(thread)
    }

    deinit { close() }

    /// Sends one request and returns its response, whatever the status (a 3xx included).
    /// Throws when no complete response arrived. Cancelling the calling task cancels the
    /// transfer (`.cancelled`).
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        if let problem = requestProblem(request) {
            throw HTTPError(.invalidRequest(problem), method: request.method, url: request.url, message: "")
        }
        let submission = HTTPSubmission(request)
        let core = self.core
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>) in
                submission.continuation = continuation
                if !core.submit(submission) {
                    submission.finish(.failure(submission.error(.clientClosed, "the client is closed")))
                }
            }
        } onCancel: {
            core.cancel(submission)
        }
        return try result.get()
    }

    /// Stops accepting requests, lets the ones already sent run for up to `drain`, resumes
    /// the rest with `.clientClosed`, and returns when the client thread has ended (so it
    /// blocks the caller for up to `drain` plus one loop turn). Safe to call more than once.
    public func close(drain: Duration = .zero) {
        core.requestClose(drain: drain)
        let running = thread.withLock { thread -> pthread_t? in
            defer { thread = nil }
            return thread
        }
        guard let running else { return }
        if pthread_equal(running, pthread_self()) != 0 {
            pthread_detach(running)
        } else {
            pthread_join(running, nil)
        }
    }

    /// Requests queued or running right now (a snapshot, for metrics).
    public var inFlight: Int { core.inFlight.load(ordering: .relaxed) }
}

/// What `send` hands to the client thread. Its continuation is set before submission and
/// resumed exactly once, on the client thread (or by `send` if submission is refused).
final class HTTPSubmission: @unchecked Sendable {
    enum State {
        case submitted
        case queued
        case active(CurlTransfer)
        case done
    }

    let request: HTTPRequest
    var continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>?
    /// Set by the task's cancellation handler, on any thread.
    let cancelled = Atomic<Bool>(false)
    /// Client-thread state.
    var state = State.submitted

    init(_ request: HTTPRequest) { self.request = request }

    func finish(_ result: Result<HTTPResponse, HTTPError>) {
        state = .done
        continuation?.resume(returning: result)
        continuation = nil
    }

    func error(_ kind: HTTPError.Kind, _ message: String, curlCode: Int? = nil) -> HTTPError {
        HTTPError(kind, method: request.method, url: request.url, message: message, curlCode: curlCode)
    }
}

/// State shared between callers and the client thread.
final class ClientCore: Sendable {
    struct Inbox {
        var submissions: [HTTPSubmission] = []
        var cancellations: [HTTPSubmission] = []
        var closing = false
        var drainDeadline: ContinuousClock.Instant?
        var wakePending = false
    }

    let multi: MultiHandle
    let configuration: HTTPClient.Configuration
    let inbox = Locked(Inbox())
    let inFlight = Atomic<Int>(0)

    init(multi: MultiHandle, configuration: HTTPClient.Configuration) {
        self.multi = multi
        self.configuration = configuration
    }

    /// Queues a submission; false once the client is closing.
    func submit(_ submission: HTTPSubmission) -> Bool {
        let (accepted, wake) = inbox.withLock { inbox -> (Bool, Bool) in
            guard !inbox.closing else { return (false, false) }
            inbox.submissions.append(submission)
            inFlight.add(1, ordering: .relaxed)
            defer { inbox.wakePending = true }
            return (true, !inbox.wakePending)
        }
        // `multi` lives as long as this core, so waking after the lock is safe even if
        // the thread has ended meanwhile.
        if wake { multi.wakeup() }
        return accepted
    }

    func cancel(_ submission: HTTPSubmission) {
        submission.cancelled.store(true, ordering: .sequentiallyConsistent)
        let wake = inbox.withLock { inbox -> Bool in
            inbox.cancellations.append(submission)
            defer { inbox.wakePending = true }
            return !inbox.wakePending
        }
        if wake { multi.wakeup() }
    }

    func requestClose(drain: Duration) {
        inbox.withLock { inbox in
            if !inbox.closing {
                inbox.closing = true
                inbox.drainDeadline = .now + drain
            }
            inbox.wakePending = true
        }
        multi.wakeup()
    }

    /// Everything posted since the last call (client thread).
    func take() -> Inbox {
        inbox.withLock { inbox in
            let taken = inbox
            inbox.submissions = []
            inbox.cancellations = []
            inbox.wakePending = false
            return taken
        }
    }
}

/// Checks what libcurl would otherwise accept or misread; nil when the request is fine.
func requestProblem(_ request: HTTPRequest) -> String? {
    if request.method.isEmpty || !request.method.utf8.allSatisfy(isTokenByte) {
        return "method \"\(request.method)\" is not an HTTP token"
    }
    let lower = request.url.lowercased()
    guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
        return "only http and https URLs are allowed"
    }
    if request.url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
        return "the URL contains spaces or control characters"
    }
    for (name, value) in request.headers {
        if name.isEmpty || !name.utf8.allSatisfy(isTokenByte) {
            return "header name \"\(name)\" is not an HTTP token"
        }
        // The value is never quoted here: it may be a credential.
        if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
            return "the value of header \(name) contains CR, LF or NUL"
        }
    }
    if let address = request.pinnedAddress, !isAddressLiteral(address) {
        return "pinned address \"\(address)\" is not an IP address literal"
    }
    if request.timeout <= .zero || request.connectTimeout <= .zero { return "timeouts must be positive" }
    if request.responseBodyLimit < 0 { return "responseBodyLimit must not be negative" }
    return nil
}

private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

/// An IPv4 or IPv6 literal as libcurl's CONNECT_TO reads it; an IPv6 one may carry a zone
/// (`fe80::1%eth0`), which a link-local address needs. Nothing that could be a host name.
private func isAddressLiteral(_ text: String) -> Bool {
    let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
    let address = parts[0].utf8
    guard !address.isEmpty,
          address.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") })
    else { return false }
    guard parts.count == 2 else { return true }
    let zone = parts[1].utf8
    return address.contains(UInt8(ascii: ":")) && !zone.isEmpty
        && zone.allSatisfy(isUnreservedURLByte)
}

/// RFC 3986 unreserved: letters, digits, `-._~`. RFC 6874 zone ids (interface names and
/// numbers) are made of these.
func isUnreservedURLByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    default:
        "-._~".utf8.contains(byte)
    }
}

private func isHexDigit(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
    default: false
    }
}
