import Core
import Foundation
import LocalReceiver
import Replication
import Testing

/// The seed handlers' guarantees across kill -9: log rows are written exactly once (in
/// the checkpoint transaction) and every planned call reaches the receiver.
@Suite struct HandlerKillTests {
    @Test(.tags(.soak), .enabled(if: soaksEnabled)) func killNineDuringABurstOfConversationsAndJobChanges() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = ConversationChecksTests.environment(setup)
        let users = 50, perBatch = 100, batches = 50
        try setup.db.execute("""
            INSERT INTO automation_workflows (user_id, name, trigger_type, trigger_config, is_active, status)
            SELECT ('00000000-0000-0000-0000-' || lpad(u::text, 12, '0'))::uuid, 'on completion', 'job_status_changed',
                   '{"conditions": [{"field": "status", "value": "completed"}]}', true, 'active'
            FROM generate_series(1, \(users)) u;
            INSERT INTO jobs (user_id, title, status)
            SELECT ('00000000-0000-0000-0000-' || lpad((g % \(users) + 1)::text, 12, '0'))::uuid, 'job ' || g, 'pending'
            FROM generate_series(1, \(perBatch * batches)) g;
            """)
        let writer = Thread {
            guard let db = try? setup.cluster.connect() else { return }
            for batch in 0..<batches {
                _ = try? db.execute("""
                    INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id)
                    SELECT 'clerk', 'agent', 'el-' || g FROM generate_series(\(batch * perBatch + 1), \((batch + 1) * perBatch)) g;
                    UPDATE jobs SET status = 'completed' WHERE title IN (
                        SELECT 'job ' || g FROM generate_series(\(batch * perBatch + 1), \((batch + 1) * perBatch)) g);
                    """)
            }
        }
        writer.start()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5 {
            let run = try Background(["run"], environment: environment)
            // Each kill lands while the run streams, not while it is still starting.
            try RunPipelineTests.waitFor("the run to stream") { run.stderr.contains("streaming") }
            usleep(UInt32.random(in: 300_000...1_500_000, using: &generator))
            run.child.signal(SIGKILL)
            _ = run.waitForExit()
        }
        let total = perBatch * batches
        let final = try Background(["run"], environment: environment)
        // Its SIGTERM must find the service running, not starting: what it waits for may all be done by then.
        try RunPipelineTests.waitFor("the last run to stream") { final.stderr.contains("streaming") }
        try RunPipelineTests.waitFor("every change planned and sent", timeout: .seconds(300)) {
            let counts = try setup.db.execute("""
                SELECT (SELECT count(*) FROM user_conversations) AS conversations,
                       (SELECT count(*) FROM jobs WHERE status = 'completed') AS jobs,
                       (SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded') AS sent
                """)
            return counts.value("conversations") == String(total) && counts.value("jobs") == String(total)
                && counts.value("sent") == String(2 * total)
        }
        final.child.signal(SIGTERM)
        #expect(final.waitForExit() == 0)

        let conversations = try setup.db.execute("""
            SELECT count(*) FILTER (WHERE queued <> 1) AS wrong, count(*) AS n FROM (
                SELECT (SELECT count(*) FROM trigger_execution_logs t
                        WHERE t.record_id = c.id::text AND t.trigger_name = 'check_conversations_trigger') AS queued
                FROM user_conversations c) x
            """)
        #expect(conversations.value("n") == String(total) && conversations.value("wrong") == "0")
        let executions = try setup.db.execute("""
            SELECT count(*) AS n, count(DISTINCT trigger_data->>'job_id') AS jobs,
                   count(*) FILTER (WHERE status = 'completed') AS completed
            FROM automation_execution_logs
            """)
        #expect(executions.value("n") == String(total) && executions.value("jobs") == String(total))
        #expect(executions.value("completed") == String(total))
        let planned = Set(try setup.db.execute("SELECT idempotency_key FROM changerelay.deliveries").rows.compactMap { $0[0] })
        #expect(planned.count == 2 * total)
        #expect(planned.isSubset(of: RunPipelineTests.distinctKeys(setup.receiver)))
    }
}
