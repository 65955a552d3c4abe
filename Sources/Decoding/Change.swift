import Core

/// One column of a published relation, as the decoder learned it from the stream.
public struct Column: Sendable, Hashable {
    public var name: String
    public var typeOID: UInt32
    public var typeModifier: Int32
    /// Part of the replica identity (pgoutput flag 1); only these appear in a key-only old tuple.
    public var isKey: Bool

    public init(name: String, typeOID: UInt32, typeModifier: Int32 = -1, isKey: Bool = false) {
        self.name = name
        self.typeOID = typeOID
        self.typeModifier = typeModifier
        self.isKey = isKey
    }
}

/// A column value as it arrived. Values keep the bytes of the message they came in
/// (`ArraySlice` shares its storage), so decoding allocates no per-value buffers.
public enum TupleValue: Sendable, Hashable {
    case null
    /// A TOASTed value the change did not touch; the server did not send it.
    case unchangedToast
    /// The type's text output (UTF-8), rendered with the session settings pinned on connect.
    case text(ArraySlice<UInt8>)
    /// The type's binary send format (pgoutput `binary 'true'`).
    case binary(ArraySlice<UInt8>)
}

/// A row image: values aligned with `columns`.
public struct Row: Sendable, Hashable {
    public var columns: [Column]
    public var values: [TupleValue]

    public init(columns: [Column], values: [TupleValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(name: String) -> TupleValue? {
        columns.firstIndex { $0.name == name }.map { values[$0] }
    }
}

/// One decoded row change of a committed transaction, independent of the output plugin.
public struct Change: Sendable, Hashable {
    public enum Operation: String, Sendable, Hashable {
        case insert, update, delete, truncate
        /// A row as a backfill read it (an incremental snapshot): not a change, the row's
        /// state at the chunk's high watermark, newer than every change handled before it.
        case read
    }

    /// The WAL position of the change itself (not of its commit).
    public var lsn: LSN
    public var schema: String
    public var table: String
    public var operation: Operation
    public var new: Row?
    /// The old key (default replica identity) or the whole old row (REPLICA IDENTITY FULL).
    public var old: Row?

    public init(lsn: LSN, schema: String, table: String, operation: Operation, new: Row? = nil, old: Row? = nil) {
        self.lsn = lsn
        self.schema = schema
        self.table = table
        self.operation = operation
        self.new = new
        self.old = old
    }
}

/// A committed transaction, delivered whole and in commit order.
public struct Transaction: Sendable, Hashable {
    public var xid: UInt32
    /// Where the commit record starts.
    public var commitLSN: LSN
    /// Just past the commit record: the position to acknowledge once the transaction is handled.
    public var endLSN: LSN
    public var commitTime: PostgresTimestamp
    public var changes: TransactionChanges
    /// The transactional logical messages it emitted that are ChangeRelay's own
    /// (`LogicalMessage.isChangeRelays`), in the order they were emitted.
    public var messages: [LogicalMessage]
    /// The backfill chunk whose rows follow its changes as `read` changes: set on the
    /// transaction of the chunk's high watermark, the position where those rows are handled.
    public var backfill: BackfillChunk?

    public init(xid: UInt32, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp, changes: TransactionChanges,
                messages: [LogicalMessage] = [], backfill: BackfillChunk? = nil) {
        self.xid = xid
        self.commitLSN = commitLSN
        self.endLSN = endLSN
        self.commitTime = commitTime
        self.changes = changes
        self.messages = messages
        self.backfill = backfill
    }

    public init(xid: UInt32, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp, changes: [Change],
                messages: [LogicalMessage] = []) {
        self.init(xid: xid, commitLSN: commitLSN, endLSN: endLSN, commitTime: commitTime,
                  changes: TransactionChanges(changes), messages: messages)
    }
}

/// A transactional `pg_logical_emit_message` that ChangeRelay wrote into the WAL itself (a
/// timer's tick), handed to the handlers with the transaction that carried it: its commit
/// tells them everything committed before it has been read.
public struct LogicalMessage: Sendable, Hashable {
    /// Where the message was emitted.
    public var lsn: LSN
    public var prefix: String
    public var content: [UInt8]

    public init(lsn: LSN, prefix: String, content: [UInt8]) {
        self.lsn = lsn
        self.prefix = prefix
        self.content = content
    }

    /// Every prefix ChangeRelay emits starts with this; other applications' messages are dropped.
    public static let prefixRoot = "changerelay."

    public static func isChangeRelays(prefix: String) -> Bool { prefix.hasPrefix(prefixRoot) }
}

/// One chunk of a backfill, as far as handlers and its progress need it: which backfill,
/// which rows (by primary key), and where the next chunk starts.
public struct BackfillChunk: Sendable, Hashable {
    /// `changerelay.backfills.id`.
    public var backfill: Int64
    /// 1, 2, …: the chunk's place in its backfill.
    public var number: Int
    public var table: TableName
    /// The primary key's columns, in key order: backfilled rows are named by their values.
    public var keyColumns: [String]
    /// The last key the chunk read (text values); the next chunk reads past it.
    public var cursor: [String]
    /// Rows the chunk's SELECT returned.
    public var rowsRead: Int
    /// Of those, the rows a change between the watermarks made stale: the stream handled the newer state.
    public var rowsSuperseded: Int
    /// The chunk that found the end of the table: its commit finishes the backfill.
    public var isLast: Bool

    public init(backfill: Int64, number: Int, table: TableName, keyColumns: [String], cursor: [String],
                rowsRead: Int, rowsSuperseded: Int, isLast: Bool) {
        self.backfill = backfill
        self.number = number
        self.table = table
        self.keyColumns = keyColumns
        self.cursor = cursor
        self.rowsRead = rowsRead
        self.rowsSuperseded = rowsSuperseded
        self.isLast = isLast
    }
}
