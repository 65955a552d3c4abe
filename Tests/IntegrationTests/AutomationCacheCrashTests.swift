import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// The automation cache after a stop or kill -9: a job change is planned against the
/// workflows and completions of its own commit, whether it is read the first time or again.
@Suite struct AutomationCacheCrashTests {
    static func firings(_ db: PostgresConnection) throws -> [String] {
        try db.execute("""
            SELECT (trigger_data->>'job_id') || ' ' || workflow_id::text AS firing
            FROM automation_execution_logs ORDER BY 1
            """).rows.compactMap { $0[0] }
    }

    static func loggedChanges(_ db: PostgresConnection) throws -> Int {
        Int(try db.execute("SELECT count(*) AS n FROM changerelay.automation_workflow_log WHERE commit_lsn > '0/0'")
            .value("n") ?? "") ?? -1
    }

    @Test func killedBetweenAWorkflowChangeAndAJobChangeEachJobFiresTheWorkflowsOfItsCommit() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        let first = try AutomationsTests.insertWorkflow(db)
        let jobA = try AutomationsTests.insertJob(db)
        let jobB = try AutomationsTests.insertJob(db)
        let jobC = try AutomationsTests.insertJob(db)
        let environment = ConversationChecksTests.environment(setup)

        // 1. The service follows a workflow change live, checkpoints it, and is killed.
        var run = try Background(["run"], environment: environment)
        let second = try AutomationsTests.insertWorkflow(db, active: false)
        try RunPipelineTests.waitFor("the service to log the workflow inserts") { try Self.loggedChanges(db) == 2 }
        run.child.signal(SIGKILL)
        run.child.wait()

        // 2. While it is down: job A changes under the first workflow, then the workflows
        //    swap, then job B changes; job C only after a later swap back, all unread.
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [jobA])
        try db.query("UPDATE automation_workflows SET is_active = (id = $1::uuid)", [second])
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [jobB])
        try db.query("UPDATE automation_workflows SET is_active = (id = $1::uuid)", [first])
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [jobC])

        // 3. Restarted, it must plan job A against [first], B against [second], C against [first]:
        //    the table as it is now (first active) would wrongly fire first for B.
        run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("three executions") { try Self.firings(db).count >= 3 }
        #expect(try Self.firings(db) == ["\(jobA) \(first)", "\(jobB) \(second)", "\(jobC) \(first)"].sorted())
        // Kill once more right after, and restart: nothing is planned twice.
        run.child.signal(SIGKILL)
        run.child.wait()
        run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the workflow log to hold every change") { try Self.loggedChanges(db) == 6 }
        let marker = try AutomationsTests.insertJob(db)
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [marker])
        try RunPipelineTests.waitFor("the marker's execution") { try Self.firings(db).count >= 4 }
        run.child.signal(SIGTERM)
        _ = run.waitForExit()

        #expect(try Self.firings(db) == ["\(jobA) \(first)", "\(jobB) \(second)", "\(jobC) \(first)", "\(marker) \(first)"].sorted())
    }

    /// A completion's `completed_at` is when its recording transaction began, which can be
    /// before a job change that commits first. Read live, that change is planned before the
    /// stream brings the completion, and fires; read after a restart, it must fire too. The
    /// loader used to read every recent completion from `automation_execution_logs` and
    /// skipped it as rate limited. One committed before its job change still limits it.
    @Test func onlyCompletionsCommittedBeforeAJobChangeLimitItAfterARestart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        let workflow = try AutomationsTests.insertWorkflow(db)
        let late = try AutomationsTests.insertJob(db)
        let early = try AutomationsTests.insertJob(db)
        let environment = ConversationChecksTests.environment(setup)
        // The first run reads the workflow's insert, and with it the completion log begins.
        var run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the workflow to be read") { try Self.loggedChanges(db) == 1 }
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.automation_completion_log WHERE job_id IS NULL")
            .value("n") == "1")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")

        func complete(_ job: String, on connection: PostgresConnection) throws {
            try connection.query("""
                INSERT INTO automation_execution_logs (workflow_id, trigger_type, status, trigger_data, completed_at)
                VALUES ($1::uuid, 'job_status_changed', 'completed',
                        jsonb_build_object('job_id', $2::text, 'new_status', 'completed'), now())
                """, [workflow, job])
        }
        // While it is down: a completion of `late` begins, `late` changes and commits, then
        // the completion commits; a completion of `early` commits before `early` changes.
        let other = try setup.cluster.connect()
        try other.execute("BEGIN")
        try complete(late, on: other)
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [late])
        try other.execute("COMMIT")
        try complete(early, on: db)
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [early])

        run = try Background(["run"], environment: environment)
        func planned(_ job: String) throws -> String? {
            try db.query("""
                SELECT status FROM automation_execution_logs
                WHERE trigger_data->>'job_id' = $1 AND trigger_data ? 'job' ORDER BY created_at
                """, [job]).rows.first?[0]
        }
        try RunPipelineTests.waitFor("both job changes planned") { try planned(late) != nil && planned(early) != nil }
        try #require(try planned(late) != "skipped", "a completion committed after the job change limited it")
        try RunPipelineTests.waitFor("the late job's execution") {
            AutomationsTests.executorRequests(setup.receiver).contains { $0.bodyText.contains(late) }
        }
        #expect(try planned(early) == "skipped")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(AutomationsTests.executorRequests(setup.receiver).map(\.bodyText).filter { $0.contains(early) }.isEmpty)
        #expect(try planned(late) == "completed")
    }
}
