import Core

/// The pgoutput message types of protocol versions 1–3 (PostgreSQL 15), keyed by
/// their type byte.
public enum PgOutputMessageType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case begin = 0x42 // B
    case commit = 0x43 // C
    case origin = 0x4F // O
    case relation = 0x52 // R
    case type = 0x59 // Y
    case insert = 0x49 // I
    case update = 0x55 // U
    case delete = 0x44 // D
    case truncate = 0x54 // T
    case message = 0x4D // M
    case streamStart = 0x53 // S
    case streamStop = 0x45 // E
    case streamCommit = 0x63 // c
    case streamAbort = 0x41 // A
    case beginPrepare = 0x62 // b
    case prepare = 0x50 // P
    case commitPrepared = 0x4B // K
    case rollbackPrepared = 0x72 // r
    case streamPrepare = 0x70 // p

    /// The name the Postgres documentation uses, so errors can be matched against it.
    public var description: String {
        switch self {
        case .begin: "Begin"
        case .commit: "Commit"
        case .origin: "Origin"
        case .relation: "Relation"
        case .type: "Type"
        case .insert: "Insert"
        case .update: "Update"
        case .delete: "Delete"
        case .truncate: "Truncate"
        case .message: "Message"
        case .streamStart: "Stream Start"
        case .streamStop: "Stream Stop"
        case .streamCommit: "Stream Commit"
        case .streamAbort: "Stream Abort"
        case .beginPrepare: "Begin Prepare"
        case .prepare: "Prepare"
        case .commitPrepared: "Commit Prepared"
        case .rollbackPrepared: "Rollback Prepared"
        case .streamPrepare: "Stream Prepare"
        }
    }

    /// Streaming arrived with version 2 and two-phase commit with version 3; a message
    /// from a newer version than the one negotiated means the stream is not what we asked for.
    public var minimumProtocolVersion: Int {
        switch self {
        case .streamStart, .streamStop, .streamCommit, .streamAbort: 2
        case .beginPrepare, .prepare, .commitPrepared, .rollbackPrepared, .streamPrepare: 3
        default: 1
        }
    }

    /// Inside a stream block these messages start with the (sub)transaction xid.
    var carriesStreamXID: Bool {
        switch self {
        case .relation, .type, .insert, .update, .delete, .truncate, .message: true
        default: false
        }
    }
}

/// A relation description. pgoutput sends one before the first change of a relation in
/// a session and again after every relcache invalidation; each replaces the previous one.
public struct PgOutputRelation: Sendable, Hashable {
    public enum ReplicaIdentity: UInt8, Sendable, Hashable {
        case `default` = 0x64 // d
        case nothing = 0x6E // n
        case full = 0x66 // f
        case index = 0x69 // i
    }

    public var oid: UInt32
    /// pgoutput sends an empty namespace for `pg_catalog`; the decoder restores the name.
    public var namespace: String
    public var name: String
    public var replicaIdentity: ReplicaIdentity
    /// Only the published columns: column lists and generated columns leave some out.
    public var columns: [Column]

    public init(oid: UInt32, namespace: String, name: String, replicaIdentity: ReplicaIdentity, columns: [Column]) {
        self.oid = oid
        self.namespace = namespace
        self.name = name
        self.replicaIdentity = replicaIdentity
        self.columns = columns
    }
}

/// The old row image of an Update or Delete.
public enum PgOutputOldTuple: Sendable, Hashable {
    /// 'K': the replica identity key. The tuple has every published column, the
    /// ones outside the key sent as null.
    case key([TupleValue])
    /// 'O': the whole old row (REPLICA IDENTITY FULL).
    case full([TupleValue])
}

public struct PgOutputTruncateOptions: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let cascade = PgOutputTruncateOptions(rawValue: 1)
    public static let restartIdentity = PgOutputTruncateOptions(rawValue: 2)
}

/// A `pg_logical_emit_message` payload.
public struct PgOutputLogicalMessage: Sendable, Hashable {
    /// A transactional message belongs to its transaction and is void if it aborts;
    /// a non-transactional one is sent as soon as it is decoded.
    public var transactional: Bool
    public var lsn: LSN
    public var prefix: String
    /// Shares the storage of the received message.
    public var content: ArraySlice<UInt8>

    public init(transactional: Bool, lsn: LSN, prefix: String, content: ArraySlice<UInt8>) {
        self.transactional = transactional
        self.lsn = lsn
        self.prefix = prefix
        self.content = content
    }
}

/// The common body of Begin Prepare, Prepare and Stream Prepare.
public struct PgOutputPrepare: Sendable, Hashable {
    /// Where the PREPARE TRANSACTION record starts.
    public var prepareLSN: LSN
    /// Just past the PREPARE TRANSACTION record.
    public var endLSN: LSN
    public var prepareTime: PostgresTimestamp
    public var xid: UInt32
    public var gid: String

    public init(prepareLSN: LSN, endLSN: LSN, prepareTime: PostgresTimestamp, xid: UInt32, gid: String) {
        self.prepareLSN = prepareLSN
        self.endLSN = endLSN
        self.prepareTime = prepareTime
        self.xid = xid
        self.gid = gid
    }
}

/// One decoded pgoutput message. The `xid` of the messages that can appear inside a
/// stream block is the xid of the (sub)transaction that made the change, present
/// only inside a stream block; the enclosing top-level xid is the one of Stream Start.
public enum PgOutputMessage: Sendable, Hashable {
    case begin(finalLSN: LSN, commitTime: PostgresTimestamp, xid: UInt32)
    case commit(commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp)
    case origin(commitLSN: LSN, name: String)
    case relation(PgOutputRelation, xid: UInt32?)
    case type(oid: UInt32, namespace: String, name: String, xid: UInt32?)
    case insert(relationOID: UInt32, new: [TupleValue], xid: UInt32?)
    case update(relationOID: UInt32, old: PgOutputOldTuple?, new: [TupleValue], xid: UInt32?)
    case delete(relationOID: UInt32, old: PgOutputOldTuple, xid: UInt32?)
    case truncate(relationOIDs: [UInt32], options: PgOutputTruncateOptions, xid: UInt32?)
    case message(PgOutputLogicalMessage, xid: UInt32?)
    case streamStart(xid: UInt32, firstSegment: Bool)
    case streamStop
    case streamCommit(xid: UInt32, commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp)
    /// `subxid == xid` aborts the whole transaction, any other value just that subtransaction.
    case streamAbort(xid: UInt32, subxid: UInt32)
    case beginPrepare(PgOutputPrepare)
    case prepare(PgOutputPrepare)
    case commitPrepared(commitLSN: LSN, endLSN: LSN, commitTime: PostgresTimestamp, xid: UInt32, gid: String)
    case rollbackPrepared(prepareEndLSN: LSN, rollbackEndLSN: LSN, prepareTime: PostgresTimestamp,
                          rollbackTime: PostgresTimestamp, xid: UInt32, gid: String)
    case streamPrepare(PgOutputPrepare)

    public var messageType: PgOutputMessageType {
        switch self {
        case .begin: .begin
        case .commit: .commit
        case .origin: .origin
        case .relation: .relation
        case .type: .type
        case .insert: .insert
        case .update: .update
        case .delete: .delete
        case .truncate: .truncate
        case .message: .message
        case .streamStart: .streamStart
        case .streamStop: .streamStop
        case .streamCommit: .streamCommit
        case .streamAbort: .streamAbort
        case .beginPrepare: .beginPrepare
        case .prepare: .prepare
        case .commitPrepared: .commitPrepared
        case .rollbackPrepared: .rollbackPrepared
        case .streamPrepare: .streamPrepare
        }
    }
}
