import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// The automations and webhooks learn their workflows, completions and configs from the
/// stream. Turned off for a while (README advises it to get past old UPDATEs), they still
/// follow those changes, so that turned on again they plan with what is current, not with
/// what they knew when they went off.
@Suite struct FollowingWhileOffTests {
    /// The changes `log` holds from the stream (the seed's rows are at 0/0).
    static func followed(_ log: String, _ db: PostgresConnection) throws -> Int {
        Int(try db.execute("SELECT count(*) AS n FROM changerelay.\(log) WHERE commit_lsn > '0/0'").value("n") ?? "") ?? -1
    }

    @Test func workflowsAndConfigsChangedWhileTheHandlersWereOffCountWhenTheyAreOnAgain() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        var environment = ConversationChecksTests.environment(setup)
        environment.merge(WebhooksTests.environment(setup).filter { $0.key.hasPrefix("CHANGERELAY_WEBHOOKS") }) { $1 }
        let before = try AutomationsTests.insertWorkflow(db)
        try WebhooksTests.addConfig(setup, name: "before", events: ["chat.session.started"], path: "/before")

        // 1. On: the caches are seeded from the tables.
        var run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the service to log the inserts") {
            try Self.followed("automation_workflow_log", db) == 1 && Self.followed("webhook_config_log", db) == 1
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")

        // 2. Off: the workflow and the config are turned off and replaced meanwhile. Following
        // plans no delivery, so it needs none of the migrations that queue them (035 rolled back).
        let numbering = repositoryRoot + "/sql/035_webhook_log_ids_reserved"
        try db.execute(try String(contentsOfFile: numbering + ".rollback.sql", encoding: .utf8))
        var off = environment
        off["CHANGERELAY_AUTOMATIONS_ENABLED"] = "false"
        off["CHANGERELAY_WEBHOOKS_ENABLED"] = "false"
        run = try Background(["run"], environment: off)
        try RunPipelineTests.waitFor("the service to stream") { run.stderr.contains("streaming") }
        #expect(run.stderr.contains("automations are off: only their workflow and completion logs follow the stream"))
        #expect(run.stderr.contains("webhooks are off: only their config log follows the stream"), "\(run.stderr.suffix(2000))")
        try db.query("UPDATE automation_workflows SET is_active = false WHERE id = $1::uuid", [before])
        let after = try AutomationsTests.insertWorkflow(db)
        try db.execute("UPDATE webhook_configs SET is_active = false WHERE name = 'before'")
        try WebhooksTests.addConfig(setup, name: "after", events: ["chat.session.started"], path: "/after")
        try RunPipelineTests.waitFor("the off run to log both changes of each") {
            try Self.followed("automation_workflow_log", db) == 3 && Self.followed("webhook_config_log", db) == 3
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(AutomationsTests.executorRequests(setup.receiver).isEmpty, "nothing is sent while they are off")
        try db.execute(try String(contentsOfFile: numbering + ".sql", encoding: .utf8))

        // 3. On again: a job change fires the new workflow only, a session reaches the new config only.
        run = try Background(["run"], environment: environment)
        let job = try AutomationsTests.insertJob(db)
        try db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try db.execute("INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001')")
        try RunPipelineTests.waitFor("the job's execution and the session's webhook") {
            AutomationsTests.executorRequests(setup.receiver).contains { $0.bodyText.contains(job) }
                && setup.receiver.requests.contains { $0.path == "/after" }
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let fired = AutomationsTests.executorRequests(setup.receiver).map(\.bodyText)
        #expect(fired.count == 1 && fired.allSatisfy { $0.contains(after) && !$0.contains(before) }, "\(fired)")
        #expect(!setup.receiver.requests.contains { $0.path == "/before" })
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE endpoint LIKE 'webhook:%'")
            .value("n") == "1", "no delivery planned for the config turned off")
    }
}
