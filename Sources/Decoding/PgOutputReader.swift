import Core

/// A bounds-checked big-endian cursor over one message. Every read checks the remaining
/// length first and throws instead of trapping, so hostile input can only produce an error.
struct PgOutputReader: ~Copyable {
    private let buffer: UnsafeRawBufferPointer
    private let messageType: UInt8
    private(set) var offset: Int

    init(_ buffer: UnsafeRawBufferPointer, messageType: UInt8, offset: Int) {
        self.buffer = buffer
        self.messageType = messageType
        self.offset = offset
    }

    var remaining: Int { buffer.count - offset }

    func failure(_ reason: PgOutputDecodingError.Reason, at offset: Int) -> PgOutputDecodingError {
        PgOutputDecodingError(messageType: messageType, offset: offset, reason: reason)
    }

    @inline(__always)
    private func require(_ count: Int) throws(PgOutputDecodingError) {
        if remaining < count { throw failure(.truncated(needed: count, remaining: remaining), at: offset) }
    }

    @inline(__always)
    mutating func uint8() throws(PgOutputDecodingError) -> UInt8 {
        try require(1)
        defer { offset += 1 }
        return buffer[offset]
    }

    @inline(__always)
    mutating func uint16() throws(PgOutputDecodingError) -> UInt16 {
        try require(2)
        defer { offset += 2 }
        return UInt16(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    mutating func uint32() throws(PgOutputDecodingError) -> UInt32 {
        try require(4)
        defer { offset += 4 }
        return UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    mutating func uint64() throws(PgOutputDecodingError) -> UInt64 {
        try require(8)
        defer { offset += 8 }
        return UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func int32() throws(PgOutputDecodingError) -> Int32 {
        Int32(bitPattern: try uint32())
    }

    mutating func lsn() throws(PgOutputDecodingError) -> LSN {
        LSN(try uint64())
    }

    mutating func timestamp() throws(PgOutputDecodingError) -> PostgresTimestamp {
        PostgresTimestamp(microsecondsSince2000: Int64(bitPattern: try uint64()))
    }

    /// Lengths and counts are Int32 on the wire; a negative one can only be garbage.
    @inline(__always)
    mutating func length() throws(PgOutputDecodingError) -> Int {
        let start = offset
        let value = try int32()
        if value < 0 { throw failure(.negativeLength(value), at: start) }
        return Int(value)
    }

    /// Bodies are sliced out of the input rather than read, so only their start is needed.
    @inline(__always)
    mutating func skip(_ count: Int) throws(PgOutputDecodingError) -> Int {
        try require(count)
        defer { offset += count }
        return offset
    }

    /// Names arrive converted to the session's UTF-8, except from a SQL_ASCII database, which
    /// converts nothing: a name holding bytes that are not UTF-8 gets U+FFFD for them (the
    /// `UTF8Repair` rule `String(decoding:as:)` follows), as wal2json's records do, rather
    /// than a Relation message the stream could never get past.
    mutating func string() throws(PgOutputDecodingError) -> String {
        var end = offset
        while end < buffer.count, buffer[end] != 0 { end += 1 }
        if end == buffer.count { throw failure(.unterminatedString, at: offset) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[offset..<end]), as: UTF8.self)
        offset = end + 1
        return text
    }

    /// TupleData: an Int16 column count, then a kind byte per column and, for text and
    /// binary values, an Int32 length and the bytes. Values are slices of `bytes` (the
    /// array `buffer` points into), so no value is copied.
    mutating func tuple(_ bytes: [UInt8]) throws(PgOutputDecodingError) -> [TupleValue] {
        let count = Int(try uint16())
        var values: [TupleValue] = []
        // Each column takes at least one byte: a garbled count cannot reserve more than the message holds.
        values.reserveCapacity(min(count, remaining))
        for _ in 0..<count {
            let kindOffset = offset
            switch try uint8() {
            case 0x6E: // n
                values.append(.null)
            case 0x75: // u
                values.append(.unchangedToast)
            case 0x74: // t
                let length = try length()
                let start = try skip(length)
                values.append(.text(bytes[start..<start + length]))
            case 0x62: // b
                let length = try length()
                let start = try skip(length)
                values.append(.binary(bytes[start..<start + length]))
            case let kind:
                throw failure(.unknownTupleKind(kind), at: kindOffset)
            }
        }
        return values
    }

    /// A marker outside the ones the message allows means the layout is not what we
    /// think; stopping there beats misreading every field after it.
    mutating func marker(_ allowed: [UInt8]) throws(PgOutputDecodingError) -> UInt8 {
        let start = offset
        let marker = try uint8()
        if !allowed.contains(marker) { throw failure(.unexpectedTupleMarker(found: marker, expected: allowed), at: start) }
        return marker
    }
}
