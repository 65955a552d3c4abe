#if canImport(Glibc)
import Glibc
#endif

/// Starts a POSIX thread running `body`; nil when the system refuses one. For loops that
/// block in C calls (libcurl's multi poll, `accept`), which must not hold a thread of
/// Swift's cooperative pool. A plain pthread rather than Foundation's `Thread`: a joinable
/// one can be waited for with `pthread_join`, and callers need nothing beyond Glibc. A
/// detached thread frees itself when `body` returns; a joinable one must be joined.
@discardableResult
public func startThread(detached: Bool = false, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    guard result == 0 else {
        Unmanaged<Box>.fromOpaque(context).release()
        return nil
    }
    if detached { pthread_detach(thread) }
    return thread
}

/// Blocks the calling thread for `duration`: for loops that own a thread of their own
/// (never the cooperative pool's) and must pause without being woken early.
public func sleepThread(for duration: Duration) {
    let (seconds, attoseconds) = duration.components
    guard seconds > 0 || attoseconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
}
