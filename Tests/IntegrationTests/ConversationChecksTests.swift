import Core
import Decoding
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Testing

/// The conversation checks handler through `changerelay run`: the seed's verification
/// insert, the skip rules, the service key, and the log rows the seed's queries find.
@Suite struct ConversationChecksTests {
    static let serviceKey = "test-service-key-4f1c"
    static let retryDelayMilliseconds = 300

    static func environment(_ setup: RunPipelineTests.Setup) -> [String: String] {
        var environment = setup.environment.filter { !$0.key.hasPrefix("CHANGERELAY_HANDLERS_ECHO") }
        environment["CHANGERELAY_FUNCTIONS_BASE_URL"] = setup.receiver.url(path: "/functions/v1")
        environment["CHANGERELAY_SERVICE_KEY"] = serviceKey
        environment["CHANGERELAY_CONVERSATION_CHECKS_RETRY_DELAY_MS"] = String(retryDelayMilliseconds)
        return environment
    }

    @Test func theSeedsVerificationInsertIsCheckedOnceAndLogged() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var environment = Self.environment(setup)
        // As a secret mounted as a variable often is: the white space is not part of the key.
        environment["CHANGERELAY_SERVICE_KEY"] = " \(Self.serviceKey)\n"
        let run = try Background(["run"], environment: environment)
        try setup.db.execute("""
            INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id, status)
            VALUES ('test_clerk', 'test_agent', 'test_elevenlabs_id', 'unknown')
            """)
        try RunPipelineTests.waitFor("the check") { setup.receiver.requestCount >= 1 }
        let request = try #require(setup.receiver.requests.first)
        #expect(request.method == "POST" && request.path == "/functions/v1/check-conversation")
        #expect(request.header("Authorization") == "Bearer " + Self.serviceKey)
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("Idempotency-Key")?.hasPrefix("conversation_checks:") == true)
        let body = try JSONParser.parse(request.body)
        #expect(body["elevenlabs_conversation_id"] == .string("test_elevenlabs_id"))
        #expect(body["clerk_id"] == .string("test_clerk") && body["agent_id"] == .string("test_agent"))
        #expect(body["status"] == .string("unknown"))
        #expect(body["attempt"] == .number("1"))
        guard case .number? = body["conversation_id"] else {
            Issue.record("conversation_id is not a number: \(request.bodyText)")
            return
        }
        // The attempt row is written with the attempt's record, after the response.
        try RunPipelineTests.waitFor("the attempt row") {
            try setup.db.execute("SELECT count(*) AS n FROM trigger_execution_logs WHERE attempt > 0").value("n") == "1"
        }
        // The seed deployment guide's own query.
        let logs = try setup.db.execute("""
            SELECT trigger_name, record_id, status, attempt, http_status FROM trigger_execution_logs
            WHERE trigger_name LIKE 'check_conversations_trigger%' ORDER BY execution_time DESC
            """)
        #expect(logs.rows.count == 2)
        #expect(logs.rows.contains { $0[0] == "check_conversations_trigger" && $0[2] == "queued" })
        #expect(logs.rows.contains {
            $0[0] == "check_conversations_trigger_attempt" && $0[2] == "success" && $0[3] == "1" && $0[4] == "200"
        })
        #expect(Set(logs.rows.map { $0[1] }).count == 1)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(!run.stderr.contains(Self.serviceKey))
        #expect(setup.receiver.requestCount == 1)
    }

    /// The receiver fails twice, then answers: three tries, `retry_delay_ms` apart, each
    /// with its attempt number in the body and its own attempt row.
    @Test func failingTwiceThenSucceedingTakesThreeSpacedAttempts() throws {
        let setup = try RunPipelineTests.prepare(behavior: .sequence([.status(500), .status(503), .status(200)]))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup))
        try setup.db.execute("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('c', 'a', 'el')")
        try RunPipelineTests.waitFor("the three attempt rows") {
            try setup.db.execute("""
                SELECT count(*) AS n FROM trigger_execution_logs WHERE trigger_name = 'check_conversations_trigger_attempt'
                """).value("n") == "3"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let requests = setup.receiver.requests
        #expect(requests.count == 3)
        #expect(requests.map { try? JSONParser.parse($0.body)["attempt"] } == [.number("1"), .number("2"), .number("3")])
        #expect(Set(requests.compactMap { $0.header("Idempotency-Key") }).count == 1)
        // Spaced by the delay, and woken by it: not by a poll, which gave 1 000 ms.
        for (earlier, later) in zip(requests, requests.dropFirst()) {
            #expect(later.arrival - earlier.arrival >= .milliseconds(Self.retryDelayMilliseconds))
            #expect(later.arrival - earlier.arrival < .milliseconds(Self.retryDelayMilliseconds + 400))
        }
        let attempts = try setup.db.execute("""
            SELECT attempt, status, http_status, error FROM trigger_execution_logs
            WHERE trigger_name = 'check_conversations_trigger_attempt' ORDER BY attempt
            """)
        #expect(attempts.rows.map { $0[0] } == ["1", "2", "3"])
        #expect(attempts.rows.map { $0[1] } == ["failed", "failed", "success"])
        #expect(attempts.rows.map { $0[2] } == ["500", "503", "200"])
        #expect(attempts.rows[0][3] == "HTTP 500" && attempts.rows[2][3] == nil)
    }

    /// A receiver that always fails gets exactly `max_attempts` tries; the last attempt row
    /// says why the check was given up, and nothing more is sent.
    @Test func alwaysFailingStopsAfterExactlyThreeAttempts() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(500))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup))
        try setup.db.execute("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('c', 'a', 'el')")
        try RunPipelineTests.waitFor("the delivery to be given up") {
            try setup.db.execute("SELECT status FROM changerelay.deliveries").value("status") == "dead"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        // A dead delivery is never claimed again: these three are all there will be.
        #expect(setup.receiver.requestCount == 3)
        let attempts = try setup.db.execute("""
            SELECT attempt, status, error FROM trigger_execution_logs
            WHERE trigger_name = 'check_conversations_trigger_attempt' AND details->>'final' = 'true'
            """)
        #expect(attempts.rows.count == 1)
        #expect(attempts.rows.first?[0] == "3" && attempts.rows.first?[1] == "failed")
        #expect(attempts.rows.first?[2]?.contains("gave up after 3 attempts") == true)
        #expect(try setup.db.execute("""
            SELECT count(*) AS n FROM trigger_execution_logs WHERE trigger_name = 'check_conversations_trigger_attempt'
            """).value("n") == "3")
    }

    /// A check given up on and re-queued by id goes on from attempt 3: its body and its
    /// attempt row carry 3, so no attempt number is ever logged twice.
    @Test func aRetriedCheckContinuesItsAttemptNumbers() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(500))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var environment = Self.environment(setup)
        environment["CHANGERELAY_CONVERSATION_CHECKS_MAX_ATTEMPTS"] = "2"
        let run = try Background(["run"], environment: environment)
        try setup.db.execute("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('c', 'a', 'el')")
        try RunPipelineTests.waitFor("the delivery to be given up") {
            try setup.db.execute("SELECT status FROM changerelay.deliveries").value("status") == "dead"
        }
        setup.receiver.behavior = .status(200)
        let id = try #require(try setup.db.execute("SELECT id FROM changerelay.deliveries").value("id"))
        let retried = try runChangeRelay(["deliveries", "retry", id], environment: environment)
        #expect(retried.stdout.contains("re-queued 1 delivery"), "\(retried.stdout)\(retried.stderr)")
        try RunPipelineTests.waitFor("the successful attempt row") {
            try setup.db.execute("SELECT count(*) AS n FROM trigger_execution_logs WHERE status = 'success'").value("n") == "1"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let attempts = try setup.db.execute("""
            SELECT attempt, status, details->>'final' AS final FROM trigger_execution_logs
            WHERE trigger_name = 'check_conversations_trigger_attempt' ORDER BY id
            """)
        #expect(attempts.rows.map { $0[0] } == ["1", "2", "3"])
        #expect(attempts.rows.map { $0[1] } == ["failed", "failed", "success"])
        #expect(attempts.rows.map { $0[2] } == ["false", "true", "true"])
        #expect(try setup.receiver.requests.map { try JSONParser.parse($0.body)["attempt"] } == [.number("1"), .number("2"), .number("3")])
    }

    /// Skipped changes make no call and no row. A valid insert after them is the marker:
    /// once its call arrives, every earlier change has been planned.
    @Test func skippedChangesMakeNoCallAndNoRow() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup))
        try setup.db.execute("""
            INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id, status) VALUES
                ('no_id', 'a', NULL, 'unknown'), ('blank_id', 'a', '  ', 'unknown'), ('done', 'a', 'el-1', 'processed');
            """)
        try setup.db.execute("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('edit', 'a', 'el-2')")
        try RunPipelineTests.waitFor("the edited row's check") { setup.receiver.requestCount >= 1 }
        try setup.db.execute("UPDATE user_conversations SET agent_id = 'other' WHERE clerk_id = 'edit'")
        try setup.db.execute("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('marker', 'a', 'el-3')")
        try RunPipelineTests.waitFor("the marker's check") { setup.receiver.requestCount >= 2 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let clerks = setup.receiver.requests.compactMap { request -> String? in
            guard case .string(let clerk)? = try? JSONParser.parse(request.body)["clerk_id"] else { return nil }
            return clerk
        }
        #expect(clerks == ["edit", "marker"])
        let queued = try setup.db.execute("SELECT count(*) AS n FROM trigger_execution_logs WHERE status = 'queued'")
        #expect(queued.value("n") == "2")
    }

    /// One transaction whose log rows and deliveries each pass the planner's 1 MiB COPY
    /// piece: the batch switches between the two COPYs and writes every row once.
    @Test func aLargeTransactionWritesEveryLogRowAndDeliveryOnce() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run", "--only", "planner"], environment: Self.environment(setup))
        try setup.db.execute("""
            INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id)
            SELECT 'clerk ' || g, 'agent', 'el-' || g FROM generate_series(1, 20000) g
            """)
        try RunPipelineTests.waitFor("the transaction to be planned") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == "20000"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        try RunPipelineTests.expectPlannedOnce(setup.db, changes: 20000)
        let logs = try setup.db.execute("""
            SELECT count(*) AS n, count(DISTINCT record_id) AS records FROM trigger_execution_logs WHERE status = 'queued'
            """)
        #expect(logs.value("n") == "20000" && logs.value("records") == "20000")
    }

    @Test func aBaseURLWithoutAServiceKeyIsRefusedNamingTheKey() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var environment = Self.environment(setup)
        environment["CHANGERELAY_SERVICE_KEY"] = nil
        let result = try runChangeRelay(["run"], environment: environment, timeout: .seconds(60))
        #expect(result.status == 1)
        #expect(result.stderr.contains("functions.service_key_file") && result.stderr.contains("CHANGERELAY_SERVICE_KEY"))

        // A key that cannot go into a header is refused by where it came from, never quoted.
        for (key, reason) in [(" \n\t", "the service key is empty"), ("", "CHANGERELAY_SERVICE_KEY is set but empty"),
                              ("secret-part\nX-Injected: 1", "line break")] {
            environment["CHANGERELAY_SERVICE_KEY"] = key
            let refused = try runChangeRelay(["run"], environment: environment, timeout: .seconds(60))
            #expect(refused.status == 1 && refused.stderr.contains("CHANGERELAY_SERVICE_KEY") && refused.stderr.contains(reason),
                    "\(refused.stderr)")
            #expect(!refused.stderr.contains("secret-part"))
        }
        // A key file that cannot be read says why.
        environment["CHANGERELAY_SERVICE_KEY"] = nil
        for (path, reason) in [("/nonexistent/key", "no such file"), ("/tmp", "a directory, not a file")] {
            environment["CHANGERELAY_FUNCTIONS_SERVICE_KEY_FILE"] = path
            let refused = try runChangeRelay(["run"], environment: environment, timeout: .seconds(60))
            #expect(refused.status == 1 && refused.stderr.contains("functions.service_key_file")
                        && refused.stderr.contains("cannot read \(path): \(reason)"), "\(refused.stderr)")
        }
    }

    /// A dispatcher whose handlers do not write `trigger_execution_logs` leaves the checks
    /// alone (sending them would lose their attempt rows); one that does sends them.
    @Test func aDispatcherThatCannotWriteTheAttemptRowsLeavesTheChecks() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var both = Self.environment(setup)
        for (key, value) in setup.environment where key.hasPrefix("CHANGERELAY_HANDLERS_ECHO") { both[key] = value }
        let planner = try Background(["run", "--only", "planner"], environment: both)
        try setup.db.execute("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('c', 'a', 'el')")
        try setup.db.execute("INSERT INTO items VALUES (1, 'marker')")
        try RunPipelineTests.waitFor("both deliveries planned") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == "2"
        }
        planner.child.signal(SIGTERM)
        #expect(planner.waitForExit() == 0)

        let echoOnly = try Background(["run", "--only", "dispatcher"], environment: setup.environment)
        try RunPipelineTests.waitFor("the echo delivery") { setup.receiver.requestCount >= 1 }
        echoOnly.child.signal(SIGTERM)
        #expect(echoOnly.waitForExit() == 0)
        #expect(setup.receiver.requests.map(\.path) == ["/echo"])
        #expect(try setup.db.execute("""
            SELECT status FROM changerelay.deliveries WHERE handler = 'conversation_checks'
            """).value("status") == "pending")

        let full = try Background(["run", "--only", "dispatcher"], environment: both)
        try RunPipelineTests.waitFor("the attempt row") {
            try setup.db.execute("""
                SELECT count(*) AS n FROM trigger_execution_logs WHERE trigger_name = 'check_conversations_trigger_attempt'
                """).value("n") == "1"
        }
        full.child.signal(SIGTERM)
        #expect(full.waitForExit() == 0)
        #expect(setup.receiver.requests.map(\.path) == ["/echo", "/functions/v1/check-conversation"])
    }
}
