import Core
import Decoding
import Foundation
import LocalReceiver
import Replication
import Synchronization
import Testing

/// `changerelay backfill` through the running service: existing rows reach the handlers as
/// `read` changes between watermarks, exactly once, whatever the live stream and crashes do.
@Suite struct BackfillTests {
    /// `count` habit_tracker rows, each its own (child, user, week), inserted and then put
    /// behind the slot as if they had existed before it: only a backfill can bring them.
    static func preexistingHabitRows(_ setup: RunPipelineTests.Setup, count: Int, firstID: Int = 1) throws {
        try setup.db.execute("""
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            SELECT g, 'child ' || (g % 500), date '2026-01-05' + (g / 500) * 7, 'week',
                   jsonb_build_array(
                       jsonb_build_object('name', 'Read', 'time_period', 'morning',
                                          'times', jsonb_build_array('done', 'missed', '', 'partial', NULL, 'done', 'done')),
                       jsonb_build_object('name', 'Walk ' || g, 'time_period', 'evening',
                                          'times', jsonb_build_array('partial', 'done', NULL, NULL, 'missed', '', 'done'))),
                   ('00000000-0000-0000-0000-' || lpad(to_hex(g % 50), 12, '0'))::uuid
            FROM generate_series(\(firstID), \(firstID + count - 1)) g;
            SELECT setval(pg_get_serial_sequence('habit_tracker', 'id'), \(firstID + count + 1_000_000));
            """)
        try Self.putBehindTheSlot(setup.db)
    }

    /// Moves the slot past everything committed: as if those rows had existed before it. (Not
    /// in the inserting statement's string: a multi-statement query is one transaction, whose
    /// rows would not be committed yet.)
    /// The slot advances no further than the WAL is flushed, and the test clusters commit
    /// asynchronously: a synchronous commit flushes everything before it first.
    static func putBehindTheSlot(_ db: PostgresConnection) throws {
        try db.execute("SET synchronous_commit = on")
        try db.execute("SELECT pg_logical_emit_message(true, 'test.flush', '')")
        try db.execute("RESET synchronous_commit")
        let end = try db.execute("SELECT pg_current_wal_lsn()::text AS lsn").value("lsn") ?? "0/0"
        try db.query("SELECT pg_replication_slot_advance('changerelay', $1::pg_lsn)", [end])
        let confirmed = try db.query("""
            SELECT confirmed_flush_lsn >= $1::pg_lsn AS passed FROM pg_replication_slots WHERE slot_name = 'changerelay'
            """, [end]).value("passed")
        guard confirmed == "t" else { throw TestFailure("the slot did not advance to \(end)") }
    }

    static func backfill(_ setup: RunPipelineTests.Setup, environment: [String: String]? = nil, _ arguments: [String],
                         timeout: Duration = .seconds(300)) throws -> CommandResult {
        try runChangeRelay(["backfill"] + arguments, environment: environment ?? setup.environment, timeout: timeout)
    }

    /// Every change committed so far has been planned: the slot confirmed the WAL end taken now.
    static func waitForStreamToCatchUp(_ db: PostgresConnection) throws {
        let end = try db.execute("SELECT pg_current_wal_lsn()::text AS lsn").value("lsn") ?? "0/0"
        try RunPipelineTests.waitFor("the stream to reach \(end)") {
            try db.query("SELECT confirmed_flush_lsn >= $1::pg_lsn AS caught FROM pg_replication_slots WHERE slot_name = 'changerelay'",
                         [end]).value("caught") == "t"
        }
    }

    static func driftReport(_ setup: RunPipelineTests.Setup) throws -> JSONValue {
        let check = try DualWriteTests.driftCheck(setup, ["--json"])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        return try JSONParser.parse(check.stdout)
    }

    @Test func aDualWriteBackfillOfTwentyThousandExistingRowsLeavesNoDrift() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.preexistingHabitRows(setup, count: 20_000)
        let environment = DualWriteTests.environment(setup, mode: "apply")
        let run = try Background(["run"], environment: environment)
        let result = try Self.backfill(setup, environment: environment, ["--table", "habit_tracker", "--chunk-size", "2000"])
        #expect(result.status == 0, "\(result.stdout) \(result.stderr) \(run.stderr.suffix(3000))")
        #expect(result.stdout.contains("backfill 1 requested: public.habit_tracker"))
        #expect(result.stderr.contains("backfill 1: done: 20000 rows of public.habit_tracker"), "\(result.stderr)")
        let report = try Self.driftReport(setup)
        #expect(report["rows_checked"] == .number("20000") && report["rows_drifted"] == .number("0"), "\(report)")
        #expect(try DualWriteTests.count(setup.db, """
            SELECT count(*) AS n FROM idempotency_log WHERE key LIKE 'dual_write:backfill:1:public.habit_tracker:id=%'
            """) == 20_000)
        let row = try setup.db.execute("SELECT status, rows_done, chunks_done, cursor::text, finished_at IS NOT NULL AS finished FROM changerelay.backfills")
        #expect(row.value("status") == "done" && row.value("rows_done") == "20000" && row.value("chunks_done") == "11")
        #expect(row.value("cursor") == "{20000}" && row.value("finished") == "t")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    @Test func aTableTheBackfillCannotBeExactForIsRefusedBeforeAnythingIsRecorded() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE TABLE keyless (v text); ALTER PUBLICATION changerelay_pub ADD TABLE keyless;
            CREATE TABLE unpublished (id int PRIMARY KEY);
            CREATE TABLE nothing_identity (id int PRIMARY KEY); ALTER TABLE nothing_identity REPLICA IDENTITY NOTHING;
            ALTER PUBLICATION changerelay_pub ADD TABLE nothing_identity;
            CREATE TABLE "Mixed Case" (id int PRIMARY KEY); ALTER PUBLICATION changerelay_pub ADD TABLE "Mixed Case";
            CREATE TABLE generated_key (a int NOT NULL, id int GENERATED ALWAYS AS (a * 2) STORED PRIMARY KEY, v text);
            INSERT INTO generated_key (a, v) SELECT g, 'g' FROM generate_series(1, 30) g;
            ALTER PUBLICATION changerelay_pub ADD TABLE generated_key;
            CREATE SCHEMA "Odd Schema"; CREATE TABLE "Odd Schema"."Odd Table" (id int PRIMARY KEY);
            CREATE TABLE parted (id int PRIMARY KEY, region text) PARTITION BY RANGE (id);
            CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
            CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (200);
            ALTER PUBLICATION changerelay_pub ADD TABLE parted;
            """)
        let refusals: [([String], String)] = [
            (["--table", "keyless"], "public.keyless has no primary key"),
            (["--table", "unpublished"], "public.unpublished is not in publication changerelay_pub"),
            (["--table", "no_such_table"], "no table no_such_table on the source"),
            (["--table", "a.b.c.d"], "no table a.b.c.d on the source"),
            // Three parts read as database.schema.table, which the server refuses as cross-database.
            (["--table", "otherdb.public.items"], "no table otherdb.public.items on the source"),
            (["--table", "\"open"], "no table \"open on the source"),
            (["--table", "nothing_identity"], "replica identity (NOTHING)"),
            (["--table", "items", "--where", "no_such_column > 1"], "--where for public.items is refused by the server"),
            (["--table", "items", "--where", "true) OR (true"], "--where for public.items has a parenthesis"),
            (["--table", "items", "--where", "id > 0; DROP TABLE items"], "--where for public.items contains a semicolon"),
            (["--table", "items", "--where", "v"], "--where for public.items is refused by the server"),
            // Texts a server reads differently from a careless check: a comment ended by a
            // carriage return, a dollar quote whose tag is not ASCII.
            (["--table", "items", "--where", "false --\r) OR (true"], "--where for public.items contains a -- comment"),
            (["--table", "items", "--where", "$é$'$é$ IS NULL ) OR ( id = 1 /*'*/"], "--where for public.items has a parenthesis"),
            (["--table", "generated_key"], "public.generated_key's primary key column id is generated"),
            (["--table", "parted"], "backfill each partition (public.parted_high, public.parted_low)"),
            (["--table", "items", "--chunk-size", "0"], "--chunk-size must be between 1 and 1000000"),
            // Nothing binds a parameter: said as a --where refusal, not as the protocol's bind error.
            (["--table", "items", "--where", "id > $1"], "--where for public.items contains a parameter"),
            // A name that needs quotes is quoted in the SQL a refusal gives.
            (["--table", "\"Odd Schema\".\"Odd Table\""],
             #"(ALTER PUBLICATION changerelay_pub ADD TABLE "Odd Schema"."Odd Table")"#),
        ]
        for (arguments, message) in refusals {
            let result = try Self.backfill(setup, arguments)
            #expect(result.status != 0, "\(arguments) was accepted")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(try DualWriteTests.count(setup.db, "SELECT count(*) AS n FROM changerelay.backfills") == 0)
        // A quoted mixed-case name is a table like any other.
        let accepted = try Self.backfill(setup, ["--table", "public.\"Mixed Case\"", "--detach"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        // Published through its root, a partition is named with the table to backfill instead:
        // adding it to the publication, as for a table that is not in it, would change nothing.
        try setup.db.execute("ALTER PUBLICATION changerelay_pub SET (publish_via_partition_root = true)")
        let partition = try Self.backfill(setup, ["--table", "parted_low"])
        #expect(partition.status != 0 && partition.stderr.contains(
            "public.parted_low is a partition of public.parted, under whose name publication changerelay_pub sends its changes "
                + "(publish_via_partition_root): backfill public.parted"), "\(partition.stderr)")
    }

    /// Writes into the table while it is backfilled, until stopped: updates, deletes, inserts
    /// and key moves, half of them aimed just past the backfill's cursor (the chunk being read
    /// and the next), half anywhere. Rows it inserts have odd ids; every row keeps its own
    /// (child, user, week).
    final class Writer: Sendable {
        let stopped = Atomic<Bool>(false)
        let transactions = Atomic<Int>(0)

        /// Starts writing on a thread of its own.
        static func start(_ cluster: LocalPostgresURL, maxID: Int) -> Writer {
            let writer = Writer()
            let thread = Thread {
                guard let db = try? PostgresConnection(url: cluster.url) else { return }
                var generator = SystemRandomNumberGenerator()
                while !writer.stopped.load(ordering: .relaxed) {
                    let cursor = (try? db.execute("SELECT coalesce(max(cursor[1]::bigint), 0) AS c FROM changerelay.backfills")
                        .value("c")).flatMap { $0.flatMap(Int.init) } ?? 0
                    func target() -> Int {
                        Bool.random(using: &generator) ? cursor + Int.random(in: 1...250, using: &generator)
                            : Int.random(in: 1...maxID, using: &generator)
                    }
                    let (a, b, c, d) = (target(), target(), target() | 1, target())
                    _ = try? db.execute("""
                        BEGIN;
                        UPDATE habit_tracker SET habits = jsonb_build_array(jsonb_build_object(
                            'name', 'Read v' || txid_current() % 7, 'times', jsonb_build_array('done', '', '', '', '', '', 'missed')))
                        WHERE id = \(a) OR id BETWEEN \(cursor + 1) AND \(cursor + 60) AND id % 10 = 0;
                        DELETE FROM habit_tracker WHERE id = \(b);
                        INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
                        VALUES (\(c), 'new ' || \(c), date '2026-03-02', 'week',
                                '[{"name": "Fresh", "times": ["done", null, "", "", "", "", ""]}]', '00000000-0000-0000-0000-0000000000ff')
                        ON CONFLICT (id) DO NOTHING;
                        UPDATE habit_tracker SET id = id + 10000000 WHERE id = \(d) AND \(d % 7) = 0;
                        COMMIT;
                        """)
                    writer.transactions.add(1, ordering: .relaxed)
                }
            }
            thread.start()
            return writer
        }

        func stop() { stopped.store(true, ordering: .relaxed) }
    }

    struct LocalPostgresURL: Sendable { let url: String }

    /// Rows changed in chunks not read yet and in the chunk being read, with small chunks:
    /// the new schema ends equal to the source, through either plugin.
    @Test(arguments: ["pgoutput", "wal2json"])
    func aBackfillUnderAConcurrentWriterEndsWithNoDrift(plugin: String) throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            SELECT g * 2, 'child ' || g, date '2026-01-05', 'week',
                   '[{"name": "Read", "times": ["done", "missed", "", "partial", null, "done", "done"]}]',
                   ('00000000-0000-0000-0000-' || lpad(to_hex(g % 50), 12, '0'))::uuid
            FROM generate_series(1, 1000) g;
            """)
        try Self.putBehindTheSlot(setup.db)
        let environment = DualWriteTests.environment(setup, mode: "apply")
        let run = try Background(["run"], environment: environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        // The trap DESIGN describes, made certain: a transaction that holds an xid when the first
        // low watermark commits, and commits after it. Its rows (ids 2…20, in the first chunk)
        // must be dropped from the chunk, which waits for it before it reads.
        let holder = try setup.cluster.connect()
        try holder.execute("BEGIN")
        try holder.execute(#"UPDATE habit_tracker SET habits = '[{"name": "Held", "times": ["done", "", "", "", "", "", ""]}]' WHERE id <= 20"#)
        let follower = try Background(["backfill", "--table", "habit_tracker", "--chunk-size", "25"], environment: environment)
        try RunPipelineTests.waitFor("the first chunk to wait for the open transaction") {
            try setup.db.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'changerelay backfill' "
                                 + "AND query LIKE '%pg_xact_status%'").value("n") != "0"
        }
        try holder.execute("COMMIT")
        let writer = Writer.start(LocalPostgresURL(url: setup.cluster.url), maxID: 2000)
        defer { writer.stop() }
        let status = follower.waitForExit(timeout: .seconds(600))
        writer.stop()
        #expect(status == 0, "\(follower.stderr) \(run.stderr.suffix(2000))")
        #expect(writer.transactions.load(ordering: .relaxed) > 20, "the writer hardly wrote during the backfill")
        try Self.waitForStreamToCatchUp(setup.db)
        let report = try Self.driftReport(setup)
        let rows = try DualWriteTests.count(setup.db, "SELECT count(*) AS n FROM habit_tracker")
        #expect(report["rows_checked"] == .number(String(rows)) && report["rows_drifted"] == .number("0"), "\(report)")
        let progress = try setup.db.execute("SELECT status, rows_superseded FROM changerelay.backfills")
        #expect(progress.value("status") == "done")
        #expect(Int(progress.value("rows_superseded") ?? "") ?? 0 >= 10, "the held transaction's rows were not superseded")
    }

    /// kill -9 several times while a backfill runs: it resumes at the next chunk, finishes,
    /// and every row was handled exactly once.
    @Test func killNineDuringABackfillResumesAndHandlesEveryRowOnce() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.preexistingHabitRows(setup, count: 20_000)
        let environment = DualWriteTests.environment(setup, mode: "apply")
        let requested = try Self.backfill(setup, environment: environment, ["--table", "habit_tracker", "--chunk-size", "200", "--detach"])
        #expect(requested.status == 0, "\(requested.stderr)")
        var generator = SystemRandomNumberGenerator()
        var done = 0
        for round in 1...3 {
            let run = try Background(["run"], environment: environment)
            try RunPipelineTests.waitFor("progress before kill \(round)") {
                done = try DualWriteTests.count(setup.db, "SELECT rows_done AS n FROM changerelay.backfills")
                return done >= round * 4000
            }
            usleep(UInt32.random(in: 0...150_000, using: &generator))
            run.child.signal(SIGKILL)
            _ = run.waitForExit()
        }
        #expect(try DualWriteTests.count(setup.db, "SELECT rows_done AS n FROM changerelay.backfills") < 20_000,
                "the kills all came after the backfill had finished")
        let final = try Background(["run"], environment: environment)
        // Its SIGTERM must find the service running, not starting: what it waits for may all be done by then.
        try RunPipelineTests.waitFor("the last run to stream") { final.stderr.contains("streaming") }
        try RunPipelineTests.waitFor("the backfill to finish", timeout: .seconds(300)) {
            try setup.db.execute("SELECT status FROM changerelay.backfills").value("status") == "done"
        }
        final.child.signal(SIGTERM)
        #expect(final.waitForExit() == 0)
        let log = try setup.db.execute("""
            SELECT count(*) AS n, count(DISTINCT key) AS keys FROM idempotency_log WHERE key LIKE 'dual_write:backfill:1:%'
            """)
        #expect(log.value("n") == "20000" && log.value("keys") == "20000")
        let row = try setup.db.execute("SELECT rows_done, chunks_done FROM changerelay.backfills")
        #expect(row.value("rows_done") == "20000" && row.value("chunks_done") == "101")
        let report = try Self.driftReport(setup)
        #expect(report["rows_checked"] == .number("20000") && report["rows_drifted"] == .number("0"), "\(report)")
    }

    /// Conversation checks treat a backfilled row as an INSERT: one call and one queued row per
    /// eligible conversation, the skip rules applied, `--where` narrowing; a second backfill of
    /// the same rows is another backfill (new keys), and the same one is never handled twice.
    @Test func aConversationChecksBackfillChecksEachEligibleConversationOnce() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            INSERT INTO user_conversations (id, clerk_id, agent_id, elevenlabs_conversation_id, status)
            SELECT g, 'clerk ' || g, 'agent', CASE WHEN g % 5 = 0 THEN NULL ELSE 'el_' || g END,
                   CASE WHEN g % 7 = 0 THEN 'processed' ELSE 'unknown' END
            FROM generate_series(1, 300) g;
            """)
        try Self.putBehindTheSlot(setup.db)
        let eligible = try DualWriteTests.count(setup.db, """
            SELECT count(*) AS n FROM user_conversations WHERE elevenlabs_conversation_id IS NOT NULL AND status <> 'processed'
            """)
        let environment = ConversationChecksTests.environment(setup)
        let run = try Background(["run"], environment: environment)
        let narrowed = try Self.backfill(setup, environment: environment,
                                         ["--table", "user_conversations", "--where", "id <= 100", "--chunk-size", "30"])
        #expect(narrowed.status == 0, "\(narrowed.stderr)")
        let eligibleNarrowed = try DualWriteTests.count(setup.db, """
            SELECT count(*) AS n FROM user_conversations
            WHERE elevenlabs_conversation_id IS NOT NULL AND status <> 'processed' AND id <= 100
            """)
        try RunPipelineTests.waitFor("the narrowed checks") { Set(setup.receiver.requests.map(\.bodyText)).count >= eligibleNarrowed }
        let all = try Self.backfill(setup, environment: environment, ["--table", "user_conversations", "--chunk-size", "64"])
        #expect(all.status == 0, "\(all.stderr)")
        try RunPipelineTests.waitFor("every check") {
            try DualWriteTests.count(setup.db, "SELECT count(*) AS n FROM trigger_execution_logs WHERE attempt > 0")
                >= eligibleNarrowed + eligible
        }
        try Self.waitForStreamToCatchUp(setup.db)
        let keys = setup.receiver.requests.compactMap { $0.header("Idempotency-Key") }
        #expect(keys.count == eligibleNarrowed + eligible && Set(keys).count == keys.count,
                "a check was sent twice: \(keys.filter { !$0.contains(":backfill:") }.prefix(5))")
        #expect(keys.filter { $0.hasPrefix("conversation_checks:backfill:1:public.user_conversations:id=") }.count == eligibleNarrowed)
        #expect(keys.filter { $0.hasPrefix("conversation_checks:backfill:2:public.user_conversations:id=") }.count == eligible)
        #expect(try DualWriteTests.count(setup.db, """
            SELECT count(*) AS n FROM trigger_execution_logs WHERE trigger_name = 'check_conversations_trigger' AND status = 'queued'
            """) == eligibleNarrowed + eligible)
        let details = try setup.db.execute("""
            SELECT DISTINCT details->>'operation' AS operation FROM trigger_execution_logs WHERE status = 'queued'
            """)
        #expect(details.rows.map { $0[0] } == ["read"])
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// `--detach`, `status` and `cancel`, with no service running to pick the request up.
    @Test func detachStatusAndCancelWorkWithoutAService() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // A `--where` over lines, with a tab: one record is still one line of fields (escaped as COPY does).
        let detached = try Self.backfill(setup, ["--table", "items", "--where", "id > 10\n\tAND v <> '\\'", "--detach"])
        #expect(detached.status == 0 && detached.stdout.contains("backfill 1 requested: public.items where id > 10"))
        let status = try Self.backfill(setup, ["status"])
        #expect(status.status == 0)
        let lines = status.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(status.stdout)")
        #expect(lines.first?.hasPrefix("id\ttable\tstatus\trows") == true)
        #expect(lines.dropFirst().first?.hasPrefix("1\tpublic.items where id > 10\\n\\tAND v <> '\\\\'\tpending\t0\t") == true,
                "\(status.stdout)")
        let cancelled = try Self.backfill(setup, ["cancel", "1"])
        #expect(cancelled.status == 0 && cancelled.stdout.contains("backfill 1 cancelled"))
        let again = try Self.backfill(setup, ["cancel", "1"])
        #expect(again.status != 0 && again.stderr.contains("backfill 1 is cancelled already"))
        let unknown = try Self.backfill(setup, ["cancel", "99"])
        #expect(unknown.status != 0 && unknown.stderr.contains("there is no backfill 99"))
        // Following a request that ends cancelled exits non-zero.
        let follower = try Background(["backfill", "--table", "items"], environment: setup.environment)
        try follower.waitFor("the request") { $0.contains("backfill 2 requested") }
        #expect(try Self.backfill(setup, ["cancel", "2"]).status == 0)
        #expect(follower.waitForExit() == 1)
        #expect(follower.stderr.contains("backfill 2: cancelled after 0 rows"), "\(follower.stderr)")
    }

    /// A long transaction that never touched the table (here, on another table; as well in
    /// another database) does not hold the backfill up: only the table's writers can commit
    /// before a low watermark and still be invisible to the chunk's snapshot.
    @Test func aLongTransactionElsewhereDoesNotHoldTheBackfillUp() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("INSERT INTO items SELECT g, 'existing ' || g FROM generate_series(1, 200) g; CREATE TABLE elsewhere (v int)")
        try Self.putBehindTheSlot(setup.db)
        let run = try Background(["run"], environment: setup.environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let holder = try setup.cluster.connect()
        try holder.execute("BEGIN; INSERT INTO elsewhere VALUES (1)")
        let follower = try Background(["backfill", "--table", "items", "--chunk-size", "20"], environment: setup.environment)
        #expect(follower.waitForExit(timeout: .seconds(60)) == 0, "\(follower.stderr)")
        #expect(try setup.db.execute("SELECT status FROM changerelay.backfills").value("status") == "done")
        try holder.execute("COMMIT")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// The live stream keeps flowing while a large backfill runs: a change committed
    /// mid-backfill is delivered before the backfill ends, and backfilled rows reach the echo
    /// handler as `read` changes with keys named by their rows.
    @Test func liveChangesAreDeliveredWhileALargeBackfillRuns() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            INSERT INTO items SELECT g, 'existing ' || g FROM generate_series(1, 5000) g;
            """)
        try Self.putBehindTheSlot(setup.db)
        let run = try Background(["run"], environment: setup.environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let requested = try Self.backfill(setup, ["--table", "items", "--chunk-size", "50", "--detach"])
        #expect(requested.status == 0, "\(requested.stderr)")
        try RunPipelineTests.waitFor("the backfill to start") {
            try DualWriteTests.count(setup.db, "SELECT rows_done AS n FROM changerelay.backfills") > 0
        }
        try setup.db.execute("INSERT INTO items VALUES (100000, 'live')")
        try RunPipelineTests.waitFor("the live change") {
            setup.receiver.requests.contains { $0.bodyText.contains("\"live\"") }
        }
        #expect(try setup.db.execute("SELECT status FROM changerelay.backfills").value("status") == "running",
                "the live change waited for the backfill")
        try RunPipelineTests.waitFor("the backfill to finish", timeout: .seconds(300)) {
            try setup.db.execute("SELECT status FROM changerelay.backfills").value("status") == "done"
        }
        // The live row, inserted after the backfill started and past its highest key then, is
        // the stream's alone: it is not read again.
        try RunPipelineTests.waitFor("every row") { setup.receiver.requestCount >= 5_001 }
        let reads = setup.receiver.requests.filter { $0.bodyText.contains("\"op\":\"read\"") }
        #expect(reads.count == 5_000)
        #expect(reads.first?.header("Idempotency-Key")?.hasPrefix("echo:backfill:1:public.items:id=") == true)
        #expect(Set(reads.compactMap { $0.header("Idempotency-Key") }).count == 5_000)
        #expect(!reads.contains { $0.bodyText.contains(#""v":"live""#) })
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// Key values holding the key's own separators, and a column whose name holds a comma:
    /// each row is handed on once under a key of its own, with every published column.
    /// Joined unescaped, the first two rows' keys were one, and the batch holding both failed
    /// on the deliveries' unique key every time it was read again.
    @Test func rowsWhoseKeyValuesHoldTheKeysSeparatorsAreEachHandledOnce() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_HANDLERS_ECHO_TABLES": "public.pairs"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute(#"""
            CREATE TABLE pairs (a text, b text, "c,d" text, PRIMARY KEY (a, b));
            ALTER PUBLICATION changerelay_pub ADD TABLE pairs;
            INSERT INTO pairs VALUES ('x,b=y', 'z', 'one'), ('x', 'y,b=z', 'two'), ('x', 'y', 'three'), ('x', '\y', 'four');
            """#)
        try Self.putBehindTheSlot(setup.db)
        let run = try Background(["run"], environment: setup.environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let backfill = try Self.backfill(setup, ["--table", "pairs", "--chunk-size", "10"])
        #expect(backfill.status == 0, "\(backfill.stderr) \(run.stderr.suffix(2000))")
        try RunPipelineTests.waitFor("four reads") { setup.receiver.requestCount >= 4 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let reads = setup.receiver.requests.filter { $0.bodyText.contains("\"op\":\"read\"") }
        #expect(Set(reads.compactMap { $0.header("Idempotency-Key") }).count == 4, "\(reads.map(\.bodyText))")
        for value in ["one", "two", "three", "four"] {
            #expect(reads.filter { $0.bodyText.contains(#""c,d":"\#(value)""#) }.count == 1, "\(reads.map(\.bodyText))")
        }
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "4")
    }

    /// A chunk whose `--where` is slow is cancelled when the service is asked to stop, rather
    /// than holding the stop up until it ends (a kubelet kills a pod 30 s after its SIGTERM);
    /// the backfill is not failed, and the next start reads the chunk again. 30 rows at 2 s
    /// each: a minute for the one chunk. The chunk's own query is waited for: the highest
    /// key's runs the same `--where` first, ordered DESC.
    @Test func aStopCancelsTheChunkBeingReadAndTheNextStartReadsItAgain() throws {
        try Self.expectAStopCancels("the chunk's query", where: "v = 'new' OR pg_sleep(2) IS NOT NULL",
                                    running: "query LIKE '%pg_sleep(2)%' AND query NOT LIKE '%DESC LIMIT 1'", bound: true)
    }

    /// The highest key is read under the request's `--where` too, and may scan as long as a
    /// chunk (a selective condition over a large table): a stop cancels it the same way, the
    /// request stays running without a bound, and the next start reads the bound again.
    @Test func aStopCancelsTheHighestKeyBeingRead() throws {
        try Self.expectAStopCancels("the highest key's query", where: "v = 'new' OR pg_sleep(600) IS NOT NULL",
                                    running: "query LIKE '%pg_sleep(600)%DESC LIMIT 1'", bound: false)
    }

    /// Stops `run` while the query `running` matches is active, and expects a prompt exit
    /// with the request still running (`bound`: its high key taken); then, the rows made
    /// fast, the next start ends the same request with all 30 rows.
    static func expectAStopCancels(_ what: String, where condition: String, running: String, bound: Bool) throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("INSERT INTO items SELECT g, 'old' FROM generate_series(1, 30) g")
        try Self.putBehindTheSlot(setup.db)
        let run = try Background(["run"], environment: setup.environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let requested = try Self.backfill(setup, ["--table", "items", "--chunk-size", "100", "--detach", "--where", condition])
        #expect(requested.status == 0, "\(requested.stderr)")
        try RunPipelineTests.waitFor("\(what) to run") {
            try DualWriteTests.count(setup.db, """
                SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND \(running) AND pid <> pg_backend_pid()
                """) == 1
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(15)) == 0, "\(run.stderr.suffix(2000))")
        let entry = try setup.db.execute("SELECT status, high_key IS NOT NULL AS bound FROM changerelay.backfills WHERE id = 1")
        #expect(entry.value("status") == "running")
        #expect(entry.value("bound") == (bound ? "t" : "f"))
        try setup.db.execute("UPDATE items SET v = 'new'")
        let again = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("the backfill done") {
            try setup.db.execute("SELECT status FROM changerelay.backfills WHERE id = 1").value("status") == "done"
        }
        #expect(try setup.db.execute("SELECT rows_done FROM changerelay.backfills WHERE id = 1").value("rows_done") == "30")
        again.child.signal(SIGTERM)
        #expect(again.waitForExit() == 0, "\(again.stderr.suffix(2000))")
    }

    /// A backfilled row renders a domain as its base type, as the stream renders the same
    /// table's live rows: a domain over int is a number in both.
    @Test func aDomainRendersAlikeInBackfilledAndLiveRows() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE DOMAIN positive AS int CHECK (VALUE > 0); CREATE DOMAIN small AS positive CHECK (VALUE < 100);
            CREATE TABLE counted (id positive PRIMARY KEY, n small, f boolean);
            ALTER PUBLICATION changerelay_pub ADD TABLE counted;
            INSERT INTO counted VALUES (1, 7, true);
            """)
        try Self.putBehindTheSlot(setup.db)
        var environment = setup.environment
        environment["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "public.counted"
        let run = try Background(["run"], environment: environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let backfilled = try Self.backfill(setup, environment: environment, ["--table", "counted"])
        #expect(backfilled.status == 0, "\(backfilled.stderr)")
        try setup.db.execute("INSERT INTO counted VALUES (2, 8, false)")
        try RunPipelineTests.waitFor("both rows sent") { setup.receiver.requestCount >= 2 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let bodies = setup.receiver.requests.map(\.bodyText)
        #expect(bodies.contains { $0.contains(#""op":"read""#) && $0.contains(#""n":7"#) && $0.contains(#""id":1"#) }, "\(bodies)")
        #expect(bodies.contains { $0.contains(#""op":"insert""#) && $0.contains(#""n":8"#) && $0.contains(#""id":2"#) }, "\(bodies)")
    }

    /// A backfill reads the rows that exist when it starts, up to the highest key then: a row
    /// inserted after that reaches the handler once, through the stream, not again as a
    /// `read` (a second conversation check, in a review), and a table written faster than it
    /// is read still ends. The insert is held open across the start by a transaction the
    /// first chunk waits for, so it commits after the bound was taken and before any chunk.
    @Test func rowsInsertedAfterTheBackfillStartedAreTheStreamsAlone() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("INSERT INTO items SELECT g, 'old' FROM generate_series(1, 50) g")
        try Self.putBehindTheSlot(setup.db)
        let run = try Background(["run"], environment: setup.environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let writer = try setup.cluster.connect()
        try writer.execute("BEGIN; INSERT INTO items VALUES (1000, 'new')")
        let requested = try Self.backfill(setup, ["--table", "items", "--chunk-size", "10", "--detach"])
        #expect(requested.status == 0, "\(requested.stderr)")
        try RunPipelineTests.waitFor("the backfill's bound") {
            try setup.db.execute("SELECT high_key::text AS k FROM changerelay.backfills WHERE id = 1").value("k") == "{50}"
        }
        try writer.execute("COMMIT")
        try RunPipelineTests.waitFor("the backfill done") {
            try setup.db.execute("SELECT status FROM changerelay.backfills WHERE id = 1").value("status") == "done"
        }
        try Self.waitForStreamToCatchUp(setup.db)
        try RunPipelineTests.waitFor("every delivery sent") { setup.receiver.requestCount >= 51 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let new = setup.receiver.requests.filter { $0.bodyText.contains(#""v":"new""#) }
        #expect(new.count == 1 && new.first?.bodyText.contains("\"op\":\"insert\"") == true, "\(new.map(\.bodyText))")
        #expect(setup.receiver.requests.filter { $0.bodyText.contains("\"op\":\"read\"") }.count == 50)
        #expect(try setup.db.execute("SELECT rows_done FROM changerelay.backfills WHERE id = 1").value("rows_done") == "50")
    }

    /// A table empty of matching rows when the backfill starts reads nothing, and ends.
    /// A `--where` that changes a setting that decides how values are written (set_config of
    /// TimeZone, or of client_encoding) fails its backfill, naming the setting, rather than send its chunk written
    /// otherwise than the stream writes it (keys that match no change); and it does not change
    /// how a later backfill's rows are written: each chunk starts from the session's own settings.
    @Test func aWhereThatSetsTheSessionsTimeZoneFailsAndDoesNotLeakIntoLaterChunks() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_HANDLERS_ECHO_TABLES": "public.items,public.stamps"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE TABLE stamps (at timestamptz PRIMARY KEY);
            ALTER PUBLICATION changerelay_pub ADD TABLE stamps;
            INSERT INTO items VALUES (1, 'one');
            INSERT INTO stamps VALUES ('2024-01-01 00:00+00');
            """)
        try Self.putBehindTheSlot(setup.db)
        let run = try Background(["run"], environment: setup.environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let none = try Self.backfill(setup, ["--table", "items", "--where", "id > 100"])
        #expect(none.status == 0, "\(none.stderr)")
        let zoned = try Self.backfill(setup, ["--table", "items", "--where", "set_config('TimeZone', 'Asia/Kolkata', false) IS NOT NULL"])
        #expect(zoned.status == 1 && zoned.stderr.contains("changed TimeZone (set_config)"), "\(zoned.stderr)")
        // The text of every value arrives in the client encoding: read as UTF-8, LATIN1's bytes
        // gave keys and bodies with replacement characters.
        let encoded = try Self.backfill(setup, ["--table", "items", "--where",
                                                "set_config('client_encoding', 'LATIN1', false) IS NOT NULL"])
        #expect(encoded.status == 1 && encoded.stderr.contains("changed client_encoding (set_config)"), "\(encoded.stderr)")
        let stamps = try Self.backfill(setup, ["--table", "stamps"])
        #expect(stamps.status == 0, "\(stamps.stderr)")
        try RunPipelineTests.waitFor("the last backfill done") {
            try setup.db.execute("SELECT status FROM changerelay.backfills WHERE id = 4").value("status") == "done"
        }
        try RunPipelineTests.waitFor("its read sent") { setup.receiver.requestCount >= 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT rows_done::text || ':' || status AS s FROM changerelay.backfills WHERE id = 1")
            .value("s") == "0:done")
        let zonedRow = try setup.db.execute("SELECT status, error FROM changerelay.backfills WHERE id = 2")
        #expect(zonedRow.value("status") == "failed" && zonedRow.value("error")?.contains("changed TimeZone (set_config)") == true,
                "\(zonedRow.rows)")
        #expect(setup.receiver.requests.allSatisfy { !$0.bodyText.contains("\"table\":\"items\"") }, "the changed chunk was sent")
        let stamp = setup.receiver.requests.first { $0.bodyText.contains("\"table\":\"stamps\"") }
        #expect(stamp?.bodyText.contains("2024-01-01 00:00:00+00") == true, "\(stamp?.bodyText ?? "none")")
    }
}
