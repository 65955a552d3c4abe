import Core
import Decoding
import PlannedEffects

/// Pure planning: a decoded change in, the effects it calls for out. No I/O, so the
/// same code serves the live stream, a backfill and a replay, and tests need no database.
public protocol Handler: Sendable {
    /// Part of every idempotency key: renaming a handler re-sends nothing, but changes keys.
    var name: String { get }
    /// `schema.table` names this handler consumes.
    var tables: Set<String> { get }
    /// `index` is the change's position in its transaction: with the commit LSN it names
    /// the change, so ids derived from both are the same on every replay.
    func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects
    /// The logs its deliveries keep current (`PlannedDelivery.report`): the dispatcher's
    /// statements name only these, and claim only deliveries reporting into them.
    var reports: Set<DeliveryLog> { get }
    /// The batch committer's batch was committed, or thrown away to be read again. A handler that
    /// learns state from the stream keeps it, or undoes what the batch taught it, so the
    /// batch's changes are planned the same way the second time.
    func batchEnded(committed: Bool)
    /// Where its rows are staged and how they are applied, for a handler whose rows are not plain inserts.
    var staging: Staging? { get }
    /// The staging statements' last result, once the batch that ran them is committed.
    func stagedBatchCommitted(_ result: QueryResult)
    /// Whether it keeps time by commits (message windows): then `committed(_:)` sees every
    /// transaction, whatever its tables, before its changes are planned.
    var followsCommitTime: Bool { get }
    /// A transaction committed at `transaction.commitTime`, and everything committed before
    /// it has been read: what is due by then (a buffer whose window closed before it). Its
    /// deliveries carry their own idempotency keys: they belong to no change.
    func committed(_ transaction: Transaction) throws(HandlerError) -> Effects
    /// It is off, and only follows the stream to keep its logs current for when it is on
    /// again: it plans no effect, and is not listed among the handlers that run.
    var isFollowingOnly: Bool { get }
}

extension Handler {
    public var isFollowingOnly: Bool { false }
    public var reports: Set<DeliveryLog> { [] }
    public func batchEnded(committed: Bool) {}
    public var staging: Staging? { nil }
    public func stagedBatchCommitted(_ result: QueryResult) {}
    public var followsCommitTime: Bool { false }
    public func committed(_ transaction: Transaction) throws(HandlerError) -> Effects { Effects() }
}

/// A change a handler could not plan for. It names the position, the table and the
/// row, so the log says exactly which item was refused and why.
public struct HandlerError: Error, Sendable, Hashable, CustomStringConvertible {
    public var handler: String
    public var table: String
    public var key: String?
    public var reason: String
    /// The commit LSN of the change's transaction: where the stream stopped, set by the
    /// `Router` (a handler plans one change and need not know it).
    public var commitLSN: LSN?

    public init(handler: String, table: String, key: String?, reason: String, commitLSN: LSN? = nil) {
        self.handler = handler
        self.table = table
        self.key = key
        self.reason = reason
        self.commitLSN = commitLSN
    }

    public var description: String {
        "\(handler) cannot plan a change of \(table)\(key.map { " (key \($0))" } ?? "")"
            + "\(commitLSN.map { " in the transaction committed at \($0)" } ?? ""): \(reason)"
    }
}

/// Dispatches each change to the handlers of its table, in commit order.
public struct Router: Sendable {
    private let byTable: [String: [any Handler]]
    private let handlers: [any Handler]

    public init(_ handlers: [any Handler]) {
        var byTable: [String: [any Handler]] = [:]
        for handler in handlers {
            for table in handler.tables { byTable[table, default: []].append(handler) }
        }
        self.byTable = byTable
        self.handlers = handlers
        timekeepers = handlers.filter(\.followsCommitTime)
        let reports = handlers.reduce(into: Set<DeliveryLog>()) { $0.formUnion($1.reports) }
        // One key, one SQL: two handlers may share a log, never give one key two meanings.
        for (key, logs) in Dictionary(grouping: reports, by: \.key) where logs.count > 1 {
            preconditionFailure("two different delivery logs are named \(key) in deliveries.report")
        }
        self.reports = reports
        var staged: [TableName: any Handler] = [:]
        for handler in handlers {
            guard let staging = handler.staging else { continue }
            precondition(staged[staging.table] == nil, "two handlers stage rows in \(staging.table)")
            staged[staging.table] = handler
        }
        stagingHandlers = staged
        sessionSetups = handlers.compactMap { $0.staging?.sessionSetup }
    }

    /// What the batch committer runs on each connection it opens (`Staging.sessionSetup`).
    public let sessionSetups: [String]

    private let stagingHandlers: [TableName: any Handler]
    private let timekeepers: [any Handler]

    /// The handler that stages rows in `table`, if any: the batch committer runs its statements
    /// before the checkpoint of a batch that copied rows there.
    public func stagingHandler(for table: TableName) -> (any Handler)? { stagingHandlers[table] }

    /// Tells every handler how the batch ended.
    public func batchEnded(committed: Bool) {
        for handler in handlers { handler.batchEnded(committed: committed) }
    }

    public var isEmpty: Bool { byTable.isEmpty && timekeepers.isEmpty }

    /// The names of the handlers it routes to, as deliveries record them.
    public var handlerNames: [String] { handlers.filter { !$0.isFollowingOnly }.map(\.name) }

    /// Every log the handlers' deliveries keep current, each under its own key.
    public let reports: Set<DeliveryLog>

    /// Hands every effect the transaction calls for to `body`, deliveries positioned so
    /// each gets its stable key, change by change: a transaction read back from a spill
    /// file is never in memory whole. Throws a `HandlerError`, a spill file's error, or `body`'s.
    public func plan(_ transaction: Transaction, into body: (PlannedEffect) throws -> Void) throws {
        for handler in timekeepers {
            let effects = try handler.committed(transaction)
            for row in effects.rows { try body(.row(row)) }
            for delivery in effects.deliveries {
                precondition(delivery.idempotencyKey != nil, "\(handler.name): a delivery due by time needs its own key")
                try body(.delivery(PositionedDelivery(handler: handler.name, position: transaction.position(ofChange: -1),
                                                      delivery: delivery)))
            }
        }
        try transaction.changes.forEach { index, change in
            guard let handlers = byTable[change.schema + "." + change.table] else { return }
            for handler in handlers {
                let effects: Effects
                do { effects = try handler.plan(change, at: index, in: transaction) } catch var located as HandlerError {
                    located.commitLSN = located.commitLSN ?? transaction.commitLSN
                    throw located
                }
                for row in effects.rows { try body(.row(row)) }
                for delivery in effects.deliveries {
                    try body(.delivery(PositionedDelivery(handler: handler.name, position: transaction.position(of: change, at: index),
                                                          delivery: delivery)))
                }
            }
        }
    }
}

extension Change {
    /// What names the row in a log line or a `HandlerError`: its replica identity, except
    /// that a row sent whole as its identity (REPLICA IDENTITY FULL through pgoutput, which
    /// flags every column as a key) is named by its `id` column when it has one, as every
    /// seed table does: a warning about one column otherwise carried every value of the row.
    public var loggedKey: String? {
        guard let row = new ?? old, row.columns.count > 1, row.columns.allSatisfy(\.isKey),
              let id = keyText(columns: ["id"]) else { return keyText }
        return id
    }

    /// The row's replica-identity values (`id=7`), from the new row or else the old one:
    /// what tells one entity from another in keys and logs. With REPLICA IDENTITY FULL that
    /// is every column, so a long one is bounded (`BoundedKey`): it goes into ordering keys.
    public var keyText: String? {
        guard let row = new ?? old else { return nil }
        let parts = row.columns.indices.filter { row.columns[$0].isKey }.map { Self.keyPart(row.columns[$0], keyValue(row, at: $0)) }
        return parts.isEmpty ? nil : BoundedKey.bounded(parts.joined(separator: ","))
    }

    /// The values of `columns` (`id=7`), from the new row or else the old one, in the row's
    /// order, as `keyText` writes them; nil when the row lacks one. Under REPLICA IDENTITY
    /// FULL every column is a key column, and `keyText` changes with any of them: the primary
    /// key's columns name the record. In the key's own order, a primary key declared in
    /// another order than the table's columns (`PRIMARY KEY (b, a)`) was written one way for
    /// a new row and the other for an old key, and a record's changes got two keys.
    public func keyText(columns: [String]) -> String? {
        guard let row = new ?? old, !columns.isEmpty else { return nil }
        var indices: [Int] = []
        for name in columns {
            guard let index = row.columns.firstIndex(where: { $0.name == name }) else { return nil }
            indices.append(index)
        }
        var parts: [String] = []
        for index in indices.sorted() {
            let value = keyValue(row, at: index)
            if case .unchangedToast = value { return nil }
            parts.append(Self.keyPart(row.columns[index], value))
        }
        return BoundedKey.bounded(parts.joined(separator: ","))
    }

    /// The value of `row`'s column `index`, where a new row's unchanged TOAST value is taken
    /// from the old row: a key stored out of line and left as it was is sent only there (the
    /// server sends the old key for it, and the whole old row under FULL). Read as `?`, every
    /// such record shared one ordering key, and an UPDATE could go before its own INSERT.
    private func keyValue(_ row: Row, at index: Int) -> TupleValue {
        guard case .unchangedToast = row.values[index], new != nil, let old,
              let oldIndex = old.columns.firstIndex(where: { $0.name == row.columns[index].name }) else {
            return row.values[index]
        }
        return old.values[oldIndex]
    }

    private static func keyPart(_ column: Column, _ value: TupleValue) -> String {
        switch value {
        case .text(let bytes): column.name + "=" + String(decoding: bytes, as: UTF8.self)
        case .binary(let bytes): column.name + "=\\x" + bytes.map { String($0, radix: 16) }.joined()
        case .null: column.name + "=null"
        case .unchangedToast: column.name + "=?"
        }
    }
}

/// The primary-key columns of the tables a handler orders its deliveries by, read from the
/// source at start (`qualified table` → columns in key order). Under REPLICA IDENTITY FULL a
/// record's deliveries share an ordering key built from them; under any other identity, and
/// for a table not known here (no primary key, or created since), the replica-identity
/// columns name it: under USING INDEX a DELETE carries only the index's, so its UPDATEs must
/// be named by them too. The identity is read from each change, not from the start, so a
/// table switched to FULL (or back) while the service runs keeps its records together:
/// pgoutput marks every column a key column under FULL, and wal2json 2.5 marks none (it
/// sends no `pk` for such a table).
///
/// A table whose identity was USING INDEX at start is named by that index's columns (read
/// then too) whenever a row carries them: wal2json marks the primary key's columns as keys,
/// not the index's, and its DELETE carries only the index's, so its changes of one record
/// were ordered under two keys (or none), where pgoutput's were under one.
public struct PrimaryKeys: Sendable {
    private let columns: [String: [String]]
    private let identities: [String: [String]]

    public init(_ columns: [String: [String]] = [:], identities: [String: [String]] = [:]) {
        self.columns = columns
        self.identities = identities
    }

    /// `id=7` for the record `change` is about.
    public func recordKey(of change: Change) -> String? {
        let table = change.schema + "." + change.table
        if let identity = identities[table], let key = change.keyText(columns: identity) { return key }
        guard let key = columns[table], Self.sendsWholeRowAsIdentity(change) else {
            return change.keyText
        }
        return change.keyText(columns: key) ?? change.keyText
    }

    /// The record key an UPDATE moved its row from, when it changed it; nil for any other change.
    /// The old row is there when the key changed (or under REPLICA IDENTITY FULL, when it may not have).
    public func formerRecordKey(of change: Change) -> String? {
        guard change.operation == .update, change.new != nil, change.old != nil else { return nil }
        var before = change
        before.new = nil
        guard let former = recordKey(of: before), former != recordKey(of: change) else { return nil }
        return former
    }

    /// REPLICA IDENTITY FULL: every column a key column (pgoutput), or none (wal2json).
    private static func sendsWholeRowAsIdentity(_ change: Change) -> Bool {
        guard let row = change.new ?? change.old else { return false }
        let keys = row.columns.count { $0.isKey }
        return keys == row.columns.count || keys == 0
    }
}
