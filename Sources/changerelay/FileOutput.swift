#if canImport(Glibc)
import Glibc
#endif

/// Buffered writes to a file descriptor; `tail` writes a whole transaction at once.
final class FileOutput {
    static let standardError = FileOutput(descriptor: 2)
    private let descriptor: Int32
    var buffer: [UInt8] = []

    init(descriptor: Int32) {
        self.descriptor = descriptor
        buffer.reserveCapacity(1 << 16)
    }

    func write(line: String) {
        append(line)
        append("\n")
        flush()
    }

    func append(_ text: String) { buffer.append(contentsOf: text.utf8) }

    func append(bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    var pendingBytes: Int { buffer.count }

    func flush() {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                break
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
