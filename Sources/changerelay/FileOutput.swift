#if canImport(Glibc)
import Core
import Glibc
#endif

import Decoding

/// Unbuffered writes of whole chunks to a file descriptor: `tail` writes whole lines,
/// so a reader never sees half of one. A failed write throws, so what was not written
/// is never acknowledged.
struct FileOutput {
    static let standardOutput = FileOutput(descriptor: 1)
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

    /// Writes the lines of the first `limit` changes of `transaction`; returns how many.
    /// Lines go out in pieces of about 64 KiB, so a transaction of millions of rows
    /// (read back from its spill file) needs no more memory than a piece.
    func writeLines(of transaction: Transaction, limit: Int = .max, using writer: inout JSONWriter) throws -> Int {
        let commitTime = transaction.commitTime.postgresText
        var written = 0
        try transaction.changes.forEach(limit: limit) { _, change in
            try ChangeRenderer.appendLine(change, xid: transaction.xid, commitTime: commitTime, to: &writer)
            written += 1
            if writer.bytes.count >= 1 << 16 {
                try write(writer.bytes)
                writer.removeAll()
            }
        }
        try write(writer.bytes)
        writer.removeAll()
        return written
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
