#if canImport(Glibc)
import Glibc
#endif
import Core

/// Where buffered changes go when memory runs short, and how much memory that is.
public struct SpillSettings: Sendable, Hashable {
    /// Bytes of buffered changes, across all open transactions, past which they move to files.
    public var threshold: Int
    /// The files are unlinked as soon as they are created: a crash leaves nothing behind.
    public var directory: String

    public init(threshold: Int = 64 << 20, directory: String = SpillSettings.defaultDirectory) {
        self.threshold = threshold
        self.directory = directory
    }

    public static let `default` = SpillSettings()

    /// Creates and removes a file in `directory`, as a spill does: a directory that is
    /// missing, not a directory or not writable was found only at the first transaction large
    /// enough to spill, which then stopped the stream on every start.
    public func checkDirectory() throws(SpillError) {
        _ = try ChangeSpillFile(directory: directory)
    }

    public static var defaultDirectory: String {
        guard let tmp = getenv("TMPDIR").map({ String(cString: $0) }), !tmp.isEmpty else { return "/tmp" }
        return tmp
    }
}

/// A spill file could not be created, written or read back. The transaction it held
/// cannot be planned; nothing past the previous transaction was acknowledged.
public struct SpillError: Error, Sendable, Hashable, CustomStringConvertible {
    public var directory: String
    public var operation: String
    public var reason: String

    init(directory: String, operation: String, errno code: Int32) {
        self.directory = directory
        self.operation = operation
        reason = String(cString: strerror(code))
    }

    init(directory: String, operation: String, reason: String) {
        self.directory = directory
        self.operation = operation
        self.reason = reason
    }

    public var description: String { "cannot \(operation) a change spill file in \(directory): \(reason)" }
}

/// The changes of one transaction that did not fit in memory, in an anonymous file.
/// Records are only ever appended, so a `TransactionChanges` value that remembers its
/// own end offset keeps reading exactly its changes even if a copy appends more.
///
/// Owned by the decoder that fills it and then by the transaction it travels in; used
/// by one thread at a time.
final class ChangeSpillFile: @unchecked Sendable {
    private let descriptor: Int32
    private let directory: String
    /// Encoded but not yet written: records are written in large pieces.
    private var pending: [UInt8] = []
    private var written = 0
    /// Column lists are few and long-lived (the relation cache's); each is stored once.
    private var columnSets: [[Column]] = []
    private var lastColumnSet: (columns: [Column], index: UInt32)?

    private static let writeSize = 1 << 20
    private static let readSize = 1 << 20

    init(directory: String) throws(SpillError) {
        var template = Array((directory + "/changerelay-spill-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw SpillError(directory: directory, operation: "create", errno: errno) }
        unlink(template.withUnsafeBufferPointer { $0.baseAddress! })
        self.descriptor = descriptor
        self.directory = directory
    }

    deinit { close(descriptor) }

    /// The offset just past everything appended so far.
    var end: Int { written + pending.count }

    func append(_ change: Change, subtransaction: UInt32, table: UInt32) throws(SpillError) {
        // The writer takes the buffer over, so appending never copies it.
        var record = SpillRecordWriter()
        swap(&record.bytes, &pending)
        record.begin()
        record.u32(subtransaction)
        record.u32(table)
        record.u64(change.lsn.value)
        record.u8(SpillRecordWriter.code(change.operation))
        record.row(change.new, columnSet: change.new.map { columnSetIndex($0.columns) })
        record.row(change.old, columnSet: change.old.map { columnSetIndex($0.columns) })
        record.finish()
        swap(&record.bytes, &pending)
        if pending.count >= Self.writeSize { try flush() }
    }

    private func columnSetIndex(_ columns: [Column]) -> UInt32 {
        if let last = lastColumnSet, last.columns == columns { return last.index }
        let index = UInt32(columnSets.firstIndex(of: columns) ?? {
            columnSets.append(columns)
            return columnSets.count - 1
        }())
        lastColumnSet = (columns, index)
        return index
    }

    private func flush() throws(SpillError) {
        var offset = 0
        while offset < pending.count {
            let count = pending[offset...].withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(written)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw SpillError(directory: directory, operation: "write", errno: count < 0 ? errno : ENOSPC) }
            offset += count
            written += count
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Reads the records before `end` in order. Values share the read buffer, as
    /// decoded values share their message.
    func read(upTo end: Int, _ body: (_ subtransaction: UInt32, _ table: UInt32, _ change: Change) throws -> Void,
              tableName: (UInt32) -> TableName) throws {
        if !pending.isEmpty { try flush() }
        var offset = 0
        var carried: [UInt8] = []
        while offset < end {
            var chunk = carried
            let wanted = min(max(Self.readSize, carried.count), end - offset)
            let start = chunk.count
            chunk.append(contentsOf: repeatElement(0, count: wanted))
            var filled = 0
            while filled < wanted {
                let count = chunk[(start + filled)...].withUnsafeMutableBytes {
                    pread(descriptor, $0.baseAddress, $0.count, off_t(offset + filled))
                }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    throw SpillError(directory: directory, operation: "read", errno: count < 0 ? errno : EIO)
                }
                filled += count
            }
            offset += wanted
            var reader = SpillRecordReader(chunk[...], directory: directory)
            while var record = try reader.nextRecord() {
                let subtransaction = try record.u32()
                let table = try record.u32()
                let lsn = LSN(try record.u64())
                let operation = try record.operation()
                let new = try record.row(columnSets)
                let old = try record.row(columnSets)
                let name = tableName(table)
                try body(subtransaction, table, Change(lsn: lsn, schema: name.schema, table: name.name,
                                                       operation: operation, new: new, old: old))
            }
            carried = Array(reader.remainder)
        }
        guard carried.isEmpty else {
            throw SpillError(directory: directory, operation: "read", reason: "the file ends inside a record")
        }
    }
}

/// Record layout: u32 length of the rest, u32 subtransaction, u32 table, u64 LSN,
/// u8 operation, then the new and the old row: u8 present, u32 column set, u32 value
/// count, and per value u8 kind (0 null, 1 unchanged TOAST, 2 text, 3 binary) with
/// u32 length and bytes for text and binary.
struct SpillRecordWriter {
    var bytes: [UInt8] = []
    private var lengthAt = 0

    mutating func begin() {
        lengthAt = bytes.count
        u32(0)
    }

    mutating func finish() {
        let length = UInt32(bytes.count - lengthAt - 4)
        withUnsafeBytes(of: length.bigEndian) { raw in
            for (offset, byte) in raw.enumerated() { bytes[lengthAt + offset] = byte }
        }
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }

    mutating func row(_ row: Row?, columnSet: UInt32?) {
        guard let row, let columnSet else { return u8(0) }
        u8(1)
        u32(columnSet)
        u32(UInt32(row.values.count))
        for value in row.values {
            switch value {
            case .null: u8(0)
            case .unchangedToast: u8(1)
            case .text(let data):
                u8(2)
                u32(UInt32(data.count))
                bytes.append(contentsOf: data)
            case .binary(let data):
                u8(3)
                u32(UInt32(data.count))
                bytes.append(contentsOf: data)
            }
        }
    }

    static func code(_ operation: Change.Operation) -> UInt8 {
        switch operation {
        case .insert: 0
        case .update: 1
        case .delete: 2
        case .truncate: 3
        case .read: 4
        }
    }
}

struct SpillRecordReader {
    private var bytes: ArraySlice<UInt8>
    private let directory: String

    init(_ bytes: ArraySlice<UInt8>, directory: String) {
        self.bytes = bytes
        self.directory = directory
    }

    var remainder: ArraySlice<UInt8> { bytes }

    /// The next whole record, or nil when the rest is only part of one.
    mutating func nextRecord() throws(SpillError) -> SpillRecordReader? {
        guard bytes.count >= 4 else { return nil }
        var header = SpillRecordReader(bytes.prefix(4), directory: directory)
        let length = Int(try header.u32())
        guard bytes.count >= 4 + length else { return nil }
        let record = bytes.dropFirst(4).prefix(length)
        bytes = bytes.dropFirst(4 + length)
        return SpillRecordReader(record, directory: directory)
    }

    private mutating func take(_ count: Int) throws(SpillError) -> ArraySlice<UInt8> {
        guard bytes.count >= count else { throw corrupt("a record is shorter than its fields") }
        defer { bytes = bytes.dropFirst(count) }
        return bytes.prefix(count)
    }

    mutating func u8() throws(SpillError) -> UInt8 { try take(1).first! }

    mutating func u32() throws(SpillError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64() throws(SpillError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func operation() throws(SpillError) -> Change.Operation {
        switch try u8() {
        case 0: .insert
        case 1: .update
        case 2: .delete
        case 3: .truncate
        case 4: .read
        case let other: throw corrupt("unknown operation code \(other)")
        }
    }

    mutating func row(_ columnSets: [[Column]]) throws(SpillError) -> Row? {
        guard try u8() == 1 else { return nil }
        let set = Int(try u32())
        guard set < columnSets.count else { throw corrupt("unknown column set \(set)") }
        let count = Int(try u32())
        var values: [TupleValue] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            switch try u8() {
            case 0: values.append(.null)
            case 1: values.append(.unchangedToast)
            case 2: values.append(.text(try take(Int(try u32()))))
            case 3: values.append(.binary(try take(Int(try u32()))))
            case let other: throw corrupt("unknown value kind \(other)")
            }
        }
        return Row(columns: columnSets[set], values: values)
    }

    private func corrupt(_ why: String) -> SpillError {
        SpillError(directory: directory, operation: "decode", reason: why)
    }
}
