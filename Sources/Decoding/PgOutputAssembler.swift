import Core

/// What the assembler hands on.
public enum PgOutputEvent: Sendable, Hashable {
    /// A committed transaction, with the transactional logical messages it emitted in
    /// the order they were written. Messages are not changes, so they travel beside them.
    case transaction(Transaction, messages: [PgOutputLogicalMessage])
    /// A non-transactional logical message: it stands on its own whatever happens to
    /// the transaction that emitted it, so it is handed on at once.
    case message(PgOutputLogicalMessage)
}

public enum PgOutputAssemblyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why a message cannot come where it came.
    public enum Situation: Sendable, Hashable {
        case noTransaction
        case transactionOpen(xid: UInt32)
        case noStream
        case streamOpen(xid: UInt32)
    }

    case unknownRelation(oid: UInt32, lsn: LSN)
    case columnCountMismatch(table: String, oid: UInt32, expected: Int, received: Int, lsn: LSN)
    case outOfSequence(PgOutputMessageType, lsn: LSN, Situation)
    /// A stream segment or Stream Commit for a transaction whose first segment never
    /// arrived: its earlier changes are missing.
    case unknownStreamedTransaction(xid: UInt32, lsn: LSN)
    /// A two-phase message (Begin Prepare, Prepare, Commit Prepared, Rollback Prepared,
    /// Stream Prepare): ChangeRelay never asks for `two_phase`, so a server sending one
    /// is answering another client's options, and its changes would be taken as committed
    /// at PREPARE.
    case twoPhaseNotRequested(PgOutputMessageType, lsn: LSN)
    /// Buffered changes could not be moved to a spill file (or read back).
    case spillFailed(SpillError, lsn: LSN)

    public var description: String {
        switch self {
        case let .unknownRelation(oid, lsn):
            "pgoutput change at \(lsn) for relation OID \(oid), which no Relation message described"
        case let .columnCountMismatch(table, oid, expected, received, lsn):
            "pgoutput change at \(lsn) for \(table) (OID \(oid)) has \(received) columns, its Relation message \(expected)"
        case let .outOfSequence(type, lsn, situation):
            "pgoutput \(type) at \(lsn) out of sequence: " + Self.text(situation)
        case let .unknownStreamedTransaction(xid, lsn):
            "pgoutput message at \(lsn) continues streamed transaction \(xid), whose first segment was not received"
        case let .twoPhaseNotRequested(type, lsn):
            "pgoutput \(type) at \(lsn), but two-phase decoding (two_phase) was not requested"
        case let .spillFailed(error, lsn):
            "pgoutput change at \(lsn): \(error)"
        }
    }

    private static func text(_ situation: Situation) -> String {
        switch situation {
        case .noTransaction: "no transaction is open"
        case let .transactionOpen(xid): "transaction \(xid) is still open"
        case .noStream: "no stream block is open"
        case let .streamOpen(xid): "the stream block of transaction \(xid) is still open"
        }
    }
}

/// Turns decoded pgoutput messages into committed transactions, in commit order.
///
/// Postgres sends plain transactions whole between Begin and Commit, but large ones
/// (streaming, proto ≥ 2) in segments interleaved with other transactions long before
/// they commit or abort. The assembler holds each until its outcome is known, so
/// downstream code only ever sees committed work. Two-phase decoding is never requested,
/// so its messages are refused rather than held. Use one per replication connection, like the decoder:
/// after a reconnect the server sends again whatever was not acknowledged.
///
/// Held changes count against one memory budget (`SpillSettings.threshold`); past it,
/// every held transaction moves its changes to a spill file, so a transaction of
/// millions of rows is held in bounded memory.
public struct PgOutputAssembler: Sendable {
    private struct CachedRelation: Sendable {
        var relation: PgOutputRelation
        var schema: String { relation.namespace }
        /// Where the replica identity columns sit, so a key-only old tuple can be cut down without a search.
        var keyIndices: [Int]
        var keyColumns: [Column]

        init(_ relation: PgOutputRelation) {
            self.relation = relation
            keyIndices = relation.columns.indices.filter { relation.columns[$0].isKey }
            keyColumns = keyIndices.map { relation.columns[$0] }
        }

        func check(_ values: [TupleValue], lsn: LSN) throws(PgOutputAssemblyError) {
            if values.count != relation.columns.count {
                throw .columnCountMismatch(table: relation.namespace + "." + relation.name, oid: relation.oid,
                                           expected: relation.columns.count, received: values.count, lsn: lsn)
            }
        }

        func row(_ values: [TupleValue], lsn: LSN) throws(PgOutputAssemblyError) -> Row {
            try check(values, lsn: lsn)
            return Row(columns: relation.columns, values: values)
        }

        func oldRow(_ old: PgOutputOldTuple, lsn: LSN) throws(PgOutputAssemblyError) -> Row {
            switch old {
            case .full(let values):
                return try row(values, lsn: lsn)
            case .key(let values):
                try check(values, lsn: lsn)
                return Row(columns: keyColumns, values: keyIndices.map { values[$0] })
            }
        }
    }

    /// Begin … Commit.
    private struct OpenTransaction: Sendable {
        var xid: UInt32
        var changes = TransactionChanges()
        var messages: [PgOutputLogicalMessage] = []
    }

    /// A streamed transaction's segments so far. Each change and message keeps the xid
    /// of the subtransaction that made it, so a subtransaction abort can drop just its part.
    private struct StreamedTransaction: Sendable {
        var changes = TransactionChanges()
        var messages: [(subxid: UInt32, message: PgOutputLogicalMessage)] = []

        /// Returns the memory bytes freed.
        mutating func discard(subxid: UInt32) -> Int {
            messages.removeAll { $0.subxid == subxid }
            return changes.discard(subtransaction: subxid)
        }
    }

    private var relations: [UInt32: CachedRelation] = [:]
    private var open: OpenTransaction?
    private var streamXID: UInt32?
    private var streamed: [UInt32: StreamedTransaction] = [:]
    private let spillSettings: SpillSettings
    private let baseTypes: BaseTypes
    /// Memory bytes of every held transaction's changes.
    private var buffered = 0

    public init(spill: SpillSettings = .default, baseTypes: BaseTypes = .unresolved) {
        spillSettings = spill
        self.baseTypes = baseTypes
    }

    /// True between Begin and its Commit. A keepalive's
    /// WAL end must not be acknowledged then: it lies past the open transaction's commit.
    public var isTransactionOpen: Bool { open != nil }

    /// `lsn` is the XLogData start of the message: for a change, the change's own position.
    public mutating func consume(_ message: PgOutputMessage, at lsn: LSN) throws(PgOutputAssemblyError) -> PgOutputEvent? {
        let type = message.messageType
        switch message {
        case let .begin(_, _, xid):
            try expectIdle(type, lsn)
            open = OpenTransaction(xid: xid)
        case let .commit(commitLSN, endLSN, commitTime):
            let transaction = try close(type, lsn)
            buffered -= transaction.changes.memoryBytes
            return .transaction(Transaction(xid: transaction.xid, commitLSN: commitLSN, endLSN: endLSN,
                                            commitTime: commitTime, changes: transaction.changes),
                                messages: transaction.messages)
        case .origin, .type:
            break
        case .relation(var relation, _):
            relation.columns = relation.columns.map(baseTypes.resolved)
            relations[relation.oid] = CachedRelation(relation)
        case let .insert(oid, new, xid):
            let relation = try cached(oid, lsn)
            try record(Change(lsn: lsn, schema: relation.schema, table: relation.relation.name, operation: .insert,
                              new: try relation.row(new, lsn: lsn)),
                       xid: xid, type, lsn)
        case let .update(oid, old, new, xid):
            let relation = try cached(oid, lsn)
            let oldRow: Row? = if let old { try relation.oldRow(old, lsn: lsn) } else { nil }
            try record(Change(lsn: lsn, schema: relation.schema, table: relation.relation.name, operation: .update,
                              new: try relation.row(new, lsn: lsn), old: oldRow),
                       xid: xid, type, lsn)
        case let .delete(oid, old, xid):
            let relation = try cached(oid, lsn)
            try record(Change(lsn: lsn, schema: relation.schema, table: relation.relation.name, operation: .delete,
                              old: try relation.oldRow(old, lsn: lsn)),
                       xid: xid, type, lsn)
        case let .truncate(oids, _, xid):
            for oid in oids {
                let relation = try cached(oid, lsn)
                try record(Change(lsn: lsn, schema: relation.schema, table: relation.relation.name, operation: .truncate),
                           xid: xid, type, lsn)
            }
        case let .message(logical, xid):
            guard logical.transactional else { return .message(logical) }
            if let xid {
                streamed[try openStream(type, lsn), default: StreamedTransaction()].messages.append((xid, logical))
            } else {
                guard open != nil else { throw .outOfSequence(type, lsn: lsn, .noTransaction) }
                open!.messages.append(logical)
            }
        case let .streamStart(xid, firstSegment):
            try expectIdle(type, lsn)
            if firstSegment {
                streamed[xid] = StreamedTransaction()
            } else if streamed[xid] == nil {
                throw .unknownStreamedTransaction(xid: xid, lsn: lsn)
            }
            streamXID = xid
        case .streamStop:
            _ = try openStream(type, lsn)
            streamXID = nil
        case let .streamCommit(xid, commitLSN, endLSN, commitTime):
            let transaction = try finishStream(xid, type, lsn)
            buffered -= transaction.changes.memoryBytes
            return .transaction(Transaction(xid: xid, commitLSN: commitLSN, endLSN: endLSN, commitTime: commitTime,
                                            changes: transaction.changes),
                                messages: transaction.messages.map(\.message))
        case let .streamAbort(xid, subxid):
            try expectIdle(type, lsn)
            if xid == subxid {
                buffered -= streamed.removeValue(forKey: xid)?.changes.memoryBytes ?? 0
            } else {
                buffered -= streamed[xid]?.discard(subxid: subxid) ?? 0
            }
        case .beginPrepare, .prepare, .streamPrepare, .commitPrepared, .rollbackPrepared:
            throw .twoPhaseNotRequested(type, lsn: lsn)
        }
        return nil
    }

    private func cached(_ oid: UInt32, _ lsn: LSN) throws(PgOutputAssemblyError) -> CachedRelation {
        guard let relation = relations[oid] else { throw .unknownRelation(oid: oid, lsn: lsn) }
        return relation
    }

    /// A streamed change (it carries an xid) joins the open stream block's transaction,
    /// any other the open Begin.
    private mutating func record(_ change: Change, xid: UInt32?, _ type: PgOutputMessageType,
                                 _ lsn: LSN) throws(PgOutputAssemblyError) {
        if let xid {
            buffered += streamed[try openStream(type, lsn), default: StreamedTransaction()].changes
                .append(change, subtransaction: xid)
        } else {
            guard open != nil else { throw .outOfSequence(type, lsn: lsn, .noTransaction) }
            buffered += open!.changes.append(change)
        }
        if buffered > spillSettings.threshold { try spillAll(lsn) }
    }

    /// Moves every held transaction's changes to its spill file.
    private mutating func spillAll(_ lsn: LSN) throws(PgOutputAssemblyError) {
        do {
            if open != nil { buffered -= try open!.changes.spill(spillSettings) }
            for xid in streamed.keys { buffered -= try streamed[xid]!.changes.spill(spillSettings) }
        } catch {
            throw .spillFailed(error, lsn: lsn)
        }
    }

    private func openStream(_ type: PgOutputMessageType, _ lsn: LSN) throws(PgOutputAssemblyError) -> UInt32 {
        guard let streamXID else { throw .outOfSequence(type, lsn: lsn, .noStream) }
        return streamXID
    }

    /// Transaction boundaries never nest, and never fall inside a stream block.
    private func expectIdle(_ type: PgOutputMessageType, _ lsn: LSN) throws(PgOutputAssemblyError) {
        if let open { throw .outOfSequence(type, lsn: lsn, .transactionOpen(xid: open.xid)) }
        if let streamXID { throw .outOfSequence(type, lsn: lsn, .streamOpen(xid: streamXID)) }
    }

    private mutating func close(_ type: PgOutputMessageType, _ lsn: LSN) throws(PgOutputAssemblyError) -> OpenTransaction {
        guard let transaction = open else { throw .outOfSequence(type, lsn: lsn, .noTransaction) }
        open = nil
        return transaction
    }

    private mutating func finishStream(_ xid: UInt32, _ type: PgOutputMessageType,
                                       _ lsn: LSN) throws(PgOutputAssemblyError) -> StreamedTransaction {
        try expectIdle(type, lsn)
        guard let transaction = streamed.removeValue(forKey: xid) else {
            throw .unknownStreamedTransaction(xid: xid, lsn: lsn)
        }
        return transaction
    }
}
