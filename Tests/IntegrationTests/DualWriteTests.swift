import Core
import Decoding
import Foundation
import Replication
import Synchronization
import Testing

/// The dual-write sync of habit_tracker through `changerelay run`, checked by direct
/// queries and by `changerelay drift-check`, in each mode.
@Suite struct DualWriteTests {
    static let ada = "00000000-0000-0000-0000-00000000000a"
    static let bob = "00000000-0000-0000-0000-00000000000b"

    static func environment(_ setup: RunPipelineTests.Setup, mode: String, extra: [String: String] = [:]) -> [String: String] {
        var environment = setup.environment
        environment["CHANGERELAY_DUAL_WRITE_MODE"] = mode
        environment.merge(extra) { $1 }
        return environment
    }

    /// A `habits` array: each habit's name, and its 7 days (nil for null).
    static func habits(_ list: [(String, [String?])]) -> String {
        var writer = JSONWriter(capacity: 256)
        writer.beginArray()
        for (name, days) in list {
            writer.beginObject()
            writer.key("name")
            writer.string(name)
            writer.key("time_period")
            writer.string("morning")
            writer.key("times")
            writer.beginArray()
            for day in days { if let day { writer.string(day) } else { writer.null() } }
            writer.endArray()
            writer.endObject()
        }
        writer.endArray()
        return writer.string
    }

    static let week: [String?] = ["done", "partial", "missed", "", nil, "done", "missed"]

    @discardableResult
    static func insert(_ db: PostgresConnection, id: Int? = nil, user: String? = ada, child: String = "Ada",
                       start: String = "2026-11-23", habits: String) throws -> String {
        try db.query("""
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            VALUES (coalesce($1::bigint, nextval(pg_get_serial_sequence('habit_tracker', 'id'))), $2, $3::date,
                    'week', $4::jsonb, $5::uuid)
            RETURNING id::text
            """, [id.map(String.init), child, start, habits, user]).value("id") ?? ""
    }

    static func count(_ db: PostgresConnection, _ sql: String) throws -> Int {
        Int(try db.execute(sql).value("n") ?? "") ?? -1
    }

    static func waitForLogRows(_ db: PostgresConnection, _ rows: Int, timeout: Duration = .seconds(120)) throws {
        try RunPipelineTests.waitFor("\(rows) idempotency_log rows", timeout: timeout) {
            try count(db, "SELECT count(*) AS n FROM idempotency_log") >= rows
        }
    }

    /// Every row of the new schema as text, for "nothing was written".
    static func newSchema(_ db: PostgresConnection) throws -> String {
        try db.execute("""
            SELECT concat_ws(' | ',
                (SELECT string_agg(format('%s %s %s', id, user_id, name), ',' ORDER BY id) FROM children),
                (SELECT string_agg(format('%s %s %s %s', id, child_id, week_start_date, source_habit_tracker_id), ',' ORDER BY id) FROM weeks),
                (SELECT string_agg(format('%s %s %s %s', id, week_id, name, position), ',' ORDER BY id) FROM habits),
                (SELECT string_agg(format('%s %s %s %s', id, habit_id, record_date, status), ',' ORDER BY id) FROM habit_records)
            ) AS dump
            """).value("dump") ?? ""
    }

    static func driftCheck(_ setup: RunPipelineTests.Setup, _ arguments: [String] = []) throws -> CommandResult {
        try runChangeRelay(["drift-check"] + arguments, environment: setup.environment)
    }

    @Test func applyKeepsTheNewSchemaEqualToTheProjectionThroughEveryKindOfChange() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        let db = setup.db
        let main = try Self.insert(db, habits: Self.habits([("Brush teeth", Self.week), ("Read", Self.week), ("Walk", Self.week)]))
        let sibling = try Self.insert(db, start: "2026-11-30", habits: "[]")
        let moving = try Self.insert(db, child: "Bea", habits: Self.habits([("Zähne putzen 🪥", Self.week)]))
        let changingUser = try Self.insert(db, child: "Cy", habits: Self.habits([("Swim", Self.week)]))
        let many = try Self.insert(db, child: "Dee", habits: Self.habits((0..<50).map { ("habit \($0)", Self.week) }))
        let empty = try db.query("""
            INSERT INTO habit_tracker (child_name, week_start_date, habits, user_id) VALUES ('Eve', '2026-11-23', NULL, $1)
            RETURNING id::text
            """, [Self.ada]).value("id") ?? ""
        try Self.waitForLogRows(db, 6)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM habits") == 3 + 1 + 1 + 50)

        // Reorder, rename, add and remove habits; change and clear records.
        try db.query("UPDATE habit_tracker SET habits = $2::jsonb WHERE id = $1", [main, Self.habits([
            ("Walk", ["done", "done", "done", "done", "done", "done", "done"]),
            ("Brush teeth (both)", ["", "", "", "", "", "", ""]),
            ("Stretch", ["partial", nil, nil, nil, nil, nil, "missed"]),
            ("Sing", Self.week),
        ])])
        try db.query("UPDATE habit_tracker SET child_name = 'Bee' WHERE id = $1", [moving])
        try db.query("UPDATE habit_tracker SET user_id = $2 WHERE id = $1", [changingUser, Self.bob])
        try db.query("UPDATE habit_tracker SET habits = $2::jsonb, week_start_date = '2026-12-07' WHERE id = $1",
                     [many, Self.habits((0..<49).map { ("habit \($0 + 1)", Self.week) })])
        try db.query("DELETE FROM habit_tracker WHERE id = $1", [sibling])
        try db.query("DELETE FROM habit_tracker WHERE id = $1", [empty])
        // A new primary key deletes the old row's week and creates the new one's: two log rows.
        try db.query("UPDATE habit_tracker SET id = 1000 WHERE id = $1", [many])
        try Self.waitForLogRows(db, 14)

        let check = try Self.driftCheck(setup, ["--json"])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let report = try JSONParser.parse(check.stdout)
        #expect(report["rows_checked"] == .number("4") && report["rows_drifted"] == .number("0"))
        #expect(report["children_without_weeks"] == .number("0"))

        let main4 = try db.query("""
            SELECT string_agg(h.name || '@' || h.position, ',' ORDER BY h.position) AS names
            FROM habits h JOIN weeks w ON w.id = h.week_id WHERE w.source_habit_tracker_id = $1
            """, [main]).value("names")
        #expect(main4 == "Walk@0,Brush teeth (both)@1,Stretch@2,Sing@3")
        let records = try db.query("""
            SELECT string_agg(h.position || ':' || r.record_date || ':' || r.status, ',' ORDER BY h.position, r.record_date) AS r
            FROM habit_records r JOIN habits h ON h.id = r.habit_id JOIN weeks w ON w.id = h.week_id
            WHERE w.source_habit_tracker_id = $1 AND h.position IN (1, 2)
            """, [main]).value("r")
        #expect(records == "2:2026-11-23:partial,2:2026-11-29:missed")
        // Ada keeps her child row (her other week went), Bea became Bee, Cy moved to Bob.
        let children = try db.execute("SELECT string_agg(name || '/' || right(user_id::text, 1), ',' ORDER BY name) AS c FROM children")
        #expect(children.value("c") == "Ada/a,Bee/a,Cy/b,Dee/a")
        #expect(try Self.count(db, "SELECT count(*) AS n FROM weeks WHERE source_habit_tracker_id = 1000") == 1)
        let log = try db.execute("""
            SELECT bool_and(expires_at = created_at + interval '24 hours') AS expiry, count(DISTINCT key) AS keys
            FROM idempotency_log
            """)
        #expect(log.value("keys") == "14" && log.value("expiry") == "t")
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status <> 'success'") == 0)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE operation = 'delete_week'") == 3)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// One source transaction is one batch: rows changed several times in it, deleted and
    /// inserted again, created and deleted, moved to another child or user, next to rows
    /// that had a week before it. Each ends in its last state, what stays keeps its ids, and
    /// every change has its log row.
    /// Another writer deleting a row's week (a hand edit, a trigger left from the seed) while
    /// the batch that updates the row runs: the batch waits for it and sees its commit. Read
    /// from a snapshot taken before that commit, it wrote habits for a week that was gone, and
    /// `run` stopped on the foreign key, saying it would on every start.
    @Test func aWeekDeletedByAnotherWriterMeanwhileIsWaitedForAndWrittenAgain() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        let id = try Self.insert(setup.db, habits: Self.habits([("Read", Self.week)]))
        try Self.waitForLogRows(setup.db, 1)
        let other = try setup.cluster.connect()
        try other.execute("BEGIN")
        try other.query("DELETE FROM weeks WHERE source_habit_tracker_id = $1::bigint", [id])
        try setup.db.query("UPDATE habit_tracker SET week_period = 'changed', habits = $2::jsonb WHERE id = $1::bigint",
                           [id, Self.habits([("Write", Self.week)])])
        try RunPipelineTests.waitFor("the batch to wait for the other writer's lock") {
            try Self.count(setup.db, """
                SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%changerelay_dual_write_apply%'
                """) == 1
        }
        try other.execute("COMMIT")
        try Self.waitForLogRows(setup.db, 2)
        #expect(run.child.poll() == nil, "the service stopped: \(run.stderr.suffix(2000))")
        let week = try setup.db.query("""
            SELECT w.week_period, (SELECT string_agg(name, ',') FROM habits h WHERE h.week_id = w.id) AS habits
            FROM weeks w WHERE source_habit_tracker_id = $1::bigint
            """, [id])
        #expect(week.rows == [["changed", "Write"]], "\(week.rows)")
        let drift = try Self.driftCheck(setup)
        #expect(drift.status == 0, "\(drift.stdout) \(drift.stderr)")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func oneBatchTakesEachRowToItsLastStateThroughSeveralChangesOfIt() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        let db = setup.db
        let two = Self.habits([("Read", Self.week), ("Walk", Self.week)])
        try Self.insert(db, id: 1, habits: two)
        try Self.insert(db, id: 2, child: "Bea", habits: two)
        try Self.insert(db, id: 3, child: "Cy", habits: two)
        try Self.insert(db, id: 4, child: "Tia", habits: two)
        try Self.waitForLogRows(db, 4)
        let before = try db.execute("""
            SELECT w.id AS week, h.id AS habit FROM weeks w JOIN habits h ON h.week_id = w.id AND h.position = 0
            WHERE w.source_habit_tracker_id = 1
            """)

        let done = #"["done", "done", "done", "done", "done", "done", "done"]"#
        try db.execute("""
            BEGIN;
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            VALUES (5, 'Nia', '2026-11-23', 'week', '[{"name": "Swim", "times": \(done)}]', '\(Self.ada)');
            UPDATE habit_tracker SET habits = habits || '[{"name": "Sing", "times": null}]' WHERE id = 5;
            UPDATE habit_tracker SET habits = '[{"name": "Dive", "times": \(done)}]', child_name = 'Noa' WHERE id = 5;
            DELETE FROM habit_tracker WHERE id = 1;
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            VALUES (1, 'Ada', '2026-11-23', 'week', '[{"name": "Read", "times": \(done)}]', '\(Self.ada)');
            UPDATE habit_tracker SET child_name = 'Bee', week_period = 'month' WHERE id = 2;
            UPDATE habit_tracker SET user_id = '\(Self.bob)' WHERE id = 3;
            DELETE FROM habit_tracker WHERE id = 4;
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            VALUES (6, 'Ola', '2026-11-23', 'week', '[]', '\(Self.ada)');
            DELETE FROM habit_tracker WHERE id = 6;
            COMMIT;
            """)
        try Self.waitForLogRows(db, 4 + 10)

        let check = try Self.driftCheck(setup, ["--json", "--threshold", "0"])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let report = try JSONParser.parse(check.stdout)
        #expect(report["rows_checked"] == .number("4") && report["rows_drifted"] == .number("0"))
        #expect(report["children_without_weeks"] == .number("0"))
        // Row 1 was deleted and inserted again: its week and first habit are the ones it had.
        let after = try db.execute("""
            SELECT w.id AS week, h.id AS habit, (SELECT count(*) FROM habits x WHERE x.week_id = w.id) AS habits,
                   (SELECT string_agg(r.status, ',') FROM habit_records r WHERE r.habit_id = h.id) AS statuses
            FROM weeks w JOIN habits h ON h.week_id = w.id AND h.position = 0 WHERE w.source_habit_tracker_id = 1
            """)
        #expect(after.value("week") == before.value("week") && after.value("habit") == before.value("habit"))
        #expect(after.value("habits") == "1" && after.value("statuses") == "done,done,done,done,done,done,done")
        let children = try db.execute("""
            SELECT string_agg(c.name || '/' || right(c.user_id::text, 1) || ':' || w.source_habit_tracker_id, ','
                              ORDER BY w.source_habit_tracker_id) AS c
            FROM children c JOIN weeks w ON w.child_id = c.id
            """)
        #expect(children.value("c") == "Ada/a:1,Bee/a:2,Cy/b:3,Noa/a:5")
        #expect(try Self.count(db, "SELECT count(*) AS n FROM children") == 4)
        let five = try db.execute("""
            SELECT string_agg(h.name, ',') AS names, sum((SELECT count(*) FROM habit_records r WHERE r.habit_id = h.id)) AS records
            FROM habits h JOIN weeks w ON w.id = h.week_id WHERE w.source_habit_tracker_id = 5
            """)
        #expect(five.value("names") == "Dive" && five.value("records") == "7")
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status <> 'success'") == 0)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// The committer empties its staging and scratch tables after each batch, deleting the
    /// rows and, once enough has been staged, truncating the tables: batch after batch, each
    /// change is applied once, and no batch takes an earlier one's rows again (a row left in
    /// `dual_write_rows` would insert its week a second time). A truncation gives the table a
    /// new file, which `pg_class` shows to another session.
    @Test func batchAfterBatchPastTheStagingTruncationAppliesEachChangeOnce() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        let db = setup.db
        let fileOf = """
            SELECT string_agg(c.relname || '=' || c.relfilenode, ',' ORDER BY c.relname) AS files FROM pg_class c
            WHERE c.relpersistence = 't' AND c.relname IN ('dual_write_staged', 'dual_write_rows')
            """
        // About 9 KB staged a row (its request and its projection): 60 batches stage twice
        // StagingSweep's threshold.
        let habits = Self.habits((0..<40).map { ("habit \($0) " + String(repeating: "x", count: 40), Self.week) })
        try Self.insert(db, id: 1, habits: habits)
        try Self.waitForLogRows(db, 1)
        let first = try #require(try db.execute(fileOf).value("files"))
        for id in 2...60 {
            try Self.insert(db, id: id, child: "Child \(id % 7)", habits: habits)
            try Self.waitForLogRows(db, id)
        }
        for id in stride(from: 1, through: 60, by: 3) {
            try db.query("UPDATE habit_tracker SET week_start_date = '2026-12-07' WHERE id = $1", [String(id)])
        }
        try db.execute("DELETE FROM habit_tracker WHERE id % 10 = 0")
        try Self.waitForLogRows(db, 60 + 20 + 6)

        #expect(try db.execute(fileOf).value("files") != first)
        let check = try Self.driftCheck(setup, ["--json", "--threshold", "0"])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let report = try JSONParser.parse(check.stdout)
        #expect(report["rows_checked"] == .number("54") && report["rows_drifted"] == .number("0"))
        #expect(try Self.count(db, "SELECT count(*) AS n FROM weeks") == 54)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM habits") == 54 * 40)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status = 'success'") == 86)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    @Test func shadowRecordsExactlyTheSeededDifferencesAndWritesNothing() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        // The new schema, filled by hand as the projection of rows 1-3, with three differences.
        try db.execute("""
            INSERT INTO children (id, user_id, name) VALUES (1, '\(Self.ada)', 'Ada');
            INSERT INTO weeks (id, child_id, week_start_date, week_period, source_habit_tracker_id)
            VALUES (1, 1, '2026-11-23', 'week', 1), (2, 1, '2026-11-30', 'week', 2), (3, 1, '2026-12-07', 'week', 3);
            INSERT INTO habits (id, week_id, name, time_period, position)
            VALUES (1, 1, 'Read', 'morning', 0), (2, 2, 'Read', 'morning', 0), (3, 3, 'Read', 'morning', 0),
                   (4, 3, 'Extra', 'morning', 1);
            INSERT INTO habit_records (habit_id, record_date, status)
            VALUES (1, '2026-11-23', 'done'),
                   (2, '2026-11-30', 'done'), (2, '2026-12-01', 'done'),
                   (3, '2026-12-07', 'missed');
            """)
        let before = try Self.newSchema(db)
        let run = try Background(["run"], environment: Self.environment(setup, mode: "shadow"))
        let oneDone: [String?] = ["done", nil, nil, nil, nil, nil, nil]
        try Self.insert(db, id: 1, start: "2026-11-23", habits: Self.habits([("Read", oneDone)]))
        try Self.insert(db, id: 2, start: "2026-11-30", habits: Self.habits([("Read", ["done", "done", "partial", nil, nil, nil, nil])]))
        try Self.insert(db, id: 3, start: "2026-12-07", habits: Self.habits([("Read", ["done", nil, nil, nil, nil, nil, nil])]))
        try Self.waitForLogRows(db, 3)

        #expect(try Self.newSchema(db) == before)
        let drift = try db.execute("""
            SELECT string_agg(format('%s %s %s %s %s', habit_tracker_id, kind, detail, expected, actual), '; '
                              ORDER BY habit_tracker_id, kind) AS d,
                   bool_and(source_lsn IS NOT NULL) AS positioned
            FROM changerelay.dual_write_drift
            """)
        #expect(drift.value("d") == """
            2 missing_record habits[0] 2026-12-02 "partial" ; \
            3 extra_habit habits[1]  {"name": "Extra", "time_period": "morning"}; \
            3 record_mismatch habits[0] 2026-12-07 "done" "missed"
            """)
        #expect(drift.value("positioned") == "t")
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status = 'shadow'") == 3)

        let check = try Self.driftCheck(setup, ["--json", "--sample", "5"])
        #expect(check.status == 1, "\(check.stdout) \(check.stderr)")
        let report = try JSONParser.parse(check.stdout)
        #expect(report["rows_checked"] == .number("3") && report["rows_drifted"] == .number("2"))
        #expect(report["kinds"]?["missing_record"] == .number("1") && report["kinds"]?["extra_habit"] == .number("1")
                && report["kinds"]?["record_mismatch"] == .number("1") && report["differences"] == .number("3"))
        #expect(report["passed"] == .bool(false))
        let text = try Self.driftCheck(setup, ["--threshold", "0.9"])
        #expect(text.status == 0 && text.stdout.contains("rows drifted: 2") && text.stdout.contains("extra_habit: 1"))
        // Progress goes to stderr, apart from the report: stderr is no terminal here, so plain lines.
        #expect(text.stderr.contains("drift-check: comparing about ") && text.stderr.contains(" habit_tracker rows at one snapshot, "),
                "\(text.stderr)")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// Shadow mode behind the other writer (a backlog, a restart): the new schema already
    /// holds each row's latest state, so only a row's latest change is compared with it. A row
    /// changed three times shows no drift for its first two states; a real difference of
    /// another row is still found.
    /// `habits` changed to text: a row holding valid JSON is compared like any other (its
    /// missing week is drift), where it used to be passed over without a word.
    @Test func shadowComparesRowsWhoseHabitsColumnIsText() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        try db.execute("ALTER TABLE habit_tracker ALTER COLUMN habits TYPE text")
        let run = try Background(["run"], environment: Self.environment(setup, mode: "shadow"))
        try db.query("""
            INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
            VALUES (1, 'Ada', '2026-11-23', 'week', $1, $2::uuid), (2, 'Ada', '2026-11-30', 'week', NULL, $2::uuid)
            """, [Self.habits([("Read", Self.week)]), Self.ada])
        try Self.waitForLogRows(db, 2)
        let drift = try db.execute("""
            SELECT string_agg(format('%s %s', habit_tracker_id, kind), '; ' ORDER BY habit_tracker_id) AS d
            FROM changerelay.dual_write_drift
            """)
        #expect(drift.value("d") == "1 missing_week; 2 missing_week", "\(drift.rows)")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func shadowBehindTheOtherWriterComparesOnlyEachRowsLatestState() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        try db.execute("SELECT pg_create_logical_replication_slot('behind', 'pgoutput')")
        let changed = try Self.insert(db, habits: Self.habits([("Read", Self.week)]))
        for period in ["p2", "p3"] { try db.query("UPDATE habit_tracker SET week_period = $1 WHERE id = $2", [period, changed]) }
        let tampered = try Self.insert(db, child: "Bea", habits: Self.habits([("Run", Self.week)]))
        // A row whose latest state cannot be projected is only that: no comparison of its week.
        let invalid = try Self.insert(db, child: "Cy", habits: Self.habits([("Swim", Self.week)]))
        try db.query("UPDATE habit_tracker SET child_name = '   ' WHERE id = $1", [invalid])
        // The other writer: apply mode on the default slot takes the new schema to the latest states.
        let writer = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        try Self.waitForLogRows(db, 6)
        writer.child.signal(SIGTERM)
        #expect(writer.waitForExit() == 0)
        try db.query("UPDATE weeks SET week_period = 'other' WHERE source_habit_tracker_id = $1", [tampered])
        let end = try db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn") ?? ""

        let shadow = try Background(["run"], environment: Self.environment(setup, mode: "shadow", extra: [
            "CHANGERELAY_SOURCE_SLOT": "behind", "CHANGERELAY_PIPELINE_BATCH_MAX_CHANGES": "1",
        ]))
        try RunPipelineTests.waitFor("the shadow slot to pass the workload") {
            // Past the workload, an idle stream acknowledges the WAL's end: every change was handled.
            try db.query("SELECT confirmed_flush_lsn >= $1::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = 'behind'",
                         [end]).value("done") == "t"
        }
        shadow.child.signal(SIGTERM)
        #expect(shadow.waitForExit() == 0)
        let drift = try db.execute("""
            SELECT string_agg(format('%s %s', habit_tracker_id, kind), '; ' ORDER BY id) AS d FROM changerelay.dual_write_drift
            """)
        // The apply run's invalid_source first, then the shadow run's: a difference, and the invalid row again.
        #expect(drift.value("d") == "\(invalid) invalid_source; \(tampered) week_mismatch; \(invalid) invalid_source")
    }

    /// A gate script tells "cannot run" (2) from "drifted" (1): a bad threshold or sample is
    /// the former, named, whatever its spelling, before any database is asked.
    @Test(arguments: [["--threshold", "1.5"], ["--threshold", "-0.1"], ["--threshold", "nan"], ["--threshold", "abc"],
                      ["--sample", "-1"], ["--sample", "ten"]])
    func aBadThresholdOrSampleIsACheckThatCannotRun(arguments: [String]) throws {
        let result = try runChangeRelay(["drift-check"] + arguments,
                                        environment: ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains(arguments[0]) && result.stderr.contains(arguments[1]), "\(result.stderr)")
    }

    /// A habit_tracker the comparison cannot read as the seed defines it is named by column
    /// (exit 2), not by the function or column the server did not find.
    @Test(arguments: [
        ("ALTER TABLE habit_tracker ALTER COLUMN habits TYPE text",
         "public.habit_tracker.habits is text, not jsonb: drift-check reads it as jsonb"),
        ("ALTER TABLE habit_tracker ALTER COLUMN habits TYPE json",
         "public.habit_tracker.habits is json, not jsonb"),
        ("ALTER TABLE habit_tracker RENAME COLUMN week_period TO period",
         "public.habit_tracker has no column week_period (renamed or dropped?)"),
        ("ALTER TABLE habit_tracker ALTER COLUMN user_id TYPE text",
         "public.habit_tracker.user_id is text, not uuid: drift-check reads it as uuid"),
        ("ALTER TABLE habit_tracker ALTER COLUMN week_start_date TYPE text",
         "public.habit_tracker.week_start_date is text, not date"),
        ("ALTER TABLE habit_tracker ALTER COLUMN week_start_date TYPE timestamp",
         "public.habit_tracker.week_start_date is timestamp without time zone, not date"),
    ])
    func driftCheckNamesAColumnItCannotRead(_ change: String, _ message: String) throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute(change)
        let result = try Self.driftCheck(setup)
        #expect(result.status == 2 && result.stderr.contains(message), "\(result.stderr)")
    }

    /// A `habits` of a domain over a domain over jsonb is jsonb to the comparison, as to the
    /// stream: the shape check follows the chain the decoders follow (`DomainLookup`).
    @Test func driftCheckReadsHabitsThroughDomainsOverDomains() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE DOMAIN habit_json AS jsonb; CREATE DOMAIN habit_list AS habit_json;
            ALTER TABLE habit_tracker ALTER COLUMN habits TYPE habit_list
            """)
        let result = try Self.driftCheck(setup)
        #expect(result.status == 0 && !result.stderr.contains("not jsonb"), "\(result.stdout)\(result.stderr)")
    }

    @Test func logModeWritesOneNotImplementedRowPerChangeAndNothingElse() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "log"))
        let db = setup.db
        let first = try Self.insert(db, habits: Self.habits([("Read", Self.week)]))
        try Self.insert(db, child: "Bea", habits: #"{"not": "an array"}"#)
        try db.query("UPDATE habit_tracker SET habits = '[]' WHERE id = $1", [first])
        try db.query("DELETE FROM habit_tracker WHERE id = $1", [first])
        try Self.waitForLogRows(db, 4)
        let log = try db.execute("""
            SELECT string_agg(operation, ',' ORDER BY (request_data->>'source_lsn')::pg_lsn) AS ops, bool_and(status = 'not_implemented') AS status,
                   bool_and(request_data ? 'habit_tracker_id') AS requests
            FROM idempotency_log
            """)
        #expect(log.value("ops") == "create_week,create_week,update_habit_record,delete_week")
        #expect(log.value("status") == "t" && log.value("requests") == "t")
        #expect(try Self.newSchema(db) == "")
        #expect(try Self.count(db, "SELECT count(*) AS n FROM changerelay.dual_write_drift") == 0)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(run.stderr.contains("habit_tracker change") && run.stderr.contains("operation=INSERT")
                && run.stderr.contains("id=\(first)") && run.stderr.contains("child_name=Ada")
                && run.stderr.contains("week_start_date=2026-11-23") && run.stderr.contains("operation=DELETE"))
    }

    @Test func aRowThatCannotBeProjectedIsReportedAndSkippedWhileTheOthersSync() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        let db = setup.db
        let good = try Self.insert(db, habits: Self.habits([("Read", Self.week)]))
        let short = try Self.insert(db, child: "Bea", habits: #"[{"name": "Read", "times": ["done"]}]"#)
        let later = try Self.insert(db, child: "Cy", habits: Self.habits([("Swim", Self.week)]))
        // A good row that goes bad keeps its last good projection.
        try db.query("UPDATE habit_tracker SET habits = '[{\"name\": \"  \"}]' WHERE id = $1", [good])
        try Self.waitForLogRows(db, 4)

        let failed = try db.execute("""
            SELECT string_agg(request_data->>'habit_tracker_id' || ' ' || (response_data->>'error'), '; ' ORDER BY key) AS f
            FROM idempotency_log WHERE status = 'failed'
            """).value("f") ?? ""
        #expect(failed.contains("\(short) habits[0].times has 1 values, not 7"), "\(failed)")
        #expect(failed.contains("\(good) ") && failed.contains("has no non-blank string \"name\""))
        #expect(try Self.count(db, "SELECT count(*) AS n FROM changerelay.dual_write_drift WHERE kind = 'invalid_source'") == 2)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM weeks WHERE source_habit_tracker_id = \(later)") == 1)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM weeks WHERE source_habit_tracker_id = \(good)") == 1)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM weeks WHERE source_habit_tracker_id = \(short)") == 0)

        let check = try Self.driftCheck(setup, ["--json"])
        let report = try JSONParser.parse(check.stdout)
        #expect(check.status == 1 && report["kinds"] == .object([("invalid_source", .number("2"))]), "\(check.stdout)")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(run.stderr.contains("cannot be projected") && run.stderr.contains("id=\(short)"))
    }

    /// The service's projection (Swift) and drift-check's (SQL) must agree on which rows can
    /// be projected, or drift-check would report drift that apply cannot mend.
    @Test func theServiceAndDriftCheckAgreeOnWhichRowsCanBeProjected() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        let days = #"["done", "", null, "partial", "missed", "", ""]"#
        let valid: [String?] = [
            nil, "[]", #"[{"name": "a"}]"#, #"[{"name": "a", "times": null, "time_period": null}]"#,
            #"[{"name": "\u00a0", "times": \#(days)}]"#, #"[{"name": " a ", "times": \#(days), "extra": true}]"#,
            #"[{"name": "a", "time_period": "", "times": [null, null, null, null, null, null, null]}]"#,
            // Nested past the service's parser bound in a member neither side projects.
            #"[{"name": "a", "meta": "# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}]",
        ]
        let invalid: [String?] = [
            "null", #"{"name": "a"}"#, "[1]", #"[{"name": ""}]"#, #"[{"name": " \t\n"}]"#, #"[{"name": 5}]"#,
            #"[{"time_period": "am"}]"#, #"[{"name": "a", "time_period": 3}]"#, #"[{"name": "a", "times": "x"}]"#,
            #"[{"name": "a", "times": [1, 2, 3, 4, 5, 6, 7]}]"#, #"[{"name": "a", "times": ["DONE", "", "", "", "", "", ""]}]"#,
            #"[{"name": "a", "times": ["done", "", "", "", "", ""]}]"#,
            #"[{"name": "a", "times": ["done", "", "", "", "", "", "", ""]}]"#, #"[{"name": "a"}, "b"]"#,
        ]
        for habits in valid + invalid {
            try setup.db.query("""
                INSERT INTO habit_tracker (child_name, week_start_date, habits, user_id) VALUES ('Ada', '2026-11-23', $1::jsonb, $2)
                """, [habits, Self.ada])
        }
        // A child name at the limit is projected. One past it, of text that does not compress,
        // is longer than a btree entry of the children's unique index holds: refused, and the
        // stream goes on (applied, its batch failed on every read and stopped every handler).
        for length in [2000, 3200] {
            try setup.db.query("""
                INSERT INTO habit_tracker (child_name, week_start_date, habits, user_id)
                SELECT left(string_agg(md5(g::text), '' ORDER BY g), $1::int), '2026-11-23', '[]', $2 FROM generate_series(1, 100) g
                """, [String(length), Self.ada])
        }
        try Self.waitForLogRows(setup.db, valid.count + invalid.count + 2)
        let problems = try setup.db.execute("""
            SELECT response_data->>'error' AS problem FROM idempotency_log WHERE status = 'failed'
            """).rows.compactMap { $0[0] }
        #expect(problems.count == invalid.count + 1)
        #expect(problems.contains("child_name is longer than 2000 bytes"))
        // A week written by something else, without a source row: one difference, not one per habit.
        try setup.db.execute("""
            WITH w AS (INSERT INTO weeks (child_id, week_start_date) SELECT min(id), '2020-01-06' FROM children RETURNING id),
                 h AS (INSERT INTO habits (week_id, name, position) SELECT id, 'stray', g FROM w, generate_series(0, 1) g
                       RETURNING id)
            INSERT INTO habit_records (habit_id, record_date, status) SELECT id, '2020-01-06', 'done' FROM h
            """)
        let check = try Self.driftCheck(setup, ["--json", "--sample", "30"])
        let report = try JSONParser.parse(check.stdout)
        #expect(report["kinds"] == .object([("invalid_source", .number(String(invalid.count + 1))), ("extra_week", .number("1"))]),
                "\(check.stdout)")
        #expect(report["rows_drifted"] == .number(String(invalid.count + 2)))
        #expect(report["rows_checked"] == .number(String(valid.count + invalid.count + 3)))
        // Both projections name each problem in the same words.
        guard case .array(let sample)? = report["sample"] else { Issue.record("no sample"); return }
        let details = sample.compactMap { difference -> String? in
            guard difference["kind"] == .string("invalid_source"), case .string(let detail)? = difference["detail"] else { return nil }
            return detail
        }
        #expect(details.sorted() == problems.sorted())
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    @Test func switchingFromShadowToApplyNeitherSkipsNorRepeatsAChange() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        let stop = Atomic<Bool>(false)
        let written = Atomic<Int>(0)
        let writerDone = DispatchSemaphore(value: 0)
        let writer = Thread {
            defer { writerDone.signal() }
            guard let db = try? setup.cluster.connect() else { return }
            var index = 0
            while !stop.load(ordering: .relaxed) {
                index += 1
                guard (try? Self.insert(db, id: index, child: "child \(index % 7)", habits: Self.habits([("Read", Self.week)]))) != nil,
                      (try? db.execute("UPDATE habit_tracker SET week_period = 'changed' WHERE id = \(index)")) != nil
                else { return }
                written.store(index, ordering: .relaxed)
            }
        }
        let shadow = try Background(["run"], environment: Self.environment(setup, mode: "shadow"))
        writer.start()
        try RunPipelineTests.waitFor("some changes in shadow mode") {
            try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status = 'shadow'") >= 100
        }
        shadow.child.signal(SIGTERM)
        #expect(shadow.waitForExit() == 0)
        let apply = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        try RunPipelineTests.waitFor("some changes applied") {
            try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE status = 'success'") >= 100
        }
        stop.store(true, ordering: .relaxed)
        writerDone.wait()
        let rows = written.load(ordering: .relaxed)
        try Self.waitForLogRows(db, 2 * rows)
        apply.child.signal(SIGTERM)
        #expect(apply.waitForExit() == 0)

        let log = try db.execute("""
            SELECT count(*) AS n, count(DISTINCT key) AS keys,
                   count(*) FILTER (WHERE status = 'shadow') AS shadowed, count(*) FILTER (WHERE status = 'success') AS applied,
                   max((request_data->>'source_lsn')::pg_lsn) FILTER (WHERE status = 'shadow')
                     < min((request_data->>'source_lsn')::pg_lsn) FILTER (WHERE status = 'success') AS ordered
            FROM idempotency_log
            """)
        #expect(log.value("n") == String(2 * rows) && log.value("keys") == String(2 * rows))
        #expect(Int(log.value("shadowed") ?? "") ?? 0 >= 100 && Int(log.value("applied") ?? "") ?? 0 >= 100)
        #expect(log.value("ordered") == "t")
        // Every row whose insert was applied is in the new schema as it is now.
        let missing = try Self.count(db, """
            SELECT count(*) AS n FROM habit_tracker h
            WHERE EXISTS (SELECT FROM idempotency_log l WHERE l.status = 'success' AND l.operation = 'create_week'
                          AND (l.request_data->>'habit_tracker_id')::bigint = h.id)
              AND NOT EXISTS (SELECT FROM weeks w WHERE w.source_habit_tracker_id = h.id AND w.week_period = 'changed')
            """)
        #expect(missing == 0)
    }

    @Test(.tags(.soak), .enabled(if: soaksEnabled)) func killNineDuringTenThousandChangesInApplyModeLeavesNoDriftAndOneLogRowPerChange() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = Self.environment(setup, mode: "apply")
        let transactions = 250
        // 40 changes per transaction: 20 inserts, 15 updates of them, 5 deletes.
        let writer = Thread {
            guard let db = try? setup.cluster.connect() else { return }
            for batch in 0..<transactions {
                let first = batch * 20 + 1, last = batch * 20 + 20
                _ = try? db.execute("""
                    BEGIN;
                    INSERT INTO habit_tracker (id, child_name, week_start_date, week_period, habits, user_id)
                    SELECT g, 'child ' || (g % 13), date '2026-01-05' + 7 * (g % 20), 'week',
                           jsonb_build_array(jsonb_build_object('name', 'habit ' || g, 'times',
                               jsonb_build_array('done', '', null, 'missed', 'partial', 'done', '')),
                               jsonb_build_object('name', 'second', 'time_period', 'pm')),
                           ('00000000-0000-0000-0000-' || lpad((g % 17)::text, 12, '0'))::uuid
                    FROM generate_series(\(first), \(last)) g;
                    UPDATE habit_tracker SET habits = habits || '[{"name": "third", "times": ["missed", "", "", "", "", "", ""]}]',
                                             child_name = CASE WHEN id % 3 = 0 THEN 'moved' ELSE child_name END
                    WHERE id BETWEEN \(first) AND \(last - 5);
                    DELETE FROM habit_tracker WHERE id BETWEEN \(last - 4) AND \(last);
                    COMMIT;
                    """)
            }
        }
        writer.start()
        var generator = SystemRandomNumberGenerator()
        let changes = transactions * 40
        for round in 1...4 {
            // Run k dies soon after k fifths of the changes are applied, mid-batch or between.
            let run = try Background(["run"], environment: environment)
            try RunPipelineTests.waitFor("progress before kill \(round)") {
                try Self.count(setup.db, "SELECT count(*) AS n FROM idempotency_log") >= round * changes / 5
            }
            usleep(UInt32.random(in: 0...100_000, using: &generator))
            run.child.signal(SIGKILL)
            _ = run.waitForExit()
        }
        #expect(try Self.count(setup.db, "SELECT count(*) AS n FROM idempotency_log") < changes,
                "the kills all came after the last change was applied")
        let final = try Background(["run"], environment: environment)
        try Self.waitForLogRows(setup.db, changes, timeout: .seconds(300))
        try RunPipelineTests.waitFor("the last run to be ready for SIGTERM") { final.stderr.contains("streaming") }
        final.child.signal(SIGTERM)
        #expect(final.waitForExit() == 0)

        let log = try setup.db.execute("""
            SELECT count(*) AS n, count(DISTINCT key) AS keys, count(*) FILTER (WHERE status = 'success') AS ok
            FROM idempotency_log
            """)
        #expect(log.value("n") == String(changes) && log.value("keys") == String(changes) && log.value("ok") == String(changes))
        let check = try Self.driftCheck(setup, ["--json", "--threshold", "0"])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        let report = try JSONParser.parse(check.stdout)
        #expect(report["rows_checked"] == .number(String(transactions * 15)) && report["rows_drifted"] == .number("0"))
        #expect(report["children_without_weeks"] == .number("0"))
    }

    /// The seed's hourly clean-up is a built-in scheduled job: an hour missed while the
    /// service was down (seeded below) runs once at start, recorded under its reserved name.
    @Test func expiredIdempotencyRowsAreCleanedUpByTheServiceAndTheSQLFunction() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        try db.execute("""
            INSERT INTO idempotency_log (key, operation, status, created_at, expires_at)
            VALUES ('old', 'create_week', 'success', now() - interval '2 days', now() - interval '1 day'),
                   ('fresh', 'create_week', 'success', now(), now() + interval '1 day');
            INSERT INTO changerelay.schedule_runs (schedule, due_at, finished_at, instance)
            VALUES ('changerelay.idempotency_log_cleanup', date_trunc('hour', now()) - interval '1 day', now(), 'seed');
            """)
        let run = try Background(["run"], environment: Self.environment(setup, mode: "apply"))
        try RunPipelineTests.waitFor("the expired row deleted") {
            try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE key = 'old'") == 0
        }
        try RunPipelineTests.waitFor("the run recorded") {
            try db.execute("""
                SELECT rows::text AS n FROM changerelay.schedule_runs
                WHERE schedule = 'changerelay.idempotency_log_cleanup' AND instance <> 'seed' AND finished_at IS NOT NULL
                """).value("n") == "1"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(try Self.count(db, "SELECT count(*) AS n FROM idempotency_log WHERE key = 'fresh'") == 1)

        try db.execute("""
            INSERT INTO idempotency_log (key, operation, status, expires_at)
            VALUES ('a', 'x', 'success', now() - interval '1 hour'), ('b', 'x', 'success', now() - interval '1 hour'),
                   ('c', 'x', 'success', now() + interval '1 hour');
            """)
        #expect(try db.execute("SELECT public.cleanup_idempotency_log()::text AS n").value("n") == "2")
    }

    /// The state database counts as the source when the servers say it is the same
    /// database, however its URL is spelled: the sync then runs.
    @Test func theSourceSpelledAnotherWayIsAcceptedAsTheStateDatabase() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let respelled = "host=localhost port=\(setup.cluster.port) user=postgres dbname=postgres application_name=state"
        let run = try Background(["run"], environment: Self.environment(
            setup, mode: "log", extra: ["CHANGERELAY_STATE_DATABASE_URL": respelled]))
        try Self.insert(setup.db, habits: Self.habits([("Read", Self.week)]))
        try Self.waitForLogRows(setup.db, 1)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func aSeparateStateDatabaseOrAMissingMigrationIsRefusedAtStart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // Another database of the same cluster: the stream never sees what is written there.
        try setup.db.execute("CREATE DATABASE state")
        let separate = try runChangeRelay(["run"], environment: Self.environment(
            setup, mode: "shadow", extra: ["CHANGERELAY_STATE_DATABASE_URL": "postgresql://postgres@127.0.0.1:\(setup.cluster.port)/state"]))
        #expect(separate.status != 0 && separate.stderr.contains("dual_write.mode"), "\(separate.stderr)")
        let staging = repositoryRoot + "/sql/019_session_staging"
        try setup.db.execute(try String(contentsOfFile: staging + ".rollback.sql", encoding: .utf8))
        let unstaged = try runChangeRelay(["run"], environment: Self.environment(setup, mode: "apply"))
        #expect(unstaged.status != 0 && unstaged.stderr.contains("019_session_staging.sql"), "\(unstaged.stderr)")
        try setup.db.execute("DROP TABLE changerelay.dual_write_drift CASCADE")
        let missing = try runChangeRelay(["run"], environment: Self.environment(setup, mode: "apply"))
        #expect(missing.status != 0 && missing.stderr.contains("008_dual_write.sql"), "\(missing.stderr)")
        let badMode = try runChangeRelay(["run"], environment: Self.environment(setup, mode: "sync"))
        #expect(badMode.status != 0 && badMode.stderr.contains("dual_write.mode"), "\(badMode.stderr)")
        let unreadable = try runChangeRelay(["drift-check"], environment: Self.environment(setup, mode: "sync"))
        #expect(unreadable.status == 2 && unreadable.stderr.contains("dual_write.mode"), "\(unreadable.stderr)")
        let badThreshold = try Self.driftCheck(setup, ["--threshold", "2"])
        #expect(badThreshold.status != 0 && badThreshold.stderr.contains("--threshold"))
    }
}
