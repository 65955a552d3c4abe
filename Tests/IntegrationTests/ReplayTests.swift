import Core
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Testing

/// `changerelay replay` against a real cluster, a real receiver and the real binary: a
/// retained slot (`retained`, created before the writes) replayed over ranges the live
/// service handled, did not handle, or handled with fewer handlers.
@Suite struct ReplayTests {
    static let slot = "retained"

    /// `RunPipelineTests.prepare`'s cluster (echo on `items`) with a second published table,
    /// `extra`, and the retained slot, created before any row is written.
    static func prepare(plugin: String = "pgoutput", extra: [String: String] = [:]) throws -> RunPipelineTests.Setup {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin].merging(extra) { $1 })
        try setup.db.execute("CREATE TABLE extra (id int PRIMARY KEY, v text); ALTER PUBLICATION changerelay_pub ADD TABLE extra")
        try setup.db.execute("SELECT pg_create_logical_replication_slot('\(slot)', '\(plugin)')")
        return setup
    }

    static func replay(_ setup: RunPipelineTests.Setup, _ arguments: [String] = [],
                       environment: [String: String] = [:]) throws -> CommandResult {
        try runChangeRelay(["replay", "--slot", slot] + arguments,
                           environment: setup.environment.merging(environment) { $1 }, timeout: .seconds(180))
    }

    /// The per-handler lines of a report: name → (new, planned already).
    static func counts(_ result: CommandResult) -> [String: (new: Int, planned: Int)] {
        var counts: [String: (Int, Int)] = [:]
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: "\t")
            guard fields.count == 3, let new = Int(fields[1]), let planned = Int(fields[2]) else { continue }
            counts[String(fields[0])] = (new, planned)
        }
        return counts
    }

    static func count(_ db: PostgresConnection, _ sql: String) throws -> Int {
        Int(try db.execute(sql).value("n") ?? "") ?? -1
    }

    static func insertItems(_ db: PostgresConnection, table: String = "items", from first: Int, transactions: Int,
                            rows: Int) throws {
        for transaction in 0..<transactions {
            let start = first + transaction * rows
            try db.execute("INSERT INTO \(table) SELECT g, 'v' || g FROM generate_series(\(start), \(start + rows - 1)) g")
        }
    }

    /// Moves the service's slot past everything written so far, as a live service that read
    /// it with handlers for other tables would have: the replay may then cover it all. The
    /// test clusters commit asynchronously, and a slot moves only as far as WAL is flushed:
    /// the WAL writer flushes what was inserted within its delay.
    static func liveServiceReadEverything(_ db: PostgresConnection) throws {
        let target = try db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try RunPipelineTests.waitFor("the WAL flushed") {
            try db.query("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS flushed", [target]).value("flushed") == "t"
        }
        try db.query("SELECT pg_replication_slot_advance('changerelay', $1::pg_lsn)", [target])
    }

    static func confirmedFlush(_ db: PostgresConnection, _ slot: String = slot) throws -> String {
        try db.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slot])
            .value("lsn") ?? ""
    }

    /// Every planned delivery once: as many rows as keys, and `expected` of them.
    static func expectPlannedOnce(_ db: PostgresConnection, _ expected: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let counts = try db.execute("SELECT count(*) AS rows, count(DISTINCT idempotency_key) AS keys FROM changerelay.deliveries")
        #expect(counts.value("rows") == String(expected), sourceLocation: sourceLocation)
        #expect(counts.value("keys") == String(expected), sourceLocation: sourceLocation)
    }

    /// The live service handled `items` and conversation checks; a replay with the echo
    /// handler switched on for `extra` as well plans only `extra`'s changes, says how many it
    /// left out, writes no second queued log row, and nothing is sent twice.
    @Test func aRangeHandledLiveIsLeftOutAndATableSwitchedOnLaterIsPlanned() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var live = ConversationChecksTests.environment(setup)
        live["CHANGERELAY_HANDLERS_ECHO_URL"] = setup.receiver.url(path: "/echo")
        live["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "public.items"
        let run = try Background(["run"], environment: live)
        try Self.insertItems(setup.db, from: 1, transactions: 10, rows: 10)
        try Self.insertItems(setup.db, table: "extra", from: 1, transactions: 2, rows: 10)
        for index in 1...5 {
            try setup.db.execute("INSERT INTO user_conversations (clerk_id, elevenlabs_conversation_id) VALUES ('c', 'el\(index)')")
        }
        try RunPipelineTests.waitFor("105 deliveries") { RunPipelineTests.distinctKeys(setup.receiver).count >= 105 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")

        var replayed = live
        replayed["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "public.items,public.extra"
        let replay = try Self.replay(setup, environment: replayed)
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr.suffix(3000))")
        let counts = Self.counts(replay)
        #expect(counts["echo"]?.new == 20 && counts["echo"]?.planned == 100, "\(replay.stdout)")
        #expect(counts["conversation_checks"]?.new == 0 && counts["conversation_checks"]?.planned == 5, "\(replay.stdout)")
        #expect(replay.stdout.contains("left out automations: "))
        #expect(replay.stdout.contains("left out message_buffering: "))
        #expect(replay.stderr.contains("20 effects planned, 105 planned already and left out"), "\(replay.stderr.suffix(2000))")
        #expect(try Self.count(setup.db, """
            SELECT count(*) AS n FROM trigger_execution_logs WHERE trigger_name = 'check_conversations_trigger'
            """) == 5)
        try Self.expectPlannedOnce(setup.db, 125)
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.checkpoints WHERE slot_name = '\(Self.slot)'") == 1)

        // The live service sends the replay's deliveries, and nothing again: one more change is the proof it ran.
        let again = try Background(["run"], environment: live)
        try setup.db.execute("INSERT INTO items VALUES (1000, 'after')")
        try RunPipelineTests.waitFor("the replayed and the new deliveries") {
            RunPipelineTests.distinctKeys(setup.receiver).count >= 126
        }
        again.child.signal(SIGTERM)
        #expect(again.waitForExit() == 0, "\(again.stderr.suffix(2000))")
        #expect(setup.receiver.requestCount == 126)
        #expect(RunPipelineTests.distinctKeys(setup.receiver).count == 126)
    }

    /// `--dry-run` counts what the replay then plans, and writes nothing: no delivery, no
    /// checkpoint row for the slot, and the slot's confirmed position stays.
    @Test func aDryRunCountsWhatTheReplayPlansAndWritesNothing() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try Self.insertItems(setup.db, from: 1, transactions: 5, rows: 10)
        try Self.insertItems(setup.db, table: "extra", from: 1, transactions: 1, rows: 7)
        try RunPipelineTests.waitFor("50 deliveries") { RunPipelineTests.distinctKeys(setup.receiver).count >= 50 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        // The live service may stop before it confirms the `extra` transaction, which none of
        // its handlers reads; the replay's range ends at the live position, so it must be past it.
        try Self.liveServiceReadEverything(setup.db)
        let before = try Self.confirmedFlush(setup.db)
        let environment = ["CHANGERELAY_HANDLERS_ECHO_TABLES": "public.items,public.extra"]

        let dry = try Self.replay(setup, ["--dry-run"], environment: environment)
        #expect(dry.status == 0, "\(dry.stdout)\(dry.stderr.suffix(3000))")
        #expect(dry.stdout.contains("handler\twould_be_new\talready_planned"))
        #expect(Self.counts(dry)["echo"]?.new == 7 && Self.counts(dry)["echo"]?.planned == 50, "\(dry.stdout)")
        #expect(dry.stderr.contains("nothing was written"))
        try Self.expectPlannedOnce(setup.db, 50)
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.checkpoints WHERE slot_name = '\(Self.slot)'") == 0)
        #expect(try Self.confirmedFlush(setup.db) == before)

        let replay = try Self.replay(setup, environment: environment)
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr.suffix(3000))")
        #expect(Self.counts(replay)["echo"]?.new == 7 && Self.counts(replay)["echo"]?.planned == 50, "\(replay.stdout)")
        try Self.expectPlannedOnce(setup.db, 57)
        #expect(try Self.confirmedFlush(setup.db) != before)
    }

    /// `--to-lsn` stops at the last transaction ending at or before it; a second replay
    /// continues from there to the end; together they plan every change once.
    @Test func toLSNStopsThereAndASecondReplayContinues() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.insertItems(setup.db, from: 1, transactions: 5, rows: 10)
        // Past the fifth commit (inserted, maybe not yet written: the cluster commits asynchronously), before the sixth.
        let middle = try setup.db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try Self.insertItems(setup.db, from: 51, transactions: 5, rows: 10)
        try Self.liveServiceReadEverything(setup.db)

        let first = try Self.replay(setup, ["--to-lsn", middle])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr.suffix(3000))")
        #expect(first.stdout.contains("to \(middle), inclusive (--to-lsn)"), "\(first.stdout)")
        // Not a terminal: plain progress lines (the first at once), then the summary.
        #expect(first.stderr.contains(" of \(middle), 1 transactions, "), "\(first.stderr.suffix(2000))")
        #expect(first.stderr.contains("replay retained: 50 effects planned, 0 planned already and left out; slot retained is at "))
        #expect(Self.counts(first)["echo"]?.new == 50, "\(first.stdout)")
        try Self.expectPlannedOnce(setup.db, 50)
        #expect(try Self.count(setup.db, """
            SELECT count(*) AS n FROM changerelay.deliveries WHERE (body::jsonb -> 'new' ->> 'id')::int > 50
            """) == 0)

        let second = try Self.replay(setup)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr.suffix(3000))")
        #expect(Self.counts(second)["echo"]?.new == 50 && Self.counts(second)["echo"]?.planned == 0, "\(second.stdout)")
        try Self.expectPlannedOnce(setup.db, 100)
        #expect(try Self.count(setup.db, "SELECT count(DISTINCT (body::jsonb -> 'new' ->> 'id')) AS n FROM changerelay.deliveries")
            == 100)

        let third = try Self.replay(setup)
        #expect(third.status == 0)
        #expect(third.stdout.contains("nothing to replay"), "\(third.stdout)")
        try Self.expectPlannedOnce(setup.db, 100)
    }

    /// The live service has read only part of what the retained slot holds: the replay stops
    /// at the live service's position, even with a --to-lsn past it, and says why; the live
    /// service then plans the rest itself, with no key taken before it.
    @Test func theEndIsCappedAtTheLiveServicesPosition() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try Self.insertItems(setup.db, from: 1, transactions: 5, rows: 10)
        try RunPipelineTests.waitFor("50 deliveries") { RunPipelineTests.distinctKeys(setup.receiver).count >= 50 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        try Self.insertItems(setup.db, from: 51, transactions: 5, rows: 10)

        let replay = try Self.replay(setup, ["--to-lsn", "FFFF/0"])
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr.suffix(3000))")
        #expect(replay.stdout.contains("capped at the live service's position (slot changerelay) (--to-lsn FFFF/0 lies past it)"),
                "\(replay.stdout)")
        #expect(Self.counts(replay)["echo"]?.new == 0 && Self.counts(replay)["echo"]?.planned == 50, "\(replay.stdout)")
        try Self.expectPlannedOnce(setup.db, 50)

        let again = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("the rest planned and sent by the live service") {
            RunPipelineTests.distinctKeys(setup.receiver).count >= 100
        }
        again.child.signal(SIGTERM)
        #expect(again.waitForExit() == 0, "\(again.stderr.suffix(2000))")
        #expect(!again.stderr.contains("duplicate key"))
        try Self.expectPlannedOnce(setup.db, 100)
    }

    /// kill -9 at both crash points of the batch and at random instants while a backlog is
    /// replayed, then a replay to the end: every change planned once, none missing.
    @Test func killNineMidReplayThenAgainPlansEveryEffectOnce() throws {
        let setup = try Self.prepare(extra: ["CHANGERELAY_PIPELINE_BATCH_MAX_CHANGES": "500"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let total = 20_000
        try Self.insertItems(setup.db, from: 1, transactions: 200, rows: 100)
        try Self.liveServiceReadEverything(setup.db)
        let arguments = ["replay", "--slot", Self.slot]
        for point in ["batch-copied", "checkpoint-committed"] {
            let replay = try Background(arguments, environment: setup.environment.merging(["CHANGERELAY_CRASH_POINT": point]) { $1 })
            try RunPipelineTests.waitFor("the crash point \(point)") { replay.stderr.contains("crash point \(point) reached") }
            replay.child.signal(SIGKILL)
            _ = replay.waitForExit()
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3 {
            let planned = try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.deliveries")
            let replay = try Background(arguments, environment: setup.environment)
            // Each kill lands while this run plans, after its first batch of its own.
            try RunPipelineTests.waitFor("the replay to commit a batch") {
                try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.deliveries") > planned || replay.child.poll() != nil
            }
            usleep(UInt32.random(in: 0...150_000, using: &generator))
            replay.child.signal(SIGKILL)
            _ = replay.waitForExit()
        }
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.deliveries") < total,
                "the kills should land before the end")
        let final = try Self.replay(setup)
        #expect(final.status == 0, "\(final.stdout)\(final.stderr.suffix(3000))")
        try Self.expectPlannedOnce(setup.db, total)
        #expect(try Self.count(setup.db, "SELECT count(DISTINCT (body::jsonb -> 'new' ->> 'id')) AS n FROM changerelay.deliveries")
            == total)
    }

    /// Each refusal exits non-zero naming what is wrong.
    @Test func refusalsNameTheSlotOrHandler() throws {
        let setup = try Self.prepare(extra: ["CHANGERELAY_FUNCTIONS_BASE_URL": "http://127.0.0.1:9/functions/v1",
                                             "CHANGERELAY_SERVICE_KEY": "key"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            SELECT pg_create_logical_replication_slot('other_plugin', 'wal2json');
            SELECT pg_create_physical_replication_slot('physical');
            """)
        func refused(_ arguments: [String], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try runChangeRelay(["replay"] + arguments, environment: setup.environment)
            #expect(result.status != 0, sourceLocation: sourceLocation)
            #expect(result.stderr.contains(message), "\(result.stderr.suffix(2000))", sourceLocation: sourceLocation)
            #expect(!result.stdout.contains("handler\t"), sourceLocation: sourceLocation)
        }
        try refused(["--slot", "changerelay"], "slot changerelay is the service's own (source.slot)")
        try refused(["--slot", "nope"], "slot 'nope' does not exist")
        try refused(["--slot", "other_plugin"], "slot other_plugin uses wal2json, but source.plugin is pgoutput")
        try refused(["--slot", "physical"], "slot physical is a physical slot")
        try refused(["--slot", Self.slot, "--handlers", "echo,bogus"], "unknown handler 'bogus' in --handlers")
        try refused(["--slot", Self.slot, "--handlers", "automations"], "replay cannot run the handler automations: ")
        try refused(["--slot", Self.slot, "--handlers", "dual_write"], "the handler dual_write is not configured")
        try refused(["--slot", Self.slot, "--to-lsn", "0/zz"], "--to-lsn '0/zz' is not an LSN")
        try refused(["--slot", "BAD-NAME"], "'BAD-NAME' is not a slot name")

        let reader = try Background(["tail", "--slot", Self.slot], environment: setup.environment)
        try RunPipelineTests.waitFor("tail to hold the slot") {
            try setup.db.execute("SELECT active FROM pg_replication_slots WHERE slot_name = '\(Self.slot)'").value("active") == "t"
        }
        try refused(["--slot", Self.slot], "slot \(Self.slot) is active (held by process ")
        reader.child.signal(SIGTERM)
        _ = reader.waitForExit()
    }

    /// The live service is found by `source.slot`. A replay whose configuration names no slot
    /// there (the service runs as `prod`, the command was run without its configuration) could
    /// not see it, ran to the WAL end, and planned keys the live service then failed to plan
    /// on every start: refused, unless a `--to-lsn` says where to end.
    @Test func aSourceSlotThatNamesNoSlotIsRefusedWithoutAnEnd() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            SELECT pg_drop_replication_slot('changerelay');
            SELECT pg_create_logical_replication_slot('prod', 'pgoutput')
            """)
        try Self.insertItems(setup.db, from: 1, transactions: 3, rows: 1)
        for dryRun in [[], ["--dry-run"]] {
            let refused = try Self.replay(setup, dryRun)
            #expect(refused.status != 0 && refused.stderr.contains("source.slot 'changerelay' names no slot on the source"),
                    "\(refused.stderr.suffix(2000))")
        }
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.deliveries") == 0)
        // The test cluster commits asynchronously: the slot's reader sees only flushed WAL.
        let end = try setup.db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try RunPipelineTests.waitFor("the WAL flushed") {
            try setup.db.query("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS flushed", [end]).value("flushed") == "t"
        }
        let bounded = try Self.replay(setup, ["--to-lsn", end])
        #expect(bounded.status == 0, "\(bounded.stderr.suffix(2000))")
        #expect(Self.counts(bounded)["echo"]?.new == 3, "\(bounded.stdout)")
    }

    /// A live service's slot is known by its checkpoint (032), not only by `source.slot`: a
    /// replay whose configuration names another slot (a second service's, or none given) read
    /// the live one, moved it, and the service then started past changes it never planned.
    /// A replay's own checkpoint says it is a replay's, and a second replay continues it; a
    /// database without 032 is refused by name.
    @Test func aSlotWhoseCheckpointTheLiveServiceWroteIsRefused() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items VALUES (1, 'live')")
        try RunPipelineTests.waitFor("the live delivery") { setup.receiver.requestCount >= 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT written_by FROM changerelay.checkpoints WHERE slot_name = 'changerelay'")
            .value("written_by") == "run")
        try Self.insertItems(setup.db, from: 2, transactions: 2, rows: 1)
        try setup.db.execute("SELECT pg_create_logical_replication_slot('svcb', 'pgoutput')")
        var otherService = setup.environment
        otherService["CHANGERELAY_SOURCE_SLOT"] = "svcb"
        let refused = try runChangeRelay(["replay", "--slot", "changerelay"], environment: otherService)
        #expect(refused.status != 0 && refused.stderr.contains("slot changerelay is a live service's (changerelay run wrote its checkpoint)"),
                "\(refused.stderr.suffix(2000))")
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM changerelay.deliveries") == 1, "nothing planned")

        try Self.liveServiceReadEverything(setup.db)
        let replayed = try Self.replay(setup)
        #expect(replayed.status == 0, "\(replayed.stderr.suffix(2000))")
        #expect(try setup.db.query("SELECT written_by FROM changerelay.checkpoints WHERE slot_name = $1", [Self.slot])
            .value("written_by") == "replay")

        // A checkpoint from before 032 is stamped at the service's start, not at its first batch.
        try setup.db.execute("UPDATE changerelay.checkpoints SET written_by = NULL WHERE slot_name = 'changerelay'")
        let checkpoint = "SELECT lsn::text || ' ' || updated_at::text AS at FROM changerelay.checkpoints WHERE slot_name = 'changerelay'"
        let before = try setup.db.execute(checkpoint).value("at")
        let idle = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("the idle service to stamp its checkpoint") {
            try setup.db.execute("SELECT written_by FROM changerelay.checkpoints WHERE slot_name = 'changerelay'")
                .value("written_by") == "run"
        }
        #expect(try setup.db.execute(checkpoint).value("at") == before, "stamped, not written by a batch")
        idle.child.signal(SIGTERM)
        #expect(idle.waitForExit() == 0, "\(idle.stderr.suffix(2000))")

        try setup.db.execute(try String(contentsOfFile: repositoryRoot + "/sql/032_checkpoint_writers.rollback.sql", encoding: .utf8))
        for command in [["run"], ["replay", "--slot", Self.slot]] {
            let missing = try runChangeRelay(command, environment: setup.environment, timeout: .seconds(60))
            #expect(missing.status != 0 && missing.stderr.contains("sql/032_checkpoint_writers.sql"), "\(missing.stderr.suffix(2000))")
        }
    }

    /// A dual-write sync switched on after the changes: a replay in apply mode fills the new
    /// schema, and drift-check finds no drift.
    /// Off, or only logging or comparing while the changes went by: a replay in apply mode
    /// applies every one of them, and brings their `idempotency_log` rows up to date.
    @Test(arguments: ["off", "log", "shadow"])
    func aDualWriteSyncSwitchedOnLaterIsFilledByTheReplay(liveMode: String) throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var live = setup.environment
        live["CHANGERELAY_DUAL_WRITE_MODE"] = liveMode
        let run = try Background(["run"], environment: live)
        let db = setup.db
        let week = DualWriteTests.habits([("Read", DualWriteTests.week), ("Walk", DualWriteTests.week)])
        var ids: [String] = []
        for index in 0..<20 {
            ids.append(try DualWriteTests.insert(db, child: "Child \(index % 4)", start: "2026-11-\(10 + index % 3)", habits: week))
        }
        try db.execute("UPDATE habit_tracker SET habits = '[]' WHERE id = \(ids[0])")
        try db.execute("UPDATE habit_tracker SET child_name = 'Moved' WHERE id = \(ids[1])")
        try db.execute("DELETE FROM habit_tracker WHERE id = \(ids[2])")
        try db.execute("INSERT INTO items VALUES (1, 'last')")
        try RunPipelineTests.waitFor("the live service past the changes") { setup.receiver.requestCount >= 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(try DualWriteTests.driftCheck(setup).status == 1, "nothing synced yet")
        let logged = liveMode == "off" ? 0 : 23
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log") == logged)

        let replay = try Self.replay(setup, ["--handlers", "dual_write"], environment: ["CHANGERELAY_DUAL_WRITE_MODE": "apply"])
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr.suffix(3000))")
        #expect(Self.counts(replay)["dual_write"]?.new == 23 && Self.counts(replay)["dual_write"]?.planned == 0, "\(replay.stdout)")
        let drift = try DualWriteTests.driftCheck(setup)
        #expect(drift.status == 0, "\(drift.stdout)\(drift.stderr)")
        #expect(drift.stdout.contains("rows drifted: 0"))
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status = 'success'") == 23)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log") == 23)

    }

    /// A webhook endpoint added after the events: the replay plans them for it (today's
    /// configs), leaves the existing endpoint's out, writes one log row per delivery, and the
    /// live service sends only the new ones.
    @Test func aWebhookEndpointAddedLaterGetsTheHistory() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = WebhooksTests.environment(setup)
        try WebhooksTests.addConfig(setup, name: "first", events: ["chat.message.*"], path: "/first")
        let run = try Background(["run"], environment: environment)
        try WebhooksTests.chat(setup, messages: 3)
        // created and process for each message.
        try RunPipelineTests.waitFor("six events") { setup.receiver.requestCount >= 6 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        try WebhooksTests.addConfig(setup, name: "later", events: ["chat.message.created"], path: "/later")

        let replay = try Self.replay(setup, ["--handlers", "webhooks"], environment: environment)
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr.suffix(3000))")
        #expect(Self.counts(replay)["webhooks"]?.new == 3 && Self.counts(replay)["webhooks"]?.planned == 6, "\(replay.stdout)")
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM webhook_logs") == 9)

        let again = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the later endpoint's events") {
            setup.receiver.requests.filter { $0.path == "/later" }.count >= 3
        }
        again.child.signal(SIGTERM)
        #expect(again.waitForExit() == 0)
        #expect(setup.receiver.requests.filter { $0.path == "/first" }.count == 6)
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM webhook_logs WHERE completed_at IS NOT NULL") == 9)
        try Self.expectPlannedOnce(setup.db, 9)
    }

    /// Through wal2json: the stream's text messages and `pg_logical_slot_peek_changes` for
    /// the dry run, with the keys the live service gave.
    @Test func wal2jsonReplaysAndPeeksWithTheLiveKeys() throws {
        let setup = try Self.prepare(plugin: "wal2json")
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try Self.insertItems(setup.db, from: 1, transactions: 3, rows: 10)
        try Self.insertItems(setup.db, table: "extra", from: 1, transactions: 2, rows: 5)
        try RunPipelineTests.waitFor("30 deliveries") { RunPipelineTests.distinctKeys(setup.receiver).count >= 30 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        // As in the dry run's test: the live service may stop before it confirms the `extra`
        // transactions, which none of its handlers reads, and the replay ends at its position.
        try Self.liveServiceReadEverything(setup.db)
        let environment = ["CHANGERELAY_HANDLERS_ECHO_TABLES": "public.items,public.extra"]

        let dry = try Self.replay(setup, ["--dry-run"], environment: environment)
        #expect(dry.status == 0, "\(dry.stdout)\(dry.stderr.suffix(3000))")
        #expect(Self.counts(dry)["echo"]?.new == 10 && Self.counts(dry)["echo"]?.planned == 30, "\(dry.stdout)")
        let replay = try Self.replay(setup, environment: environment)
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr.suffix(3000))")
        #expect(Self.counts(replay)["echo"]?.new == 10 && Self.counts(replay)["echo"]?.planned == 30, "\(replay.stdout)")
        try Self.expectPlannedOnce(setup.db, 40)
    }
}
