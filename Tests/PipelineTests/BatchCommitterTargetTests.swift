import Core
import Decoding
import EmbeddedPostgres
import Glibc
import Handlers
import Logging
import Pipeline
import PlannedEffects
import Replication
import Synchronization
import TestSupport
import Testing

/// Which COPY a planned row goes into, against a real cluster: the committer remembers the
/// last row's target, and a row must still land in its own table and columns whatever the
/// rows before it were.
@Suite struct BatchCommitterTargetTests {
    /// A cluster of its own with every migration applied, and a connection to it.
    static func migratedCluster() throws -> (LocalPostgres, PostgresConnection) {
        let cluster = try LocalPostgres()
        try cluster.start()
        do {
            let db = try cluster.connect()
            for migration in try SchemaFiles.migrations() { try db.execute(migration) }
            return (cluster, db)
        } catch {
            try? cluster.stop()
            throw error
        }
    }

    @Test func rowsLandInTheirOwnTableAndColumnsWhateverTheRowBeforeThem() throws {
        let (cluster, db) = try Self.migratedCluster()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE public.left_rows (a text, b text); CREATE TABLE public.right_rows (a text, b text)")

        let left = TableName(schema: "public", name: "left_rows")
        let right = TableName(schema: "public", name: "right_rows")
        // The same table with its columns in another order, or fewer of them; another table
        // with the same columns; and back again.
        let planned: [PlannedRow] = [
            PlannedRow(table: left, ["a": "1a", "b": "1b"]),
            PlannedRow(table: left, ["b": "2b", "a": "2a"]),
            PlannedRow(table: left, ["a": "3a"]),
            PlannedRow(table: right, ["a": "4a", "b": "4b"]),
            PlannedRow(table: left, ["a": "5a", "b": "5b"]),
            PlannedRow(table: right, ["b": "6b"]),
            PlannedRow(table: right, ["a": "7a", "b": "7b"]),
        ]
        let committer = try BatchCommitter(
            .init(stateURL: cluster.url, slot: "targets"), router: Router([]),
            planning: { _, effect in for row in planned { try effect(.row(row)) } },
            logger: Logger(label: "test"))
        for end in [0x200, 0x300] {
            let transaction = Transaction(xid: 7, commitLSN: LSN(UInt64(end - 0x10)), endLSN: LSN(UInt64(end)),
                                          commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [])
            _ = try committer.accept(transaction)
            #expect(try committer.flush() == LSN(UInt64(end)))
        }

        func rows(_ table: TableName) throws -> [String] {
            try db.execute("SELECT coalesce(a, '-') || ' ' || coalesce(b, '-') AS r FROM \(table.quoted) ORDER BY 1")
                .rows.compactMap { $0.first ?? nil }
        }
        let once = ["1a 1b", "2a 2b", "3a -", "5a 5b"]
        #expect(try rows(left) == (once + once).sorted())
        let other = ["- 6b", "4a 4b", "7a 7b"]
        #expect(try rows(right) == (other + other).sorted())
    }

    /// Rows of two tables interleaved in one batch, megabytes of each: the open COPY's rows go
    /// in pieces, the other table's wait until there are many, and every row lands once.
    @Test func interleavedTablesOfManyRowsLandWhole() throws {
        let (cluster, db) = try Self.migratedCluster()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE public.often (n int, pad text); CREATE TABLE public.seldom (n int, pad text)")

        let often = TableName(schema: "public", name: "often")
        let seldom = TableName(schema: "public", name: "seldom")
        let pad = String(repeating: "p", count: 120)
        let count = 30_000
        let committer = try BatchCommitter(
            .init(stateURL: cluster.url, slot: "interleaved", maxBatchChanges: 1_000_000), router: Router([]),
            planning: { _, effect in
                for n in 1...count {
                    try effect(.row(PlannedRow(table: often, ["n": "\(n)", "pad": pad])))
                    if n % 3 == 0 { try effect(.row(PlannedRow(table: seldom, ["n": "\(n)", "pad": pad]))) }
                }
            },
            logger: Logger(label: "test"))
        let transaction = Transaction(xid: 9, commitLSN: LSN(0x3F0), endLSN: LSN(0x400),
                                      commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [])
        _ = try committer.accept(transaction)
        #expect(try committer.flush() == LSN(0x400))

        func summary(_ table: TableName) throws -> [String?] {
            try db.execute("SELECT count(*), count(DISTINCT n), sum(n) FROM \(table.quoted)").rows.first ?? []
        }
        #expect(try summary(often) == ["\(count)", "\(count)", "\(count * (count + 1) / 2)"])
        let thirds = count / 3
        #expect(try summary(seldom) == ["\(thirds)", "\(thirds)", "\(3 * thirds * (thirds + 1) / 2)"])
    }

    /// A webhook's log row is numbered by the committer as it plans the delivery (sql/035),
    /// from ids reserved ahead: more deliveries than one reservation holds, among rows of
    /// another table, so that reservations fall while a COPY is open. A batch lost before
    /// its commit leaves nothing (the ids it took are gaps); each committed delivery names
    /// exactly one log row, whose payload is its body, and one for a config deleted since is
    /// kept without the reference.
    @Test func webhookLogRowsAreNumberedAheadAcrossCopiesAndBatches() throws {
        let (cluster, db, config) = try Self.migratedClusterWithConfig()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE public.between (n int)")
        let gone = "\(Int(config)! + 1000)"
        let between = TableName(schema: "public", name: "between")
        let count = 5_000
        let router = Router([WebhookHandler(rules: [], cache: WebhookConfigCache(), logger: Logger(label: "test"))])
        let committer = try BatchCommitter(
            .init(stateURL: cluster.url, slot: "numbered", maxBatchChanges: 1_000_000), router: router,
            planning: { transaction, effect in
                for n in 1...count {
                    let key = "msg_\(transaction.xid)_\(n)"
                    let owner = n == count ? gone : config
                    let body = #"{"type":"x.created","key":"\#(key)"}"#
                    try effect(.delivery(PositionedDelivery(
                        handler: "webhooks", position: ChangePosition(commitLSN: transaction.commitLSN, index: n),
                        delivery: PlannedDelivery(target: owner + ":x.created", url: "http://127.0.0.1:9/", body: body,
                                                  orderingKey: "webhook:" + owner, retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 1),
                                                  report: .webhookLog(webhookID: key, configID: owner, eventType: "x.created", body: body),
                                                  endpoint: "webhook:" + owner, idempotencyKey: key))))
                    if n % 7 == 0 { try effect(.row(PlannedRow(table: between, ["n": "\(n)"]))) }
                }
            },
            logger: Logger(label: "test"))
        _ = try committer.accept(Self.transaction(1, ending: 0x200))
        committer.discardPending()
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == "0")
        for (xid, end) in [(UInt32(1), UInt64(0x200)), (2, 0x300)] {
            _ = try committer.accept(Self.transaction(xid, ending: end))
            #expect(try committer.flush() == LSN(end))
        }

        let logged = try db.execute("""
            SELECT count(*) AS deliveries,
                   count(w.id) FILTER (WHERE w.payload::text = d.body::jsonb::text AND w.event_type = 'x.created'
                                       AND w.attempt_count = 0) AS paired,
                   count(DISTINCT w.id) AS rows,
                   count(*) FILTER (WHERE w.webhook_config_id IS NULL) AS orphans
            FROM changerelay.deliveries d
            LEFT JOIN public.webhook_logs w ON w.id::text = d.report->'webhook_log'->>'id'
            """).rows.first
        #expect(logged == ["\(2 * count)", "\(2 * count)", "\(2 * count)", "2"])
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == "\(2 * count)")
        #expect(try db.execute("SELECT count(*) AS n FROM public.between").value("n") == "\(2 * (count / 7))")
    }

    /// A migrated cluster with one webhook config, and the config's id.
    static func migratedClusterWithConfig() throws -> (LocalPostgres, PostgresConnection, config: String) {
        let (cluster, db) = try migratedCluster()
        do {
            let config = try db.execute("""
                INSERT INTO public.webhook_configs (name, url, events) VALUES ('c', 'http://127.0.0.1:9/', '{x}')
                RETURNING id::text AS id
                """).value("id")!
            return (cluster, db, config)
        } catch {
            try? cluster.stop()
            throw error
        }
    }

    /// A committer planning webhook deliveries, `count` of them a transaction, all for `config`.
    static func webhookCommitter(_ cluster: LocalPostgres, slot: String, config: String, count: Int) throws -> BatchCommitter {
        let router = Router([WebhookHandler(rules: [], cache: WebhookConfigCache(), logger: Logger(label: "test"))])
        return try BatchCommitter(
            .init(stateURL: cluster.url, slot: slot), router: router,
            planning: { transaction, effect in
                for n in 1...count {
                    let key = "msg_\(transaction.xid)_\(n)"
                    try effect(.delivery(PositionedDelivery(
                        handler: "webhooks", position: ChangePosition(commitLSN: transaction.commitLSN, index: n),
                        delivery: PlannedDelivery(target: config + ":x", url: "http://127.0.0.1:9/", body: "{}",
                                                  orderingKey: nil, retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 1),
                                                  report: .webhookLog(webhookID: key, configID: config, eventType: "x", body: "{}"),
                                                  endpoint: "webhook:" + config, idempotencyKey: key))))
                }
            },
            logger: Logger(label: "test"))
    }

    static func transaction(_ xid: UInt32, ending end: UInt64) -> Transaction {
        Transaction(xid: xid, commitLSN: LSN(end - 0x10), endLSN: LSN(end), commitTime: PostgresTimestamp(microsecondsSince2000: 0),
                    changes: [])
    }

    /// A config deleted by a transaction that commits while the batch inserts its log rows:
    /// the rows are kept without the reference, as the seed's `ON DELETE SET NULL` would leave
    /// them. Joined without a lock, the insert still saw the config, and the foreign key's
    /// check, run after the delete committed, refused the batch.
    @Test func aConfigDeletedWhileItsLogRowsAreInsertedLeavesThemWithoutTheReference() throws {
        let (cluster, db, config) = try Self.migratedClusterWithConfig()
        defer { try? cluster.stop() }
        let committer = try Self.webhookCommitter(cluster, slot: "deleted", config: config, count: 50)
        _ = try committer.accept(Self.transaction(1, ending: 0x200))

        let deleting = try cluster.connect()
        try deleting.execute("BEGIN; DELETE FROM public.webhook_configs WHERE id = \(config)")
        let watcher = try cluster.connect()
        let committed = Mutex<Result<Void, PostgresError>?>(nil)
        let thread = try #require(startThread {
            let outcome = Result { () throws(PostgresError) in
                let deadline = ContinuousClock.now + .seconds(30)
                // The batch's insert waits for the deleting transaction: only then does it commit.
                while try watcher.execute("""
                    SELECT count(*) AS n FROM pg_stat_activity
                    WHERE wait_event_type = 'Lock' AND query LIKE '%changerelay_insert_numbered_webhook_logs%'
                    """).value("n") == "0" && ContinuousClock.now < deadline {
                    sleepThread(for: .milliseconds(10))
                }
                try deleting.execute("COMMIT")
            }
            committed.withLock { $0 = outcome }
        })
        #expect(try committer.flush() == LSN(0x200))
        pthread_join(thread, nil)
        let outcome = try #require(committed.withLock { $0 })
        #expect(throws: Never.self) { try outcome.get() }
        #expect(try db.execute("""
            SELECT count(*) AS n, count(webhook_config_id) AS referenced,
                   (SELECT count(*) FROM changerelay.deliveries) AS deliveries
            FROM public.webhook_logs
            """).rows == [["50", "0", "50"]])
    }

    /// A `TRUNCATE webhook_logs RESTART IDENTITY` waits for a batch that reserved ids, and
    /// the next batch reserves after it, from the restarted sequence: no id is carried from
    /// one batch to the next, where the restart would hand it out again.
    @Test func aTruncationThatRestartsTheLogIDsNeverMeetsAnIDTheCommitterHolds() throws {
        let (cluster, db, config) = try Self.migratedClusterWithConfig()
        defer { try? cluster.stop() }
        let committer = try Self.webhookCommitter(cluster, slot: "restarted", config: config, count: 5)
        _ = try committer.accept(Self.transaction(1, ending: 0x200))
        let truncating = try cluster.connect()
        try truncating.execute("SET lock_timeout = '200ms'")
        #expect {
            try truncating.execute("TRUNCATE public.webhook_logs RESTART IDENTITY")
        } throws: { error in
            (error as? PostgresError)?.sqlState == "55P03"
        }
        #expect(try committer.flush() == LSN(0x200))

        try truncating.execute("TRUNCATE public.webhook_logs RESTART IDENTITY")
        for (xid, end) in [(UInt32(2), UInt64(0x300)), (3, 0x400)] {
            _ = try committer.accept(Self.transaction(xid, ending: end))
            #expect(try committer.flush() == LSN(end))
        }
        #expect(try db.execute("SELECT string_agg(id::text, ',' ORDER BY id) AS ids FROM public.webhook_logs").value("ids")
                    == (1...10).map(String.init).joined(separator: ","))
    }

    /// A database's timeouts do not end the committer's batches: a reservation leaves the
    /// batch's transaction idle while the rest of a transaction is planned, and a large
    /// transaction's statements (four log rows for each of the application's) take longer
    /// than the application's own. Ended by either, the same batch was planned and ended
    /// again at every start.
    @Test func aBatchOutlivesTheDatabasesIdleAndStatementTimeouts() throws {
        let (cluster, db, config) = try Self.migratedClusterWithConfig()
        defer { try? cluster.stop() }
        try db.execute("""
            ALTER DATABASE postgres SET idle_in_transaction_session_timeout = '100ms';
            ALTER DATABASE postgres SET statement_timeout = '1ms'
            """)
        let committer = try Self.webhookCommitter(cluster, slot: "idle", config: config, count: 3_000)
        _ = try committer.accept(Self.transaction(1, ending: 0x200))
        // Longer than the idle timeout, on purpose: the transaction is idle for this long.
        sleepThread(for: .milliseconds(400))
        #expect(try committer.flush() == LSN(0x200))
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == "3000")
    }

    /// A `webhook_logs.id` that cannot number a log row: without a default the committer is
    /// refused at its first connection, naming the column; with a default that gives NULL,
    /// the batch stops naming the reservation and what the column needs, and nothing of it
    /// is kept.
    @Test func aLogIDThatGivesNoValueIsRefusedNamingTheColumn() throws {
        let (cluster, db) = try Self.migratedCluster()
        defer { try? cluster.stop() }
        try db.execute("ALTER TABLE public.webhook_logs ALTER id DROP IDENTITY")
        let router = Router([WebhookHandler(rules: [], cache: WebhookConfigCache(), logger: Logger(label: "test"))])
        #expect {
            _ = try BatchCommitter(.init(stateURL: cluster.url, slot: "unnumbered"), router: router, logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("public.webhook_logs.id has no identity, sequence or default: ChangeRelay cannot number its rows")
        }
        try db.execute("ALTER TABLE public.webhook_logs ALTER id SET DEFAULT nullif(1, 1)")
        let committer = try Self.webhookCommitter(cluster, slot: "unnumbered", config: "1", count: 1)
        #expect {
            _ = try committer.accept(Self.transaction(1, ending: 0x200))
            _ = try committer.flush()
        } throws: { error in
            guard let rejected = error as? BatchRejected else { return false }
            return rejected.writing == "reserving ids for the rows of webhook_log"
                && rejected.description.contains("changerelay_reserve_webhook_log_ids gave a NULL id")
        }
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == "0")
    }

    /// A row its table refuses (the application changed a column's type) stops the batch
    /// with an error that says which transactions and which table, and nothing of the batch
    /// is kept: the checkpoint stays where it was.
    @Test func aRowItsTableRefusesNamesTheBatchAndTheTable() throws {
        let (cluster, db) = try Self.migratedCluster()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE public.counted (n bigint)")
        let counted = TableName(schema: "public", name: "counted")
        let committer = try BatchCommitter(
            .init(stateURL: cluster.url, slot: "refused"), router: Router([]),
            planning: { transaction, effect in
                try effect(.row(PlannedRow(table: counted, ["n": transaction.xid == 1 ? "1" : "conv-abc"])))
            },
            logger: Logger(label: "test"))
        for (xid, end) in [(UInt32(1), 0x200), (2, 0x300)] {
            _ = try committer.accept(Transaction(xid: xid, commitLSN: LSN(UInt64(end - 0x10)), endLSN: LSN(UInt64(end)),
                                                 commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: []))
        }
        #expect {
            try committer.flush()
        } throws: { error in
            guard let rejected = error as? BatchRejected else { return false }
            return rejected.after == .zero && rejected.through == LSN(0x300) && rejected.writing == "copying rows into public.counted"
                && rejected.underlying.sqlState == "22P02" && rejected.description.contains("invalid input syntax for type bigint")
                && !rejected.description.contains("conv-abc")
        }
        #expect(try db.execute("SELECT count(*) AS n FROM public.counted").value("n") == "0")
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.checkpoints WHERE slot_name = 'refused'").value("n") == "0")
    }

    /// A constraint that refuses a planned row names itself and the table, never the row:
    /// rows the pipeline writes carry webhook headers and URLs with their credentials, and
    /// the server's detail ("Failing row contains …") and a COPY's context quote them.
    @Test func aRefusedRowIsNotQuotedInTheError() throws {
        let (cluster, db) = try Self.migratedCluster()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE public.guarded (url text, headers jsonb, CONSTRAINT short_urls CHECK (length(url) < 20))")
        let guarded = TableName(schema: "public", name: "guarded")
        let secret = "Bearer-SECRET-7f3a"
        let committer = try BatchCommitter(
            .init(stateURL: cluster.url, slot: "quoted"), router: Router([]),
            planning: { _, effect in
                try effect(.row(PlannedRow(table: guarded, ["url": "http://user:\(secret)@example.com/hook",
                                                            "headers": #"{"Authorization": "\#(secret)"}"#])))
            },
            logger: Logger(label: "test"))
        _ = try committer.accept(Transaction(xid: 1, commitLSN: LSN(0x1F0), endLSN: LSN(0x200),
                                             commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: []))
        #expect {
            try committer.flush()
        } throws: { error in
            let text = "\(error)"
            return (error as? BatchRejected)?.underlying.sqlState == "23514" && text.contains("short_urls")
                && text.contains("COPY guarded, line 1") && !text.contains("SECRET")
        }
    }
}
