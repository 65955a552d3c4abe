#if canImport(Glibc)
import Glibc
#endif

/// A pipe a thread sleeping in `poll` watches: any thread writes a byte to wake it. Both ends
/// are non-blocking, so waking never blocks and a full pipe (many wakes unread) loses nothing
/// that matters: the sleeper wakes all the same. Closed when released.
public final class WakePipe: Sendable {
    /// -1 when no pipe could be made (no descriptors left): waking then does nothing, and
    /// sleeps run their course.
    public let descriptor: Int32
    private let writeEnd: Int32

    public init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
            _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
        }
        descriptor = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if writeEnd >= 0 { close(writeEnd) }
    }

    /// Makes `descriptor` readable; safe from any thread.
    public func wake() {
        guard writeEnd >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Reads what the wakes wrote, so the next `poll` sleeps again.
    public func drain() {
        guard descriptor >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(descriptor, &buffer, buffer.count) > 0 {}
    }
}
