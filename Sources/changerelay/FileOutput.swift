#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes of whole chunks to a file descriptor: `tail` writes a whole
/// transaction at once, so a reader never sees half a line. A failed write throws, so
/// what was not written is never acknowledged.
struct FileOutput {
    static let standardError = FileOutput(descriptor: 2)
    let descriptor: Int32

    func write(line: String) {
        try? write(Array((line + "\n").utf8))
    }

    func write(_ buffer: [UInt8]) throws(OutputError) {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw errno == EPIPE ? .closed : .failed(String(cString: strerror(errno)))
            }
            offset += written
        }
    }
}

enum OutputError: Error, CustomStringConvertible {
    /// The reader went away (`tail … | head`): stop quietly, acknowledging nothing more.
    case closed
    case failed(String)

    var description: String {
        switch self {
        case .closed: "standard output was closed"
        case .failed(let reason): "cannot write standard output: \(reason)"
        }
    }
}
