#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A descriptor that log records go to whole: each record is one `write(2)` under a lock shared by
/// every handler writing there, so records from many threads never interleave (a pipe would split a
/// write longer than `PIPE_BUF` between concurrent writers).
public final class LogOutput: Sendable {
    public static let standardError = LogOutput(descriptor: 2)

    private let descriptor: Mutex<Int32>

    public init(descriptor: Int32) {
        self.descriptor = Mutex(descriptor)
    }

    /// What cannot be written is dropped: logging never stops the service.
    func write(_ record: [UInt8]) {
        descriptor.withLock { descriptor in
            var offset = 0
            while offset < record.count {
                let written = record[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
