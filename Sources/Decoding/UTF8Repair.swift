/// Bytes that should be UTF-8 and are not (a SQL_ASCII database stores whatever it is
/// given) made UTF-8 by one rule everywhere: each maximal subpart of an ill-formed
/// sequence (its lead byte and the continuation bytes that still fit it) becomes one
/// U+FFFD, the Unicode standard's recommended practice and what `String(decoding:as:)`
/// does. The pgoutput path (values, names, JSON) and the wal2json path, which decodes its
/// records with `String(decoding:as:)`, then print the same bytes alike.
enum UTF8Repair {
    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// What a sequence led by `lead` must be: its length and the range of its second byte
    /// (its others are 80…BF), from the Unicode standard's table of well-formed UTF-8; nil
    /// for a byte that leads none. Shared with `JSONScanner.utf8SequenceLength`.
    @inline(__always)
    static func shape(lead: UInt8) -> (length: Int, second: ClosedRange<UInt8>)? {
        switch lead {
        case 0xC2...0xDF: (2, 0x80...0xBF)
        case 0xE0: (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80...0xBF)
        case 0xED: (3, 0x80...0x9F)
        case 0xF0: (4, 0x90...0xBF)
        case 0xF1...0xF3: (4, 0x80...0xBF)
        case 0xF4: (4, 0x80...0x8F)
        default: nil
        }
    }

    /// The length (at least 1) of the ill-formed sequence at `index`, which
    /// `JSONScanner.utf8SequenceLength` did not accept.
    static func maximalSubpartLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int {
        guard let (length, second) = shape(lead: bytes[index]) else { return 1 }
        var taken = 1
        while taken < length, index + taken < bytes.count {
            let byte = bytes[index + taken]
            guard taken == 1 ? second.contains(byte) : byte & 0xC0 == 0x80 else { break }
            taken += 1
        }
        return taken
    }

    /// `bytes` with each ill-formed sequence replaced; nil when they are UTF-8 already.
    static func repaired(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var output: [UInt8]?
        var runStart = 0
        var index = 0
        while index < bytes.count {
            guard bytes[index] >= 0x80 else {
                index += 1
                continue
            }
            if let length = JSONScanner.utf8SequenceLength(bytes, at: index) {
                index += length
                continue
            }
            if output == nil { output = []; output?.reserveCapacity(bytes.count + 16) }
            output?.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            output?.append(contentsOf: replacement)
            index += maximalSubpartLength(bytes, at: index)
            runStart = index
        }
        output?.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
        return output
    }
}
