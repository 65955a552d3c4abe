#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes of whole chunks to a file descriptor: `tail` writes a whole
/// transaction at once, so a reader never sees half a line.
struct FileOutput {
    static let standardError = FileOutput(descriptor: 2)
    let descriptor: Int32

    func write(line: String) {
        write(Array((line + "\n").utf8))
    }

    func write(_ buffer: [UInt8]) {
        var offset = 0
        while offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                break
            }
            offset += written
        }
    }
}
