#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// "Stop at the next safe point", for a loop that blocks its thread in C calls (libpq's
/// waits, `poll`). Asked once, it stays asked. Besides a flag to look at between steps it
/// carries a descriptor that turns readable when asked, so a loop sleeping in `poll` (a
/// reconnect backoff, a wait for notifications) wakes at once instead of finishing its
/// sleep: shutting down never waits for a timer.
public final class StopSignal: Sendable {
    private let requested = Atomic<Bool>(false)
    private let pipe = WakePipe()

    public init() {}

    /// Asks the loop to stop; safe from any thread, any number of times.
    public func request() {
        guard !requested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pipe.wake()
    }

    public var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// Readable from the moment stop is asked, and from then on: add it to a `poll` to be woken.
    public var descriptor: Int32 { pipe.descriptor }

    /// Sleeps for `duration` or until stop is asked, whichever comes first; true when stop was asked.
    @discardableResult
    public func sleep(for duration: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: duration)
        while !isRequested {
            let left = clock.now.duration(to: deadline)
            guard left > .zero else { return false }
            var descriptors = [pollfd(fd: pipe.descriptor, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 1, Int32(clamping: max(1, left.wholeMilliseconds)))
        }
        return true
    }
}
