import Core
import Decoding
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Testing

/// The automation handler through `changerelay run`: which workflows fire, the seed's
/// body and log rows, the rate limit, retries, and malformed rows.
@Suite struct AutomationsTests {
    static let user = "00000000-0000-0000-0000-0000000000a1"
    static let otherUser = "00000000-0000-0000-0000-0000000000b2"

    static func insertWorkflow(_ db: PostgresConnection, user: String = user, active: Bool = true,
                               config: String = #"{"conditions": [{"field": "status", "value": "completed"}]}"#) throws -> String {
        try db.query("""
            INSERT INTO automation_workflows (user_id, name, trigger_type, trigger_config, is_active, status)
            VALUES ($1, 'notify', 'job_status_changed', $2::jsonb, $3::boolean, 'active') RETURNING id::text
            """, [user, config, active ? "true" : "false"]).value("id") ?? ""
    }

    static func insertJob(_ db: PostgresConnection, user: String? = user, status: String = "pending") throws -> String {
        try db.query("INSERT INTO jobs (user_id, title, status) VALUES ($1, 'Fix the sink', $2) RETURNING id::text",
                     [user, status]).value("id") ?? ""
    }

    static func executorRequests(_ receiver: LocalReceiver) -> [RecordedRequest] {
        receiver.requests.filter { $0.path.hasSuffix("/automation-executor") }
    }

    static func logs(_ db: PostgresConnection, status: String) throws -> Int {
        Int(try db.query("SELECT count(*) AS n FROM automation_execution_logs WHERE status = $1", [status]).value("n") ?? "") ?? -1
    }

    @Test func aStatusChangeFiresOnlyMatchingWorkflowsOnceWithTheSeedsBody() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let matching = try Self.insertWorkflow(setup.db)
        _ = try Self.insertWorkflow(setup.db, user: Self.otherUser)
        _ = try Self.insertWorkflow(setup.db, active: false)
        _ = try Self.insertWorkflow(setup.db, config: #"{"conditions": [{"field": "status", "value": "cancelled"}]}"#)
        let job = try Self.insertJob(setup.db)
        let run = try Background(["run"], environment: ConversationChecksTests.environment(setup))
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the execution to complete") { try Self.logs(setup.db, status: "completed") == 1 }

        let request = try #require(Self.executorRequests(setup.receiver).first)
        #expect(request.header("Authorization") == "Bearer " + ConversationChecksTests.serviceKey)
        #expect(request.header("Idempotency-Key")?.hasPrefix("automations:") == true)
        let body = try JSONParser.parse(request.body)
        #expect(body["workflowId"] == .string(matching))
        let context = body["context"]
        #expect(context?["job_id"] == .string(job) && context?["jobId"] == .string(job))
        #expect(context?["userId"] == .string(Self.user) && context?["triggerType"] == .string("job_status_changed"))
        #expect(context?["new_status"] == .string("completed") && context?["old_status"] == .string("pending"))
        let log = try setup.db.query("""
            SELECT id::text, workflow_id::text, attempts::text, completed_at IS NOT NULL AS done, trigger_data::text
            FROM automation_execution_logs
            """, [])
        #expect(log.rows.count == 1)
        #expect(log.value("id").map { .string($0) } == body["executionId"])
        #expect(log.value("workflow_id") == matching && log.value("attempts") == "1" && log.value("done") == "t")
        let data = try JSONParser.parse(try #require(log.value("trigger_data")))
        #expect(data["job_id"] == .string(job) && data["userId"] == .string(Self.user))
        #expect(data["job"]?["title"] == .string("Fix the sink") && data["job"]?["status"] == .string("completed"))

        // The same status written again fires nothing; the marker job proves it was planned.
        try setup.db.query("UPDATE jobs SET status = 'completed', title = 'again' WHERE id = $1", [job])
        // A second change to `completed` within the window is skipped, with the reason.
        try setup.db.query("UPDATE jobs SET status = 'reopened' WHERE id = $1", [job])
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the skipped row") { try Self.logs(setup.db, status: "skipped") == 1 }
        let skipped = try setup.db.execute("SELECT error_message FROM automation_execution_logs WHERE status = 'skipped'")
        #expect(skipped.value("error_message")?.contains("rate limited") == true)

        // A workflow inserted while running fires for the next job change after it.
        let fresh = try Self.insertWorkflow(setup.db, config: #"{"conditions": [{"field": "status", "value": "archived"}]}"#)
        try setup.db.query("UPDATE jobs SET status = 'archived' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the new workflow's execution") { try Self.logs(setup.db, status: "completed") == 2 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let requests = Self.executorRequests(setup.receiver)
        #expect(requests.count == 2)
        #expect(try requests.map { try JSONParser.parse($0.body)["workflowId"] } == [.string(matching), .string(fresh)])
    }

    @Test func aFailedCallIsRetriedWithTheSameExecutionID() throws {
        let setup = try RunPipelineTests.prepare(behavior: .sequence([.status(500), .status(200)]))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        _ = try Self.insertWorkflow(setup.db)
        let job = try Self.insertJob(setup.db)
        let run = try Background(["run"], environment: ConversationChecksTests.environment(setup))
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the execution to complete") { try Self.logs(setup.db, status: "completed") == 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let requests = Self.executorRequests(setup.receiver)
        #expect(requests.count == 2)
        let ids = try requests.map { try JSONParser.parse($0.body)["executionId"] }
        #expect(ids.count == 2 && ids[0] == ids[1])
        #expect(Set(requests.compactMap { $0.header("Idempotency-Key") }).count == 1)
        let log = try setup.db.execute("SELECT count(*) AS n, max(attempts) AS attempts FROM automation_execution_logs")
        #expect(log.value("n") == "1" && log.value("attempts") == "2")
    }

    /// Runs the service against a receiver that fails every call until the one
    /// execution, allowed two tries, is given up on; returns the service's environment.
    static func runUntilAnExecutionFails(_ setup: RunPipelineTests.Setup) throws -> [String: String] {
        setup.receiver.behavior = .status(500)
        _ = try insertWorkflow(setup.db)
        let job = try insertJob(setup.db)
        var environment = ConversationChecksTests.environment(setup)
        environment["CHANGERELAY_AUTOMATIONS_MAX_ATTEMPTS"] = "2"
        let run = try Background(["run"], environment: environment)
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the execution to fail") { try logs(setup.db, status: "failed") == 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        return environment
    }

    @Test func anExecutorThatAlwaysFailsEndsFailedWithTheError() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        _ = try Self.runUntilAnExecutionFails(setup)
        let log = try setup.db.execute("SELECT attempts, error_message, completed_at FROM automation_execution_logs")
        #expect(log.value("attempts") == "2" && log.value("completed_at") == nil)
        #expect(log.value("error_message")?.contains("gave up after 2 attempts") == true)
        #expect(Self.executorRequests(setup.receiver).count == 2)
    }

    /// An execution given up on and re-queued by `deliveries retry`: its log row is
    /// `processing` again (no error, not completed) until a later try completes it, and
    /// the tries go on from attempt 3 with a whole allowance of two behind them.
    @Test func aRetriedExecutionIsProcessingAgainAndItsAttemptsRunOn() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = try Self.runUntilAnExecutionFails(setup)
        let retried = try runChangeRelay(["deliveries", "retry", "--all-dead"], environment: environment)
        #expect(retried.stdout.contains("re-queued 1 delivery"), "\(retried.stdout)\(retried.stderr)")
        let reopened = try setup.db.execute("SELECT status, attempts, error_message, completed_at FROM automation_execution_logs")
        #expect(reopened.value("status") == "processing" && reopened.value("attempts") == "2")
        #expect(reopened.value("error_message") == nil && reopened.value("completed_at") == nil)

        // One more failure, then an answer: without a fresh allowance the failure would end it.
        setup.receiver.behavior = .sequence([.status(500), .status(200)])
        let recovered = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the execution to complete") { try Self.logs(setup.db, status: "completed") == 1 }
        recovered.child.signal(SIGTERM)
        #expect(recovered.waitForExit() == 0)
        let log = try setup.db.execute("""
            SELECT attempts, error_message, completed_at IS NOT NULL AS done FROM automation_execution_logs
            """)
        #expect(log.value("attempts") == "4" && log.value("error_message") == nil && log.value("done") == "t")
        let tries = try setup.db.execute("""
            SELECT string_agg(attempt || ':' || coalesce(http_status::text, '-'), ',' ORDER BY id) AS tries
            FROM changerelay.delivery_attempts
            """)
        #expect(tries.value("tries") == "1:500,2:500,3:500,4:200")
        #expect(Self.executorRequests(setup.receiver).count == 4)
    }

    /// Malformed workflows and a job without a user are logged with the reason and skipped;
    /// the stream goes on, as a well-formed workflow firing afterwards shows.
    @Test func malformedRowsAreLoggedAndSkipped() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("ALTER TABLE jobs ALTER COLUMN user_id DROP NOT NULL")
        let run = try Background(["run"], environment: ConversationChecksTests.environment(setup))
        try RunPipelineTests.waitFor("the service to start") { run.stderr.contains("automation cache loaded") }
        let notObject = try Self.insertWorkflow(setup.db, config: #"["status", "completed"]"#)
        let wrongShape = try Self.insertWorkflow(setup.db, config: #"{"conditions": {"field": "status", "value": "completed"}}"#)
        let orphan = try Self.insertJob(setup.db, user: nil)
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [orphan])
        let good = try Self.insertWorkflow(setup.db)
        let job = try Self.insertJob(setup.db)
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the good workflow's execution") { try Self.logs(setup.db, status: "completed") == 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let log = run.stderr
        #expect(log.contains(notObject) && log.contains("trigger_config is not a JSON object"))
        #expect(log.contains(wrongShape) && log.contains("trigger_config.conditions is not an array"))
        #expect(log.contains(orphan) && log.contains("the job has no user_id"))
        let requests = Self.executorRequests(setup.receiver)
        #expect(try requests.map { try JSONParser.parse($0.body)["workflowId"] } == [.string(good)])
    }

    /// Completed rows whose time no rate-limit window can hold (`infinity`, `-infinity`, the
    /// far future), written by anyone who can write the table, are left out when the cache
    /// loads: one such row stopped every start with "cannot convert infinity to bigint".
    @Test func completionsAtUnrepresentableTimesDoNotStopTheStart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let workflow = try Self.insertWorkflow(setup.db)
        // Another job's: the stream hands these rows to the cache as completions too.
        try setup.db.query("""
            INSERT INTO automation_execution_logs (workflow_id, trigger_type, status, trigger_data, completed_at)
            SELECT $1::uuid, 'job_status_changed', 'completed',
                   jsonb_build_object('job_id', $2::text, 'new_status', 'completed'), t
            FROM unnest(ARRAY['infinity', '-infinity', '250000-01-01 00:00:00+00']::timestamptz[]) t
            """, [workflow, "another job"])
        let run = try Background(["run"], environment: ConversationChecksTests.environment(setup))
        try RunPipelineTests.waitFor("the service to start") { run.stderr.contains("automation cache loaded") }
        let job = try Self.insertJob(setup.db)
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try RunPipelineTests.waitFor("the job's execution") { try Self.logs(setup.db, status: "completed") == 4 }
        #expect(run.child.poll() == nil, "\(run.stderr.suffix(2000))")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(Self.executorRequests(setup.receiver).count == 1)
    }
}
