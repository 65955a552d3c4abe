#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The earliest time something is due, published by the code that plans it and slept on by
/// a timer thread: an earlier deadline, or a new one, wakes the sleeper at once, so timers
/// sleep exactly until they are due instead of polling.
public final class NextDeadline: Sendable {
    private let value = Mutex<PostgresTimestamp?>(nil)
    private let pipe = WakePipe()

    public init() {}

    public var current: PostgresTimestamp? { value.withLock { $0 } }

    /// Publishes the deadline (nil: nothing is due); wakes the sleeper when it changed.
    public func set(_ deadline: PostgresTimestamp?) {
        let changed = value.withLock { value in
            defer { value = deadline }
            return value != deadline
        }
        if changed { pipe.wake() }
    }

    /// Sleeps for `duration`, until the deadline changes, or until stop is asked.
    public func wait(for duration: Duration, unless stop: StopSignal) {
        guard !stop.isRequested, duration > .zero else { return }
        var descriptors = [pollfd(fd: pipe.descriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0)]
        _ = poll(&descriptors, 2, Int32(clamping: max(1, duration.wholeMilliseconds)))
        pipe.drain()
    }
}
