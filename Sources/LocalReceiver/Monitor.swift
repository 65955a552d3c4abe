#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex with one condition variable on the monotonic clock.
final class Monitor: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (inside `withLock`) until `done()` is true or the deadline passes; returns `done()`.
    func wait(until deadline: Deadline, _ done: () -> Bool) -> Bool {
        var limit = deadline.timespec
        while !done() {
            if pthread_cond_timedwait(condition, mutex, &limit) == ETIMEDOUT { return done() }
        }
        return true
    }

    func broadcast() { pthread_cond_broadcast(condition) }
}

/// A point on CLOCK_MONOTONIC.
struct Deadline {
    let timespec: timespec

    init(after duration: Duration) {
        var now = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let parts = duration.components
        var seconds = now.tv_sec + Int(parts.seconds)
        var nanoseconds = now.tv_nsec + Int(parts.attoseconds / 1_000_000_000)
        if nanoseconds >= 1_000_000_000 {
            seconds += 1
            nanoseconds -= 1_000_000_000
        }
        timespec = Glibc.timespec(tv_sec: seconds, tv_nsec: nanoseconds)
    }
}

func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
