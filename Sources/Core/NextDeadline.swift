#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The earliest time something is due, published by the code that plans it and slept on by
/// a timer thread: an earlier deadline, or a new one, wakes the sleeper at once, so timers
/// sleep exactly until they are due instead of polling.
public final class NextDeadline: Sendable {
    private let value = Mutex<PostgresTimestamp?>(nil)
    private let readEnd: Int32
    private let writeEnd: Int32

    public init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
            _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
        }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        if readEnd >= 0 { close(readEnd) }
        if writeEnd >= 0 { close(writeEnd) }
    }

    public var current: PostgresTimestamp? { value.withLock { $0 } }

    /// Publishes the deadline (nil: nothing is due); wakes the sleeper when it changed.
    public func set(_ deadline: PostgresTimestamp?) {
        let changed = value.withLock { value in
            defer { value = deadline }
            return value != deadline
        }
        guard changed, writeEnd >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Sleeps for `duration`, until the deadline changes, or until stop is asked.
    public func wait(for duration: Duration, unless stop: StopSignal) {
        guard !stop.isRequested, duration > .zero else { return }
        var descriptors = [pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0)]
        _ = poll(&descriptors, 2, Int32(clamping: max(1, duration.wholeMilliseconds)))
        var drain = [UInt8](repeating: 0, count: 64)
        while readEnd >= 0, read(readEnd, &drain, drain.count) > 0 {}
    }
}
