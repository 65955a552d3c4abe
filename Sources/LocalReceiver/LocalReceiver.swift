#if canImport(Glibc)
import Glibc
#endif
import Core

/// A small HTTP/1.1 server on 127.0.0.1 for tests and `changerelay dev`: it binds a free
/// port, records every request, and answers according to a `Behavior` that can be
/// changed at any time. One thread accepts; each connection gets its own thread
/// (keep-alive, Content-Length and chunked request bodies, `Expect: 100-continue`).
///
/// It listens on the loopback address only. `stop()` (or releasing it) closes the
/// listening socket and every connection and waits for their threads.
public final class LocalReceiver: Sendable {
    public struct StartError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The bound port.
    public let port: Int
    private let core: ReceiverCore
    private let acceptThread: pthread_t

    /// `maxRecordedRequests` bounds memory for long runs (`changerelay dev`, benchmarks):
    /// `requests` then holds the latest ones only, while `requestCount` still counts all.
    public init(behavior: Behavior = .status(200), maxRecordedRequests: Int = .max) throws(StartError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian  // 127.0.0.1
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1024) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw StartError(description: "bind/listen on 127.0.0.1: \(message)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let core = ReceiverCore(listenFD: fd, behavior: behavior, maxRecorded: max(0, maxRecordedRequests))
        self.core = core
        guard let thread = startThread({ core.acceptLoop() }) else {
            close(fd)
            throw StartError(description: "could not start the accept thread")
        }
        acceptThread = thread
    }

    deinit { stop() }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    public var url: String { "http://127.0.0.1:\(port)" }

    /// `url` followed by `path` (which should start with `/`).
    public func url(path: String) -> String { url + path }

    /// How requests are answered from now on. Setting it restarts a `.sequence`.
    public var behavior: Behavior {
        get { core.monitor.withLock { core.behavior } }
        set {
            core.monitor.withLock {
                core.behavior = newValue
                core.behaviorStart = core.nextIndex
            }
        }
    }

    /// The requests received since the start (or `clearRequests`), in arrival order; at
    /// most the latest `maxRecordedRequests`.
    public var requests: [RecordedRequest] {
        core.monitor.withLock { Array(core.requests.suffix(core.maxRecorded)) }
    }

    /// Requests received since the start (or `clearRequests`), recorded or not.
    public var requestCount: Int { core.monitor.withLock { core.received } }

    /// Connections accepted so far (a client that reuses connections keeps this low).
    public var acceptedConnections: Int { core.monitor.withLock { core.acceptedConnections } }

    /// Connections open right now.
    public var openConnections: Int { core.monitor.withLock { core.openConnections.count } }

    /// Forgets the recorded requests and sets `requestCount` back to 0 (the connection
    /// count and `RecordedRequest.index` go on); restarts a `.sequence`.
    public func clearRequests() {
        core.monitor.withLock {
            core.requests.removeAll()
            core.received = 0
            core.behaviorStart = core.nextIndex
        }
    }

    /// Suspends until `requestCount` reaches `count` (true) or `timeout`
    /// has passed (false). Does not block a thread.
    public func waitForRequests(count: Int, timeout: Duration) async -> Bool {
        let core = self.core
        let id = core.monitor.withLock { () -> Int in
            core.nextWaiterID += 1
            return core.nextWaiterID
        }
        let timer = Task {
            // Cancelled once the wait is over: then there is nothing to expire.
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            core.expireWaiter(id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            core.addWaiter(id: id, count: count, continuation: continuation)
        }
    }

    /// The blocking form of `waitForRequests`, for code that is not async.
    public func waitForRequestsBlocking(count: Int, timeout: Duration) -> Bool {
        let deadline = Deadline(after: timeout)
        return core.monitor.withLock {
            core.monitor.wait(until: deadline) { core.received >= count || core.stopped }
                && core.received >= count
        }
    }

    /// Stops accepting, closes every connection (a held or trickling one too) and waits
    /// up to 5 s for the connection threads to end. Safe to call more than once.
    public func stop() {
        let first = core.monitor.withLock { () -> Bool in
            guard !core.stopped else { return false }
            core.stopped = true
            shutdown(core.listenFD, Int32(SHUT_RDWR))
            for fd in core.openConnections { shutdown(fd, Int32(SHUT_RDWR)) }
            core.monitor.broadcast()
            return true
        }
        guard first else { return }
        pthread_join(acceptThread, nil)
        close(core.listenFD)
        core.monitor.withLock {
            _ = core.monitor.wait(until: Deadline(after: .seconds(5))) { core.liveConnections == 0 }
        }
        core.failAllWaiters()
    }
}

/// State shared by the receiver's threads, guarded by `monitor`.
final class ReceiverCore: @unchecked Sendable {
    struct Waiter {
        var id: Int
        var count: Int
        var continuation: CheckedContinuation<Bool, Never>
    }

    let monitor = Monitor()
    let listenFD: Int32
    var behavior: Behavior
    /// `nextIndex` when the behaviour was set: a sequence counts from here.
    var behaviorStart = 0
    /// Recorded requests; may hold more than `maxRecorded` (trimmed in batches).
    var requests: [RecordedRequest] = []
    let maxRecorded: Int
    /// Requests since the start or the last clear.
    var received = 0
    /// The next `RecordedRequest.index`; never goes back.
    var nextIndex = 0
    var acceptedConnections = 0
    var openConnections: Set<Int32> = []
    var liveConnections = 0
    var stopped = false
    var waiters: [Waiter] = []
    var expiredWaiters: Set<Int> = []
    var nextWaiterID = 0

    init(listenFD: Int32, behavior: Behavior, maxRecorded: Int) {
        self.listenFD = listenFD
        self.behavior = behavior
        self.maxRecorded = maxRecorded
    }

    func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if monitor.withLock({ stopped }) { return }
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    sleepThread(for: .milliseconds(10))  // out of descriptors: let connections close
                    continue
                }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // not inherited by child processes (`changerelay dev` starts some)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let connectionID = monitor.withLock { () -> Int? in
                guard !stopped else { return nil }
                acceptedConnections += 1
                openConnections.insert(fd)
                liveConnections += 1
                return acceptedConnections
            }
            guard let connectionID else {
                close(fd)
                return
            }
            let started = startThread(detached: true) { [self] in
                ReceiverConnection(core: self, fd: fd, id: connectionID).run()
                connectionEnded(fd)
            }
            if started == nil { connectionEnded(fd) }
        }
    }

    /// Removes the descriptor from the open set before closing it, under the lock, so
    /// `stop()` never shuts down a descriptor number that was reused.
    func connectionEnded(_ fd: Int32) {
        monitor.withLock {
            openConnections.remove(fd)
            close(fd)
            liveConnections -= 1
            monitor.broadcast()
        }
    }

    var isStopped: Bool { monitor.withLock { stopped } }

    /// Records a request; returns it (with its index) and the behaviour to answer with.
    func record(_ request: RecordedRequest) -> (RecordedRequest, Behavior, Int) {
        var request = request
        let (current, position, ready) = monitor.withLock { () -> (Behavior, Int, [CheckedContinuation<Bool, Never>]) in
            request.index = nextIndex
            nextIndex += 1
            received += 1
            if maxRecorded > 0 {
                requests.append(request)
                if requests.count - maxRecorded > max(1024, maxRecorded) {
                    requests.removeFirst(requests.count - maxRecorded)
                }
            }
            monitor.broadcast()
            var ready: [CheckedContinuation<Bool, Never>] = []
            waiters.removeAll { waiter in
                guard received >= waiter.count else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return (self.behavior, request.index - behaviorStart, ready)
        }
        for continuation in ready { continuation.resume(returning: true) }
        return (request, current, max(0, position))
    }

    func addWaiter(id: Int, count: Int, continuation: CheckedContinuation<Bool, Never>) {
        let immediate = monitor.withLock { () -> Bool? in
            if received >= count { return true }
            if stopped || expiredWaiters.remove(id) != nil { return false }
            waiters.append(Waiter(id: id, count: count, continuation: continuation))
            return nil
        }
        if let immediate { continuation.resume(returning: immediate) }
    }

    func expireWaiter(_ id: Int) {
        let expired = monitor.withLock { () -> CheckedContinuation<Bool, Never>? in
            guard let index = waiters.firstIndex(where: { $0.id == id }) else {
                expiredWaiters.insert(id)  // the waiter may not have registered yet
                return nil
            }
            return waiters.remove(at: index).continuation
        }
        expired?.resume(returning: false)
    }

    func failAllWaiters() {
        let all = monitor.withLock { () -> [Waiter] in
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in all { waiter.continuation.resume(returning: false) }
    }
}
