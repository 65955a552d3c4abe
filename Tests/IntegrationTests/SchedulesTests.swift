import Core
import Decoding
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// Scheduled jobs through the real binary against a private cluster. No test waits for a
/// minute boundary: each seeds `schedule_runs` with an old run, so the job's latest due
/// time is missed and runs once at start.
@Suite struct SchedulesTests {
    /// A configuration file holding `entries` (TOML), removed by the caller.
    static func configFile(_ entries: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("schedules-\(UUID().uuidString).toml").path
        try entries.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func entry(_ name: String, cron: String = "* * * * *", sql: String) -> String {
        "[[schedules]]\nname = \"\(name)\"\ncron = \"\(cron)\"\nsql = \"\(sql)\"\n"
    }

    /// A finished run of `job` two days ago: every tick since is missed.
    static func seedOldRun(_ db: PostgresConnection, job: String) throws {
        try db.query("""
            INSERT INTO changerelay.schedule_runs (schedule, due_at, started_at, finished_at, instance)
            VALUES ($1, date_trunc('minute', now() - interval '2 days'), now() - interval '2 days', now() - interval '2 days', 'seed')
            """, [job])
    }

    /// The runs of `job` besides the seeded one, in due order: (due_at - startMinute in minutes, rows, error).
    static func newRuns(_ db: PostgresConnection, job: String, since startMinute: String) throws -> [(minutes: Int, rows: String?, error: String?)] {
        try db.query("""
            SELECT (extract(epoch FROM due_at - $2::timestamptz) / 60)::int, rows::text, error FROM changerelay.schedule_runs
            WHERE schedule = $1 AND instance <> 'seed' ORDER BY due_at
            """, [job, startMinute]).rows.map { (Int($0[0] ?? "") ?? -1, $0[1], $0[2]) }
    }

    static func finished(_ db: PostgresConnection, job: String) throws -> Bool {
        try db.query("""
            SELECT count(*) AS n FROM changerelay.schedule_runs WHERE schedule = $1 AND instance <> 'seed' AND finished_at IS NOT NULL
            """, [job]).value("n") != "0"
    }

    /// A job `tick` due every minute that inserts a row into `ticks` (with its time), last run
    /// long ago so that a start catches it up at once; the configuration file's path.
    static func tickingJob(_ db: PostgresConnection) throws -> String {
        try db.execute("CREATE TABLE ticks (id int GENERATED ALWAYS AS IDENTITY, at timestamptz DEFAULT clock_timestamp())")
        try seedOldRun(db, job: "tick")
        return try configFile(entry("tick", sql: "INSERT INTO ticks DEFAULT VALUES"))
    }

    static func currentMinute(_ db: PostgresConnection) throws -> String {
        try db.execute("SELECT date_trunc('minute', now())::text AS m").value("m")!
    }

    @Test func aJobMissedWhileDownRunsOnceAtStart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let path = try Self.tickingJob(setup.db)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let startMinute = try Self.currentMinute(setup.db)
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the catch-up run", timeout: .seconds(30)) { try Self.finished(setup.db, job: "tick") }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")

        let runs = try Self.newRuns(setup.db, job: "tick", since: startMinute)
        // One catch-up run for two days of missed minutes, due at the latest of them (the minute
        // the service started in, or the next if it started just after a boundary); any later
        // row is a regular tick of a later minute.
        #expect(runs.first?.minutes == 0 || runs.first?.minutes == 1, "\(runs)")
        #expect(Set(runs.map(\.minutes)).count == runs.count)
        #expect(runs.count <= 2)
        #expect(runs.allSatisfy { $0.rows == "1" && $0.error == nil }, "\(runs)")
        #expect(try setup.db.execute("SELECT count(*) AS n FROM ticks").value("n") == String(runs.count))
    }

    @Test func twoInstancesStartedTogetherRunATickOnce() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let path = try Self.tickingJob(setup.db)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var environment = setup.environment
        environment["CHANGERELAY_LOG_LEVEL"] = "debug"
        let first = try Background(["run", "--config", path], environment: environment)
        let second = try Background(["run", "--only", "dispatcher", "--config", path], environment: environment)
        // Each has handled a tick: run it, or found it claimed (or still running: the job's lock,
        // held by the instance that runs it until its run is recorded). Usually both reach the catch-up
        // tick; on a loaded machine one may read schedule_runs only after the other recorded
        // it, find nothing missed, and meet the other at the next minute's tick instead, so the
        // deadline spans a minute boundary.
        for instance in [first, second] {
            try RunPipelineTests.waitFor("both instances to handle a tick", timeout: .seconds(90)) {
                instance.stderr.contains("scheduled run finished") || Self.deferredToAnother(instance)
            }
        }
        for instance in [first, second] {
            instance.child.signal(SIGTERM)
            #expect(instance.waitForExit() == 0, "\(instance.stderr.suffix(2000))")
        }
        let runs = try setup.db.execute("""
            SELECT count(*) AS n, count(DISTINCT due_at) AS due, count(DISTINCT instance) AS instances
            FROM changerelay.schedule_runs WHERE schedule = 'tick' AND instance <> 'seed'
            """)
        #expect(runs.value("n") == runs.value("due"))
        #expect(try setup.db.execute("SELECT count(*) AS n FROM ticks").value("n") == runs.value("n"))
        #expect([first, second].filter(Self.deferredToAnother).count >= 1)
    }

    /// The instance found the tick claimed, or the job's run under way, by another instance.
    static func deferredToAnother(_ instance: Background) -> Bool {
        instance.stderr.contains("claimed by another instance") || instance.stderr.contains("still going on another instance")
    }

    /// `VACUUM` runs (it refuses a transaction block), a failing statement is recorded and
    /// logged, and the service keeps running after it.
    @Test func vacuumRunsAndAFailureIsRecordedAndLogged() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("CREATE TABLE ticks (id int)")
        try Self.seedOldRun(setup.db, job: "vacuum")
        try Self.seedOldRun(setup.db, job: "broken")
        let path = try Self.configFile(Self.entry("vacuum", cron: "0 3 * * *", sql: "VACUUM (ANALYZE) ticks")
            + Self.entry("broken", cron: "0 4 * * *", sql: "DELETE FROM no_such_table"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("both runs", timeout: .seconds(30)) {
            try Self.finished(setup.db, job: "vacuum") && Self.finished(setup.db, job: "broken")
        }
        let rows = try setup.db.execute("""
            SELECT schedule, error, rows::text AS rows FROM changerelay.schedule_runs WHERE instance <> 'seed' ORDER BY schedule
            """).rows
        #expect(rows.count == 2)
        #expect(rows[0][0] == "broken" && rows[0][1]?.contains(#"relation "no_such_table" does not exist"#) == true, "\(rows)")
        #expect(rows[1][0] == "vacuum" && rows[1][1] == nil, "\(rows)")
        #expect(try setup.db.execute("SELECT last_analyze IS NOT NULL AS done FROM pg_stat_user_tables WHERE relname = 'ticks'")
            .value("done") == "t")
        try RunPipelineTests.waitFor("the failure in the log", timeout: .seconds(10)) {
            run.stderr.contains("scheduled job failed") && run.stderr.contains("broken")
        }
        #expect(run.child.poll() == nil, "the service stopped: \(run.stderr.suffix(2000))")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// The server's notices go to the log, not raw to standard error: a JSON log stays one
    /// object a line, a WARNING is a warning record, and a NOTICE is kept for debug.
    @Test func aJobsNoticesGoToTheLog() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.seedOldRun(setup.db, job: "noisy")
        let path = try Self.configFile(Self.entry("noisy", cron: "0 3 * * *",
                                                  sql: "DO $$ BEGIN RAISE NOTICE 'quiet note'; RAISE WARNING 'loud note'; END $$"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var environment = setup.environment
        environment["CHANGERELAY_LOG_FORMAT"] = "json"
        let run = try Background(["run", "--config", path], environment: environment)
        try RunPipelineTests.waitFor("the run", timeout: .seconds(30)) { try Self.finished(setup.db, job: "noisy") }
        try RunPipelineTests.waitFor("the warning in the log", timeout: .seconds(10)) { run.stderr.contains("loud note") }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let lines = run.stderr.split(separator: "\n")
        for line in lines { #expect((try? JSONParser.parse(Array(line.utf8))) != nil, "not JSON: \(line)") }
        #expect(lines.contains { $0.contains("loud note") && $0.contains(#""level":"warning""#) }, "\(run.stderr.suffix(2000))")
        #expect(!run.stderr.contains("quiet note"))
    }

    /// A job's session is kept for its next runs and shared with the other jobs on its
    /// database: a transaction its SQL leaves open is rolled back and the run recorded as
    /// failed, and what it set does not reach the next job.
    @Test func whatAJobLeavesInItsSessionDoesNotReachTheNext() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("CREATE TABLE ticks (id int); CREATE SCHEMA other; CREATE TABLE other.ticks (id int)")
        for job in ["open", "setter", "after"] { try Self.seedOldRun(setup.db, job: job) }
        // The same cron: due at the same minute, they run in this order.
        let path = try Self.configFile(Self.entry("open", cron: "0 3 * * *", sql: "BEGIN; INSERT INTO ticks VALUES (1)")
            + Self.entry("setter", cron: "0 3 * * *", sql: "SET search_path = other")
            + Self.entry("after", cron: "0 3 * * *", sql: "INSERT INTO ticks VALUES (3)"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the three runs", timeout: .seconds(30)) {
            try ["open", "setter", "after"].allSatisfy { job in try Self.finished(setup.db, job: job) }
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let runs = try setup.db.execute("""
            SELECT schedule, coalesce(error, '-'), coalesce(rows::text, '-') FROM changerelay.schedule_runs
            WHERE instance <> 'seed' ORDER BY started_at
            """).rows
        #expect(runs.map { $0[0] } == ["open", "setter", "after"], "\(runs)")
        #expect(runs.first?[1]?.contains("left a transaction open, so it was rolled back") == true, "\(runs)")
        #expect(runs.dropFirst().allSatisfy { $0[1] == "-" }, "\(runs)")
        #expect(try setup.db.execute("SELECT string_agg(id::text, ',') AS ids FROM public.ticks").value("ids") == "3")
        #expect(try setup.db.execute("SELECT count(*) AS n FROM other.ticks").value("n") == "0")
    }

    /// A job past its `timeout_ms` (one waiting for a lock that is never released) is
    /// cancelled by the server and recorded as failed, saying so; the job due after it runs,
    /// and a later job keeps the session's default again: no limit.
    @Test func aJobPastItsTimeoutIsCancelledAndTheNextRuns() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("CREATE TABLE ticks (id int); CREATE TABLE seen (setting text)")
        for job in ["hung", "after"] { try Self.seedOldRun(setup.db, job: job) }
        let holder = try PostgresConnection(url: setup.cluster.url)
        try holder.execute("BEGIN; LOCK TABLE ticks IN ACCESS EXCLUSIVE MODE")
        let path = try Self.configFile(Self.entry("hung", cron: "0 3 * * *", sql: "INSERT INTO ticks VALUES (1)") + "timeout_ms = 300\n"
            + Self.entry("after", cron: "0 3 * * *", sql: "INSERT INTO seen SELECT current_setting('statement_timeout')"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("both runs", timeout: .seconds(30)) {
            try Self.finished(setup.db, job: "hung") && Self.finished(setup.db, job: "after")
        }
        let runs = try setup.db.execute("""
            SELECT schedule, coalesce(error, '-') FROM changerelay.schedule_runs WHERE instance <> 'seed' ORDER BY started_at
            """).rows
        #expect(runs.map { $0[0] } == ["hung", "after"], "\(runs)")
        #expect(runs.first?[1]?.contains("canceling statement due to statement timeout") == true, "\(runs)")
        #expect(runs.last?[1] == "-", "\(runs)")
        try holder.execute("ROLLBACK")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT count(*) AS n FROM ticks").value("n") == "0")
        #expect(try setup.db.execute("SELECT string_agg(setting, ',') AS s FROM seen").value("s") == "0")
    }

    /// A run under way when the service is asked to stop finishes, and its outcome is
    /// recorded before the service exits: its row does not read `running` afterwards.
    @Test func aRunUnderWayAtStopIsRecorded() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.seedOldRun(setup.db, job: "slow")
        let path = try Self.configFile(Self.entry("slow", cron: "0 3 * * *", sql: "SELECT pg_sleep(2)"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the run to start", timeout: .seconds(30)) {
            try setup.db.execute("""
                SELECT count(*) AS n FROM changerelay.schedule_runs WHERE schedule = 'slow' AND instance <> 'seed'
                """).value("n") == "1"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let row = try setup.db.execute("""
            SELECT finished_at IS NOT NULL AS finished, coalesce(error, '-') AS error FROM changerelay.schedule_runs
            WHERE schedule = 'slow' AND instance <> 'seed'
            """)
        #expect(row.value("finished") == "t" && row.value("error") == "-", "\(row.rows) \(run.stderr.suffix(2000))")
    }

    /// Another instance claims a tick and dies before finishing it: this one, running, saw the
    /// tick claimed and passed over it, and catches it up within its sweep instead of leaving
    /// it lost until some instance starts again.
    @Test func aRunAnotherInstanceLeftUnfinishedIsCaughtUpWhileThisOneRuns() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("CREATE TABLE marks (n int)")
        try Self.seedOldRun(setup.db, job: "nightly")
        var holder: PostgresConnection? = try setup.cluster.connect()
        try holder?.execute("""
            SELECT pg_advisory_lock(hashtextextended('changerelay.schedule:nightly', 0));
            INSERT INTO changerelay.schedule_runs (schedule, due_at, instance)
            VALUES ('nightly', (date_trunc('day', (now() AT TIME ZONE 'UTC') - interval '3 hours') + interval '3 hours') AT TIME ZONE 'UTC',
                    'holder:1')
            """)
        let path = try Self.configFile(Self.entry("nightly", cron: "0 3 * * *", sql: "INSERT INTO marks VALUES (1)"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the service to stream") { run.stderr.contains("streaming") }
        #expect(try setup.db.execute("SELECT count(*) AS n FROM marks").value("n") == "0", "the tick is the holder's")
        holder = nil
        try RunPipelineTests.waitFor("the interrupted tick to run here", timeout: .seconds(40)) {
            try setup.db.execute("SELECT count(*) AS n FROM marks").value("n") == "1"
        }
        try RunPipelineTests.waitFor("its run to be recorded", timeout: .seconds(10)) { try Self.finished(setup.db, job: "nightly") }
        let runs = try setup.db.execute("""
            SELECT instance, finished_at IS NOT NULL AS finished FROM changerelay.schedule_runs
            WHERE schedule = 'nightly' AND instance <> 'seed'
            """).rows
        #expect(runs.count == 1 && runs[0][0] != "holder:1" && runs[0][1] == "t", "\(runs)")
        #expect(run.stderr.contains("a scheduled run was interrupted"))
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// kill -9 while a job's statement runs: the server sees the service gone and rolls the
    /// statement back, and the next start runs the job once more (its interrupted run is
    /// forgotten, not counted as done).
    @Test func aRunKilledMidwayRunsOnceMoreAtTheNextStart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("CREATE TABLE marks (n int)")
        try Self.seedOldRun(setup.db, job: "slow")
        let path = try Self.configFile(Self.entry("slow", cron: "0 3 * * *", sql: "INSERT INTO marks SELECT 1 FROM pg_sleep(4)"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let killed = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the statement under way", timeout: .seconds(30)) {
            try setup.db.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'INSERT INTO marks%'")
                .value("n") == "1"
        }
        killed.child.signal(SIGKILL)
        _ = killed.waitForExit()
        try RunPipelineTests.waitFor("the server to end the orphaned statement", timeout: .seconds(10)) {
            try setup.db.execute("""
                SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'INSERT INTO marks%' AND state = 'active'
                """).value("n") == "0"
        }
        #expect(try setup.db.execute("SELECT count(*) AS n FROM marks").value("n") == "0")

        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the run again", timeout: .seconds(30)) { try Self.finished(setup.db, job: "slow") }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT count(*) AS n FROM marks").value("n") == "1")
        let runs = try setup.db.execute("""
            SELECT count(*) AS n, count(*) FILTER (WHERE finished_at IS NOT NULL AND error IS NULL) AS ok
            FROM changerelay.schedule_runs WHERE schedule = 'slow' AND instance <> 'seed'
            """)
        #expect(runs.value("n") == "1" && runs.value("ok") == "1", "\(runs.rows)")
        #expect(run.stderr.contains("was interrupted"), "\(run.stderr.suffix(2000))")
    }

    /// The session a job keeps between its ticks may be cut meanwhile (a restart, a failover,
    /// an idle timeout): the next tick opens a new one rather than failing on the old.
    @Test func aJobWhoseSessionWasCutBetweenTicksRunsOnANewOne() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let path = try Self.tickingJob(setup.db)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Background(["run", "--config", path], environment: setup.environment)
        try RunPipelineTests.waitFor("the catch-up run", timeout: .seconds(30)) { try Self.finished(setup.db, job: "tick") }
        // The job's session is the one whose last statement was the job's, or the reset after it.
        try RunPipelineTests.waitFor("the job's session to be cut", timeout: .seconds(10)) {
            try setup.db.execute("""
                SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                WHERE query IN ('INSERT INTO ticks DEFAULT VALUES', 'DISCARD ALL') AND pid <> pg_backend_pid()
                """).value("n") == "1"
        }
        // The next minute's tick.
        try RunPipelineTests.waitFor("a second run", timeout: .seconds(90)) {
            try setup.db.execute("""
                SELECT count(*) AS n FROM changerelay.schedule_runs WHERE schedule = 'tick' AND instance <> 'seed'
                AND finished_at IS NOT NULL
                """).value("n") == "2"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let errors = try setup.db.execute("""
            SELECT count(error) AS n FROM changerelay.schedule_runs WHERE schedule = 'tick'
            """).value("n")
        #expect(errors == "0", "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT count(*) AS n FROM ticks").value("n")
            == setup.db.execute("SELECT count(*) AS n FROM changerelay.schedule_runs WHERE schedule = 'tick' AND instance <> 'seed'").value("n"))
    }

    /// `schedules list` reads the configuration and schedule_runs: no instance needs to run.
    @Test func schedulesListShowsEachJobsLastAndNextRun() throws {
        let cluster = try startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("""
            INSERT INTO changerelay.schedule_runs (schedule, due_at, started_at, finished_at, rows, error, instance) VALUES
              ('cache', '2026-03-01 12:00+00', '2026-03-01 12:00:00.004+00', '2026-03-01 12:00:01+00', 17, NULL, 'a'),
              ('broken', '2026-03-01 04:00+00', '2026-03-01 04:00:00.002+00', '2026-03-01 04:00:00.01+00', NULL,
               E'relation "x" does not exist\\nLINE 1: DELETE FROM x', 'a')
            """)
        let path = try Self.configFile(Self.entry("cache", cron: "*/15 * * * *", sql: "DELETE FROM search_cache")
            + Self.entry("broken", cron: "0 4 * * *", sql: "DELETE FROM x") + Self.entry("weekly", cron: "0 3 * * 0", sql: "VACUUM"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runChangeRelay(["schedules", "list", "--config", path],
                                        environment: ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines.first == ["name", "cron", "last_started", "outcome", "rows", "next_run"])
        #expect(lines.dropFirst().map { $0[0] } == ["changerelay.delivery_retention", "changerelay.buffer_marks", "cache", "broken",
                                                    "weekly"])
        let byName = Dictionary(uniqueKeysWithValues: lines.dropFirst().map { ($0[0], $0) })
        #expect(byName["cache"]?[1...4] == ["*/15 * * * *", "2026-03-01T12:00:00Z", "ok", "17"])
        #expect(byName["broken"]?[3] == #"error: relation "x" does not exist"#)
        #expect(byName["weekly"]?[2...4] == ["-", "never run", "-"])
        // Next runs are in the future, in UTC, on the expression's minutes.
        let now = Date()
        let formatter = ISO8601DateFormatter()
        for line in lines.dropFirst() {
            let next = try #require(formatter.date(from: line[5]), "\(line)")
            #expect(next > now && next < now.addingTimeInterval(8 * 86_400))
        }
        #expect(byName["weekly"]?[5].hasSuffix("T03:00:00Z") == true)
    }

    /// Retention deletes old succeeded deliveries only; `deliveries purge --dead` old dead ones only.
    @Test func retentionAndPurgeDeleteOnlyWhatTheyName() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, status,
                                                next_attempt_at, completed_at, updated_at)
            SELECT key, 'echo', '0/0', 'http://127.0.0.1:9/', '{}', '{}', status, now() + interval '1 day',
                   CASE WHEN status IN ('succeeded', 'dead') THEN now() - age END, now() - age
            FROM (VALUES ('succeeded-old', 'succeeded', interval '10 days'), ('succeeded-new', 'succeeded', interval '1 day'),
                         ('dead-old', 'dead', interval '10 days'), ('dead-new', 'dead', interval '1 day'),
                         ('failed-old', 'failed', interval '10 days')) AS v(key, status, age);
            INSERT INTO changerelay.delivery_attempts (delivery_id, attempt, started_at)
            SELECT id, 1, now() - interval '10 days' FROM changerelay.deliveries WHERE idempotency_key = 'succeeded-old';
            """)
        try Self.seedOldRun(setup.db, job: "changerelay.delivery_retention")
        let run = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("the retention run", timeout: .seconds(30)) {
            try Self.finished(setup.db, job: "changerelay.delivery_retention")
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        func keys() throws -> [String] {
            try setup.db.execute("SELECT idempotency_key FROM changerelay.deliveries ORDER BY idempotency_key").rows.map { $0[0]! }
        }
        #expect(try keys() == ["dead-new", "dead-old", "failed-old", "succeeded-new"])
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.delivery_attempts").value("n") == "0")
        #expect(try setup.db.execute("""
            SELECT rows::text AS rows FROM changerelay.schedule_runs WHERE schedule = 'changerelay.delivery_retention' AND instance <> 'seed'
            """).value("rows") == "1")

        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": setup.cluster.url]
        let noFlag = try runChangeRelay(["deliveries", "purge", "--older-than", "5d"], environment: environment)
        #expect(noFlag.status != 0 && noFlag.stderr.contains("--dead"), "\(noFlag.stderr)")
        let badAge = try runChangeRelay(["deliveries", "purge", "--dead", "--older-than", "5 days"], environment: environment)
        #expect(badAge.status != 0 && badAge.stderr.contains("--older-than"), "\(badAge.stderr)")
        let purge = try runChangeRelay(["deliveries", "purge", "--dead", "--older-than", "5d"], environment: environment)
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(purge.stdout == "purged 1 dead delivery\n")
        #expect(try keys() == ["dead-new", "failed-old", "succeeded-new"])
    }

    /// A database without 015 is refused by name (its rollback is what removes it here).
    @Test func aDatabaseWithoutTheSchedulesMigrationIsRefusedByName() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let rollback = try String(contentsOfFile: repositoryRoot + "/sql/015_schedules.rollback.sql", encoding: .utf8)
        try setup.db.execute(rollback)
        try setup.db.execute(rollback)
        #expect(try setup.db.execute("SELECT to_regclass('changerelay.schedule_runs') IS NULL AS gone")
            .value("gone") == "t")
        let run = try runChangeRelay(["run"], environment: setup.environment, timeout: .seconds(60))
        #expect(run.status != 0 && run.stderr.contains("sql/015_schedules.sql"), "\(run.stderr)")
        let list = try runChangeRelay(["schedules", "list"], environment: setup.environment)
        #expect(list.status != 0 && list.stderr.contains("sql/015_schedules.sql"), "\(list.stderr)")
    }

    @Test func aBadCronStopsRunNamingTheScheduleAndField() throws {
        let path = try Self.configFile(Self.entry("cache", sql: "SELECT 1")
            + Self.entry("vacuum", cron: "0 24 * * *", sql: "VACUUM"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runChangeRelay(["run", "--config", path],
                                        environment: ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"])
        #expect(result.status != 0)
        #expect(result.stderr.contains(#"schedules[1] "vacuum": cron field "hour": 24 is out of range 0-23"#), "\(result.stderr)")
        #expect(result.stderr.contains("line 7"), "\(result.stderr)")
    }
}
