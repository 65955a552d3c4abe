import Core
import Decoding
import Logging
import Metrics
import PlannedEffects

/// What the seed's `sync_old_to_new()` trigger did, from the stream: every change of
/// `habit_tracker` is staged with its projection in the checkpoint transaction, and the
/// batch is then logged (`log`), compared with the new schema (`shadow`) or written into
/// it (`apply`) by set-based SQL in that same transaction, so each change takes effect
/// exactly once however often the stream re-sends it.
///
/// A row that cannot be projected is logged, counted and recorded as `invalid_source`
/// drift, its `idempotency_log` row says `failed`, and the new schema keeps what it had:
/// one bad row never stops the others.
public struct DualWriteHandler: Handler {
    /// `dual_write.mode`, without `off` (no handler at all).
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Phase 0: log each change and write `idempotency_log` `not_implemented`.
        case log
        /// Compare each change's projection with the new schema; write only drift.
        case shadow
        /// Phase 1: write the projection.
        case apply
    }

    public static let table = "public.habit_tracker"
    public static let stagingTable = TableName(schema: "pg_temp", name: "dual_write_staged")
    public static let driftMetric = "changerelay_dual_write_drift_total"
    public static let changesMetric = "changerelay_dual_write_changes_total"

    public let name = "dual_write"
    public let tables: Set<String> = [Self.table]
    public let mode: Mode
    public let staging: Staging?
    private let logger: Logger
    /// `changerelay_dual_write_changes_total{operation}`: changes staged, by operation.
    private let changes: [Change.Operation: Counter]
    /// `changerelay_dual_write_drift_total{kind}`: differences recorded, by kind, once committed.
    private let drift: [String: Counter]

    public init(mode: Mode, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory) {
        self.mode = mode
        self.logger = logger
        staging = Staging(table: Self.stagingTable, statements: DualWriteStatements.forBatch(in: mode),
                          sessionSetup: DualWriteStatements.sessionSetup(in: mode),
                          scratchTables: DualWriteStatements.scratchTables(in: mode))
        changes = Dictionary(uniqueKeysWithValues: [Change.Operation.insert, .update, .delete].map { operation in
            (operation, Counter(label: Self.changesMetric,
                                dimensions: [("mode", mode.rawValue), ("operation", operation.rawValue)], factory: metrics))
        })
        drift = Dictionary(uniqueKeysWithValues: HabitDifferences.kinds.map { kind in
            (kind, Counter(label: Self.driftMetric, dimensions: [("kind", kind)], factory: metrics))
        })
    }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        let position = transaction.position(of: change, at: index)
        let key = position.key(handler: name)
        switch change.operation {
        case .truncate:
            logger.warning("""
                TRUNCATE of habit_tracker is not synced (the seed's row trigger never saw one either): \
                drift-check reports the weeks it left behind
                """, metadata: ["lsn": "\(transaction.commitLSN)"])
            return .none
        case .insert, .update, .read:
            guard let new = change.new else { throw failure(change, "an \(change.operation.rawValue) without its new row") }
            let row = try RowValues(new: new, old: change.old, handler: name, change: change)
            guard row["id"] != nil else {
                throw failure(change, "a row without an id: habit_tracker's id column is missing (renamed or dropped) or NULL")
            }
            try checkID(row["id"], change)
            var rows: [PlannedRow] = []
            // Under REPLICA IDENTITY USING INDEX on another index an UPDATE brings no old row
            // unless the index's columns changed: a new id would go unseen, and the old week
            // would stay beside the new one.
            if mode != .log, change.operation == .update, change.old == nil,
               new.columns.first(where: { $0.name == "id" })?.isKey == false {
                throw failure(change, "an UPDATE whose replica identity does not hold the id: a new id would leave the "
                    + "old week behind; habit_tracker needs REPLICA IDENTITY FULL (or DEFAULT, with id as its primary key)")
            }
            if let oldRow = change.old, change.operation == .update {
                let old = try RowValues(new: oldRow, old: nil, handler: name, change: change)
                if let oldID = old["id"], oldID != row["id"] {
                    try checkID(oldID, change)
                    // A new primary key is a new row: the old one's week goes.
                    rows.append(stage(old, operation: .delete, key: position.key(handler: name, suffix: "old"),
                                      lsn: transaction.commitLSN, change: change))
                }
            }
            // A backfilled row fills the new schema as an INSERT would (an upsert of its week).
            rows.append(stage(row, operation: change.operation == .read ? .insert : change.operation, key: key,
                              lsn: transaction.commitLSN, change: change))
            return Effects(rows: rows)
        case .delete:
            guard let oldRow = change.old else { throw failure(change, "a DELETE without its old row") }
            let old = try RowValues(new: oldRow, old: nil, handler: name, change: change)
            guard old["id"] != nil else {
                throw failure(change, "a DELETE whose old row has no id: habit_tracker needs REPLICA IDENTITY FULL "
                    + "(or DEFAULT, with id as its primary key)")
            }
            try checkID(old["id"], change)
            return Effects(rows: [stage(old, operation: .delete, key: key, lsn: transaction.commitLSN, change: change)])
        }
    }

    /// The staged row of one change: its request, and its projection or why there is none.
    private func stage(_ row: RowValues, operation: Change.Operation, key: String, lsn: LSN,
                       change: Change) -> PlannedRow {
        changes[operation]?.increment()
        let id = row["id"]
        if mode == .log {
            logger.info("habit_tracker change", metadata: [
                "table": "habit_tracker", "operation": "\(operation.rawValue.uppercased())", "id": "\(id ?? "null")",
                "child_name": "\(row["child_name"] ?? "null")", "week_start_date": "\(row["week_start_date"] ?? "null")",
                "lsn": "\(lsn)",
            ])
        }
        var projection: String?
        var problem: String?
        if mode != .log, operation != .delete, let missing = row.missingColumn {
            // Read as NULL, it would project an empty week over the real one.
            problem = "habit_tracker has no column \(missing) (renamed or dropped): the row cannot be projected"
            logger.warning("a habit_tracker row cannot be projected: it is skipped", metadata: [
                "id": "\(id ?? "null")", "lsn": "\(lsn)", "problem": "\(problem ?? "")",
            ])
        } else if mode != .log, operation != .delete {
            do {
                projection = try HabitProjection(
                    id: id, userID: row["user_id"], childName: row["child_name"], weekStartDate: row["week_start_date"],
                    weekPeriod: row["week_period"], habits: row["habits"]).json
            } catch {
                problem = error.problem
                logger.warning("a habit_tracker row cannot be projected: it is skipped", metadata: [
                    "id": "\(id ?? "null")", "lsn": "\(lsn)", "problem": "\(error.problem)",
                ])
            }
        }
        return PlannedRow(table: Self.stagingTable, [
            "habit_tracker_id": id, "source_lsn": lsn.description, "operation": operation.rawValue.uppercased(),
            "mode": mode.rawValue, "idempotency_key": key, "request_data": row.requestData(operation: operation, lsn: lsn),
            "projection": projection, "problem": problem,
        ])
    }

    public func stagedBatchCommitted(_ result: QueryResult) {
        for index in result.rows.indices {
            guard let kind = result.value("kind", row: index), let count = result.value("count", row: index).flatMap(Int64.init)
            else { continue }
            drift[kind]?.increment(by: count)
        }
    }

    /// The new schema keys each week by its row's id (`weeks.source_habit_tracker_id`, and
    /// the staging table's, are bigint): an id of another type (the column changed to
    /// numeric or text) cannot be staged, and the batch's COPY failed naming no row.
    private func checkID(_ id: String?, _ change: Change) throws(HandlerError) {
        guard let id, Int64(id) == nil else { return }
        throw failure(change, "habit_tracker's id \(quotedExcerpt(id, limit: 64)) is not a bigint (was the column's type "
            + "changed?): the new schema keys each week by it; to get past such rows, run once with dual_write.mode = \"off\"")
    }

    private func failure(_ change: Change, _ reason: String) -> HandlerError {
        HandlerError(handler: name, table: Self.table, key: change.loggedKey, reason: reason)
    }
}

/// A `habit_tracker` row's text values. An UPDATE that leaves `habits` TOASTed and
/// unchanged takes it from the old row, which REPLICA IDENTITY FULL provides.
private struct RowValues {
    private let fields: Fields
    private let old: Fields?

    /// The columns a projection reads.
    static let projected = ["id", "habits", "child_name", "user_id", "week_start_date", "week_period"]

    /// The first of them the row does not have at all: the relation has lost it since.
    let missingColumn: String?
    /// Whether `habits` was changed to a text type. Such a column holds JSON as a string:
    /// `request_data` keeps it one, as `to_jsonb` of the row does, which shadow mode compares
    /// it with to tell the row's latest state (parsed, it never matched, and such rows were
    /// never compared). Any other type (json, jsonb, a domain over either, which the stream
    /// names by the domain's own type) is read as JSON.
    let habitsIsText: Bool

    init(new: Row, old: Row?, handler: String, change: Change) throws(HandlerError) {
        missingColumn = Self.projected.first { name in !new.columns.contains { $0.name == name } }
        habitsIsText = new.columns.first { $0.name == "habits" }.map { TypeOID.isText($0.typeOID) } ?? false
        fields = try Fields(new, handler: handler, change: change)
        self.old = try old.map { row throws(HandlerError) in try Fields(row, handler: handler, change: change) }
        // Under DEFAULT a key change brings the old key alone: reading the column from it
        // would project the week with no habits.
        for column in Self.projected where fields.isUnchanged(column) && !(self.old?.carries(column) ?? false) {
            throw HandlerError(handler: handler, table: DualWriteHandler.table, key: change.loggedKey,
                               reason: "\(column) was left out as unchanged TOAST and "
                                + (self.old == nil ? "there is no old row" : "the old row does not carry it")
                                + ": habit_tracker needs REPLICA IDENTITY FULL")
        }
    }

    subscript(name: String) -> String? { fields.isUnchanged(name) ? old?[name] : fields[name] }

    /// The row as the seed's trigger logged it: `idempotency_log.request_data`.
    func requestData(operation: Change.Operation, lsn: LSN) -> String {
        var writer = JSONWriter(capacity: 512, storableAsJSONB: true)
        writer.beginObject()
        writer.key("operation")
        writer.string(operation.rawValue.uppercased())
        writer.key("source_lsn")
        writer.string(lsn.description)
        writer.key("habit_tracker_id")
        if let id = self["id"] { writer.number(text: Array(id.utf8)) } else { writer.null() }
        for column in ["user_id", "child_name", "week_start_date", "week_period"] {
            writer.key(column)
            if let value = self[column] { writer.string(value) } else { writer.null() }
        }
        writer.key("habits")
        // A jsonb column's text is JSON, as Postgres printed it; a column changed to another
        // type is kept as a string, its text as it is (invalid JSON makes the row invalid).
        if let habits = self["habits"] {
            if habitsIsText || (try? writer.compactJSON(habits.utf8)) == nil { writer.string(habits) }
        } else {
            writer.null()
        }
        writer.endObject()
        return writer.string
    }
}
