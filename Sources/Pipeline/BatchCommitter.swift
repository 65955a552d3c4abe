import Core
import Decoding
import Handlers
import Logging
import PlannedEffects
import Replication
import StateStore

/// Plans every transaction through the router and commits its effects in batches:
/// ONE state-database transaction writes a batch's deliveries and the checkpoint
/// (slot, end LSN of its last transaction), so a crash either keeps both or neither.
/// A batch closes on size or age, for throughput and latency both.
///
/// Rows go to the server as they are planned, through a COPY that stays open in the
/// batch's transaction: a transaction of millions of changes is planned in the memory
/// of one piece of rows, not of all its deliveries.
///
/// A handler whose effects are more than inserts stages its rows (`Staging`): after the
/// batch's rows are copied, its statements apply them in the same transaction, before the
/// checkpoint, and the committer empties its tables (`StagingSweep`). A delivery whose log
/// row is planned with it (`NumberedLogRows`) has the row numbered here, from ids reserved
/// ahead, so that both are plain rows of the batch.
public final class BatchCommitter: TransactionSink {
    public struct Settings: Sendable {
        public var stateURL: String
        public var slot: String
        public var maxBatchChanges: Int
        public var maxBatchAge: Duration
        /// Where the backfill runner leaves its chunks; nil when nothing is backfilled.
        public var backfills: ChunkExchange?
        /// What the checkpoint says wrote it: the live service, or a replay.
        public var writer: SlotCheckpoint.Writer

        public init(stateURL: String, slot: String, maxBatchChanges: Int = 1000, maxBatchAge: Duration = .milliseconds(20),
                    backfills: ChunkExchange? = nil, writer: SlotCheckpoint.Writer = .run) {
            self.stateURL = stateURL
            self.slot = slot
            self.maxBatchChanges = maxBatchChanges
            self.maxBatchAge = maxBatchAge
            self.backfills = backfills
            self.writer = writer
        }
    }

    private let settings: Settings
    private let router: Router
    /// How a transaction's effects are planned: the router's planning, unless a replay
    /// leaves out what is planned already (`ReplayPlanner`).
    private let planning: Planning
    private let logger: Logger
    private var connection: PostgresConnection?
    private let clock = ContinuousClock()
    private let checkpoint: SlotCheckpoint
    /// When batches commit and what a lost one means; the committer executes its decisions.
    private var policy: BatchPolicy
    private var batch = Batch()
    private var deliveryRows = DeliveryRows()
    private var sweep = StagingSweep()
    private var watermarks: BackfillWatermarks?
    private let metrics = CommitMetrics()

    /// Every target seen so far, numbered; deliveries are 0.
    private var targets: [CopyTarget] = [DeliveryRows.target]
    private var targetNumbers: [CopyTarget: Int] = [DeliveryRows.target: 0]
    /// How many rows each numbered log numbered in the last batch that numbered any: what a
    /// batch reserves at first (`reservedID`).
    private var numberedLastBatch: [String: Int] = [:]
    /// The last planned row's target. A handler plans its rows for one table with the same
    /// columns change after change: comparing a row with the last one's target costs less
    /// than building a `CopyTarget` and hashing every column name for each row.
    private var lastRowTarget: RowTarget?
    /// The end of the transaction admitted last: the batch's end, or the one being planned.
    private var admittedThrough: LSN?

    private struct RowTarget {
        var target: CopyTarget
        var number: Int
        /// Its table is a handler's staging table.
        var staged: Bool
    }

    struct Batch {
        /// Rows planned but not yet sent, by target number.
        var rows: [[UInt8]] = [[]]
        /// BEGIN was sent: rows or the checkpoint are on their way.
        var began = false
        /// The target number of the COPY open in that transaction; one at a time.
        var copying: Int?
        var deliveries = 0
        /// Staging tables this batch copied rows into, with the bytes copied: their handlers'
        /// statements run before the checkpoint.
        var staged: [TableName: Int] = [:]
        /// Changes planned in this batch, counted once it commits.
        var changes: [CommitMetrics.ChangeKind: Int] = [:]
        /// Ids reserved in this batch's transaction for the rows of numbered logs, by log key,
        /// and how many rows each log numbered.
        var reservedIDs: [String: ArraySlice<String>] = [:]
        var numbered: [String: Int] = [:]
    }

    public typealias Planning = (Transaction, (PlannedEffect) throws -> Void) throws -> Void

    public init(_ settings: Settings, router: Router, planning: Planning? = nil, logger: Logger) throws(PostgresError) {
        self.settings = settings
        self.router = router
        self.logger = logger
        checkpoint = SlotCheckpoint(slot: settings.slot, writer: settings.writer)
        watermarks = settings.backfills.map(BackfillWatermarks.init)
        let connection = try Self.connect(settings.stateURL, router: router)
        try checkpoint.stamp(on: connection)
        policy = BatchPolicy(durable: try checkpoint.read(on: connection),
                             maxChanges: settings.maxBatchChanges, maxAge: settings.maxBatchAge)
        self.connection = connection
        self.planning = planning ?? router.plan
        logger.info("planner ready", metadata: ["slot": "\(settings.slot)", "checkpoint": "\(policy.durable)"])
    }

    /// The committed checkpoint: transactions ending at or before it were planned already.
    public var durablePosition: LSN { policy.durable }

    public var hasPending: Bool { policy.hasPending }

    /// The stored checkpoint must be where this committer left it: if another instance
    /// streamed the slot meanwhile (this one stood by, or lost its connection for a while),
    /// the handlers' state, loaded for the old checkpoint, is stale, and planning from it
    /// would plan again what is committed already.
    public func streamStarted() throws {
        let stored: LSN
        do {
            if let unsettled = policy.unsettled { try settle(unsettled) }
            stored = try checkpoint.read(on: connected())
        } catch {
            // A stream restarts after the server did, often: this connection may be as dead as the last stream's.
            connection = nil
            throw error
        }
        guard stored == policy.durable else {
            throw CheckpointMoved(slot: settings.slot, stored: stored, loaded: policy.durable)
        }
    }

    public func accept(_ transaction: Transaction) throws -> SinkProgress {
        if let unsettled = policy.unsettled { try settle(unsettled) }
        // A restart can be sent transactions it already planned; their effects are committed.
        guard policy.admit(endingAt: transaction.endLSN) == .plan else { return .proceed(durableThrough: nil) }
        let transaction = try watermarks?.admit(transaction) ?? transaction
        admittedThrough = transaction.endLSN
        if transaction.changes.isSpilled {
            logger.info("planning a large transaction from its spill file", metadata: [
                "xid": "\(transaction.xid)", "commit_lsn": "\(transaction.commitLSN)", "changes": "\(transaction.changes.count)",
            ])
        }
        try planning(transaction) { effect in
            switch effect {
            case .delivery(var planned):
                if let report = planned.delivery.report, let numbering = report.numbering {
                    let numbered = report.numbered(try reservedID(numbering, log: report.logKey))
                    planned.delivery.report = numbered.report
                    try copy(numbered.row)
                }
                CopyText.appendRow(try deliveryRows.values(of: planned), to: &batch.rows[0])
                batch.deliveries += 1
                if batch.rows[0].count >= sendingThreshold(of: 0) { try send(0) }
            case .row(let row):
                try copy(row)
            }
        }
        try transaction.changes.forEach { _, change in
            batch.changes[CommitMetrics.ChangeKind(schema: change.schema, table: change.table, operation: change.operation), default: 0] += 1
        }
        let full = policy.planned(endingAt: transaction.endLSN, changes: transaction.changes.count, at: clock.now)
        return .proceed(durableThrough: full ? try commit() : nil)
    }

    public func tick() throws -> LSN? {
        policy.isDue(at: clock.now) ? try commit() : nil
    }

    public func flush() throws -> LSN? { policy.hasPending ? try commit() : nil }

    /// A batch's rows were partly sent in a transaction that will never commit: drop the
    /// connection, and the server rolls it back.
    public func discardPending() {
        if batch.began { connection = nil }
        policy.discard()
        batch = Batch()
    }

    /// Reads the stored checkpoint after a lost batch: if its COMMIT went through after all,
    /// the batch is durable (and must not be planned twice); otherwise the handlers forget
    /// what it taught them, since it is about to be read again.
    private func settle(_ unsettled: BatchPolicy.Unsettled) throws {
        var stored: LSN?
        if case .inDoubt = unsettled { stored = try checkpoint.read(on: connected()) }
        let committed = policy.settle(storedCheckpoint: stored)
        if committed {
            logger.warning("a batch whose commit was in doubt had been committed; it is not planned again",
                           metadata: ["checkpoint": "\(policy.durable)"])
        }
        batchEnded(committed: committed)
    }

    private func batchEnded(committed: Bool) {
        router.batchEnded(committed: committed)
        watermarks?.batchEnded(committed: committed)
    }

    /// Rows are sent in pieces of about this many bytes. Small, so the server inserts a
    /// batch's first rows while the rest are planned: a batch of 1 000 one-row transactions
    /// is about 500 KB, and with 1 MiB pieces it reached the server only at commit, its
    /// planning and its insertion one after the other (a backlog of 100 000 one-row
    /// transactions planned in 1.55–1.64 s instead of 1.77–1.94 s).
    private static let pieceBytes = 1 << 16

    /// Rows for a target other than the open COPY's wait for this many bytes. Ending a COPY
    /// waits until the server has inserted every row sent into it, and the committer plans
    /// nothing meanwhile: a handler that plans a delivery and a log row per change switched
    /// targets every few hundred changes with 64 KiB pieces (300 000 conversation checks
    /// planned in 6.1-6.9 s; with this, 5.7-6.1 s).
    private static let switchBytes = 1 << 20

    /// How many bytes of `target`'s rows are sent at once: a piece into the open COPY (or
    /// the batch's first), more before a switch.
    private func sendingThreshold(of target: Int) -> Int {
        batch.copying == nil || batch.copying == target ? Self.pieceBytes : Self.switchBytes
    }

    /// The target's number, with a row buffer for it in the current batch.
    private func number(of target: CopyTarget) -> Int {
        let number = targetNumbers[target] ?? {
            targets.append(target)
            targetNumbers[target] = targets.count - 1
            return targets.count - 1
        }()
        return withBuffer(number)
    }

    /// Adds `row` to its target's rows, sending them once there are enough.
    private func copy(_ row: PlannedRow) throws {
        let found = rowTarget(of: row)
        let before = batch.rows[found.number].count
        CopyText.appendRow(row.values, to: &batch.rows[found.number])
        let after = batch.rows[found.number].count
        if found.staged { batch.staged[row.table, default: 0] += after - before }
        if after >= sendingThreshold(of: found.number) { try send(found.number) }
    }

    /// The most ids one reservation takes.
    private static let maxReservedIDs = 4096

    /// A fresh id for a row of `log`, reserved in the batch's transaction with the log's
    /// statement, after locking the log's table: a `TRUNCATE … RESTART IDENTITY` of it waits
    /// for the batch, and one committed before it is seen, so no id reserved can be taken
    /// again before the batch inserts it. Ids are never carried from one batch to the next for
    /// the same reason. A batch reserves at first as many as the last one numbered, then as
    /// many again as it has numbered: a steady stream reserves once a batch and leaves few
    /// gaps. A COPY open in the batch's transaction is ended first: no other statement runs
    /// during one, and the next rows open it again. The transaction is then idle until the next
    /// rows are sent (`connect` keeps an idle timeout from ending it).
    private func reservedID(_ numbering: NumberedLogRows, log: String) throws -> String {
        if batch.reservedIDs[log]?.isEmpty ?? true { try reserveIDs(numbering, log: log) }
        batch.numbered[log, default: 0] += 1
        return batch.reservedIDs[log]!.removeFirst()
    }

    /// Reserves the next block of ids for `log` (`reservedID`); gives at least one or throws.
    private func reserveIDs(_ numbering: NumberedLogRows, log: String) throws {
        let count = min(Self.maxReservedIDs, max(numberedLastBatch[log] ?? 1, batch.numbered[log] ?? 0))
        var writing = "reserving ids for the rows of \(log)"
        do {
            let connection = try connected()
            if let open = batch.copying {
                writing = "copying rows into \(targets[open].table)"
                try connection.endCopy()
                batch.copying = nil
                writing = "reserving ids for the rows of \(log)"
            }
            let reserving = """
                LOCK TABLE \(numbering.table.quoted) IN ROW EXCLUSIVE MODE;
                EXECUTE \(numbering.reservation)(\(count))
                """
            let result = try connection.execute(batch.began ? reserving : "BEGIN;\n" + reserving)
            batch.began = true
            var ids: ArraySlice<String> = []
            for row in result.rows {
                guard let id = row.first ?? nil else {
                    throw PostgresError(.queryFailed(sqlState: "22004"), """
                        \(numbering.reservation) gave a NULL id: the id column of \(numbering.table) needs an identity, \
                        a sequence or a default that gives a value
                        """, endpoint: connection.endpoint)
                }
                ids.append(id)
            }
            guard !ids.isEmpty else {
                throw PostgresError(.queryFailed(sqlState: "22004"), "\(numbering.reservation) gave no ids", endpoint: connection.endpoint)
            }
            batch.reservedIDs[log] = ids
        } catch {
            // The connection is in doubt: drop it. The stream re-sends the batch from the last checkpoint.
            connection = nil
            throw rejected(error, writing: writing)
        }
    }

    /// The target of `row`'s table and columns, with a row buffer for it in the current batch.
    private func rowTarget(of row: PlannedRow) -> RowTarget {
        if let last = lastRowTarget, last.target.table == row.table, last.target.columns == row.columns {
            _ = withBuffer(last.number)
            return last
        }
        let target = CopyTarget(table: row.table, columns: row.columns)
        let staged = router.stagingHandler(for: row.table) != nil
        // A session's own table that no handler's statements read would take the rows nowhere.
        precondition(staged || row.table.schema != "pg_temp", "rows planned into \(row.table), which no handler stages")
        let found = RowTarget(target: target, number: number(of: target), staged: staged)
        lastRowTarget = found
        return found
    }

    /// `target`, once the current batch has a row buffer for it.
    private func withBuffer(_ target: Int) -> Int {
        while batch.rows.count <= target { batch.rows.append([]) }
        return target
    }

    /// Sends the rows planned for `target` into a COPY in the batch's transaction,
    /// opening both as needed (a COPY to another target is ended first).
    private func send(_ target: Int) throws {
        guard !batch.rows[target].isEmpty else { return }
        do {
            let connection = try connected()
            if !batch.began {
                try connection.execute("BEGIN")
                batch.began = true
            }
            if batch.copying != target {
                if batch.copying != nil { try connection.endCopy() }
                try connection.beginCopy(targets[target].statement)
                batch.copying = target
            }
            // No copy of the buffer is kept, so clearing it reuses its storage.
            try connection.putCopyData(batch.rows[target])
            batch.rows[target].removeAll(keepingCapacity: true)
        } catch {
            // The connection is in doubt: drop it. The stream re-sends the batch from the last checkpoint.
            connection = nil
            throw rejected(error, writing: "copying rows into \(targets[batch.copying ?? target].table)")
        }
    }

    /// Writes the batch and the checkpoint in one transaction; returns the new checkpoint.
    private func commit() throws -> LSN? {
        guard let end = policy.end else { return nil }
        let started = clock.now
        // The open COPY's target first: one COPY fewer to open.
        if let open = batch.copying { try send(open) }
        for target in batch.rows.indices { try send(target) }
        var stagedResults: [(any Handler, QueryResult)] = []
        var writing = "beginning the batch"
        do {
            let connection = try connected()
            if let open = batch.copying {
                writing = "copying rows into \(targets[open].table)"
                try connection.endCopy()
            }
            if !batch.began { try connection.execute("BEGIN") }
            if StagingSweep.replans(batch.staged) { try connection.execute("DISCARD PLANS") }
            var ran: [(staging: Staging, bytes: Int)] = []
            for (table, bytes) in batch.staged {
                if let handler = router.stagingHandler(for: table), let staging = handler.staging {
                    writing = "applying the rows \(handler.name) staged in \(table)"
                    stagedResults.append((handler, try connection.execute(staging.statements)))
                    ran.append((staging, bytes))
                }
            }
            // The rest in one round trip: the emptying of the staging tables, the checkpoint,
            // the dispatchers' wake-up and COMMIT. An error in one skips the others, and the
            // transaction is rolled back with the connection.
            var closing = sweep.statement(emptying: ran).map { [$0] } ?? []
            CrashPoint.batchCopied.reach()
            closing.append(checkpoint.statement(writing: end))
            if batch.deliveries > 0 { closing.append(DeliveryNotifications.statement) }
            closing.append("COMMIT")
            writing = "emptying the staging tables and writing the checkpoint"
            try connection.execute(closing.joined(separator: ";\n"))
        } catch {
            // The connection is in doubt: drop it. The stream re-sends the batch from the last checkpoint.
            connection = nil
            throw rejected(error, writing: writing)
        }
        logger.debug("batch committed", metadata: [
            "checkpoint": "\(end)", "transactions": "\(policy.transactions)", "changes": "\(policy.changes)",
            "deliveries": "\(batch.deliveries)", "ms": "\((clock.now - started).wholeMilliseconds)",
        ])
        CrashPoint.checkpointCommitted.reach()
        metrics.committed(transactions: policy.transactions, changes: batch.changes)
        policy.committed()
        numberedLastBatch.merge(batch.numbered) { $1 }
        batch = Batch()
        for (handler, result) in stagedResults { handler.stagedBatchCommitted(result) }
        batchEnded(committed: true)
        return end
    }

    private func rejected(_ error: any Error, writing: String) -> any Error {
        BatchRejected.wrapping(error, after: policy.durable, through: admittedThrough ?? policy.end, writing: writing)
    }

    private func connected() throws(PostgresError) -> PostgresConnection {
        if let connection { return connection }
        let fresh = try Self.connect(settings.stateURL, router: router)
        connection = fresh
        return fresh
    }

    /// A connection with the session's own staging tables (`Staging.sessionSetup`). A role
    /// that may not create temporary tables is told what to grant, at start.
    ///
    /// A database's or role's `statement_timeout` and `idle_in_transaction_session_timeout`
    /// are turned off for the session. A transaction is never split across batches, so its
    /// statements (a webhook fan-out inserts four log rows for each of the application's) can
    /// take longer than the application's own: ended by a timeout, the same batch would be
    /// planned and ended again at every start. A reservation of log-row ids leaves the batch's
    /// transaction idle while the rest of a large transaction is planned. An operator's
    /// `lock_timeout` is kept: a lock waited for is released in time, and a restart gets by.
    private static func connect(_ url: String, router: Router) throws(PostgresError) -> PostgresConnection {
        let connection = try PostgresConnection(url: url)
        try connection.execute("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0")
        do {
            for setup in router.sessionSetups { try connection.execute(setup) }
        } catch where error.sqlState == "42501" && error.message.contains("temporary") {
            throw PostgresError(error.kind, """
                the batch committer stages its rows in temporary tables of its own session, and its role may not \
                create them: GRANT TEMPORARY ON DATABASE <the state database> TO <its role> (\(error.message))
                """, endpoint: error.endpoint, statement: error.statement)
        }
        return connection
    }
}
