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
            SELECT pg_replication_slot_advance('changerelay', pg_current_wal_lsn());
            """)
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
        #expect(result.stderr.contains("backfill 1 done: 20000 rows of public.habit_tracker"), "\(result.stderr)")
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
            """)
        let refusals: [([String], String)] = [
            (["--table", "keyless"], "public.keyless has no primary key"),
            (["--table", "unpublished"], "public.unpublished is not in publication changerelay_pub"),
            (["--table", "no_such_table"], "no table no_such_table on the source"),
            (["--table", "a.b.c.d"], "no table a.b.c.d on the source"),
            (["--table", "\"open"], "no table \"open on the source"),
            (["--table", "nothing_identity"], "replica identity (NOTHING)"),
            (["--table", "items", "--where", "no_such_column > 1"], "--where for public.items is refused by the server"),
            (["--table", "items", "--where", "true) OR (true"], "--where for public.items has a parenthesis"),
            (["--table", "items", "--where", "id > 0; DROP TABLE items"], "--where for public.items contains a semicolon"),
            (["--table", "items", "--where", "v"], "--where for public.items is refused by the server"),
            (["--table", "items", "--chunk-size", "0"], "--chunk-size must be between 1 and 1000000"),
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
    }
}
