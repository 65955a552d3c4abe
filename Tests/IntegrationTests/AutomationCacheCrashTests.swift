import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// The automation workflow cache after kill -9: a job change is planned against the
/// workflows of its own commit, whether it is read the first time or again after a crash.
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
}
