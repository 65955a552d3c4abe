import Foundation
import LocalReceiver
import Replication
import Synchronization
import Testing

/// The dashboard in headless Chromium (`scripts/browser_check.py`) against `changerelay run`
/// with a token: the page shows the figures the service's own tables hold, and its Retry
/// button re-queues a dead letter until the receiver gets it. With `CHANGERELAY_SCREENSHOT`
/// set to a path, the page is saved there as PNG (how `docs/dashboard.png` is made).
@Suite struct DashboardTests {
    /// The outcome of one run of the browser script.
    struct BrowserRun {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `scripts/browser_check.py` on `url` with `steps`, blocking (like `curl` in
    /// AdminServerTests, it needs no thread of the cooperative pool). Each `wait:` step has
    /// its own deadline, so the run ends.
    static func browse(_ url: String, _ steps: [String]) throws -> BrowserRun {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("browser-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errors.path, contents: nil) else {
            throw TestFailure("cannot create \(errors.path) for the browser's errors")
        }
        defer { unlink(errors.path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [repositoryRoot + "/scripts/browser_check.py", "--timeout", "60", url] + steps
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return BrowserRun(status: process.terminationStatus, stdout: String(decoding: data, as: UTF8.self),
                          stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }

    /// A JavaScript string literal of `text` (JSON's quoting is JavaScript's).
    static func literal(_ text: String) throws -> String {
        String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
    }

    /// `values` as the text of a JSON array, as `JSON.stringify` in the page writes it.
    static func jsonArray(_ values: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(values), as: UTF8.self)
    }

    /// A JavaScript expression: the `data-<attribute>` values of the rows a section lists, in
    /// the page's order, as the text of a JSON array.
    static func listed(_ container: String, attribute: String) -> String {
        "JSON.stringify([...document.querySelectorAll('\(container) [data-\(attribute)]')].map(e => e.getAttribute('data-\(attribute)')))"
    }

    @Test func thePageShowsTheServicesFiguresAndItsRetryButtonRequeuesADeadLetter() throws {
        let token = "dash-" + UUID().uuidString
        let tokenPath = FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-token-\(UUID().uuidString)").path
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: tokenPath))
        defer { unlink(tokenPath) }
        let echoFails = AdminServerTests.Switch()
        let setup = try RunPipelineTests.prepare(
            behavior: .dynamic { request in
                request.path.hasPrefix("/echo") && echoFails.failing.withLock { $0 } ? .status(500) : .status(200)
            },
            extra: ["CHANGERELAY_HANDLERS_ECHO_MAX_ATTEMPTS": "1", "CHANGERELAY_ADMIN_TOKEN_FILE": tokenPath])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var environment = MessageBufferingTests.environment(setup)
        environment.merge(setup.environment) { $1 }
        environment["CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
        try WebhooksTests.addConfig(setup, name: "sessions", events: ["chat.session.started"])
        let job = try AutomationsTests.insertJob(setup.db)
        _ = try AutomationsTests.insertWorkflow(setup.db)
        let run = try Background(["run"], environment: environment)
        let base = try AdminServerTests.adminURL(run)

        // Work for every section: three dead echo deliveries, a conversation check, an automation
        // run, a webhook event, a message buffer, and a backfill (three more dead echo deliveries).
        try setup.db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 3) g")
        try setup.db.execute("""
            INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('clerk', 'agent', 'el')
            """)
        try setup.db.query("UPDATE jobs SET status = 'completed' WHERE id = $1", [job])
        try WebhooksTests.chat(setup, messages: 0)
        for content in ["hello", "are you there?"] {
            try MessageBufferingTests.message(setup.db, conversation: 7, content: content)
        }
        let backfill = try runChangeRelay(["backfill", "--table", "items", "--chunk-size", "2"], environment: environment)
        #expect(backfill.status == 0, "\(backfill.stdout) \(backfill.stderr)")
        try RunPipelineTests.waitFor("the backfill, every seed system's log and every delivery to finish") {
            try setup.db.execute("""
                SELECT (SELECT count(*) FROM changerelay.deliveries WHERE status NOT IN ('succeeded', 'dead')) = 0
                   AND (SELECT count(*) FROM changerelay.deliveries WHERE handler = 'conversation_checks') = 1
                   AND EXISTS (SELECT FROM automation_execution_logs WHERE status = 'completed')
                   AND EXISTS (SELECT FROM webhook_logs WHERE completed_at IS NOT NULL)
                   AND EXISTS (SELECT FROM buffer_processing_jobs WHERE status = 'completed')
                   AND (SELECT string_agg(status, ',') FROM changerelay.backfills) = 'done' AS settled
                """).value("settled") == "t"
        }

        // The page is served without the token and holds no figures; what it shows needs the token.
        let shell = try AdminServerTests.send(base + "/")
        #expect(shell.status == 200 && shell.bodyText.contains("<title>ChangeRelay</title>"))
        for external in ["src=", "href=", "@import", "url("] {
            #expect(!shell.bodyText.contains(external), "the page loads a resource: \(external)")
        }
        #expect(try AdminServerTests.send(base + "/api/activity").status == 401)

        // What the page must show, from the tables themselves.
        let counts = try setup.db.execute("""
            SELECT handler, status, count(*) FROM changerelay.deliveries GROUP BY handler, status
            """).rows.map { (handler: $0[0] ?? "", status: $0[1] ?? "", count: $0[2] ?? "") }
        #expect(counts.contains { $0.handler == "echo" && $0.status == "dead" }, "\(counts)")
        let deadIDs = try setup.db.execute("""
            SELECT id FROM changerelay.deliveries WHERE status = 'dead' ORDER BY id DESC
            """).rows.compactMap { $0[0] }
        // The page asks for 8 rows of each log, newest first.
        let logIDs = try [
            ("conversation_checks", "SELECT id::text FROM trigger_execution_logs ORDER BY id DESC LIMIT 8"),
            ("automation_runs", "SELECT id::text FROM automation_execution_logs ORDER BY created_at DESC LIMIT 8"),
            ("webhook_deliveries", "SELECT id::text FROM webhook_logs ORDER BY id DESC LIMIT 8"),
            ("message_buffers", "SELECT id::text FROM message_buffer ORDER BY id DESC LIMIT 8"),
        ].map { feed, sql in (feed, try setup.db.execute(sql).rows.compactMap { $0[0] }) }
        for (feed, ids) in logIDs { #expect(!ids.isEmpty, "no \(feed) rows") }
        let schedules = try #require(try AdminServerTests.json(AdminServerTests.send(base + "/api/schedules", token: token))
            as? [[String: Any]]).compactMap { $0["name"] as? String }
        let retried = try #require(deadIDs.last)
        let echoRequestsBefore = setup.receiver.requests.filter { $0.path.hasPrefix("/echo") }.count
        echoFails.failing.withLock { $0 = false }

        // Without the token the page asks for it, and shows the figures once it is typed in.
        let asked = try Self.browse(base + "/", [
            "wait:getComputedStyle(document.getElementById('token-form')).display !== 'none'"
                + " && document.getElementById('error').textContent.includes('token')",
            "eval:document.getElementById('token-input').value = " + Self.literal(token),
            "click:#token-save",
            "wait:document.getElementById('role').textContent === 'active'"
                + " && getComputedStyle(document.getElementById('token-form')).display === 'none'",
        ])
        #expect(asked.status == 0, "\(asked.stderr)")

        var steps = try [
            // The token leaves the address bar as soon as the page has read it.
            "wait:document.body.dataset.refreshes >= 1 && !location.href.includes(" + Self.literal(token) + ")",
            "wait:document.getElementById('role').textContent === 'active' && document.getElementById('slot').textContent === 'changerelay'",
            "wait:Number(document.getElementById('lag-chart').dataset.points) >= 2 && document.getElementById('lag').dataset.bytes !== undefined",
            "wait:document.getElementById('changes-rate').dataset.rate !== undefined && document.getElementById('deliveries-rate').dataset.rate !== undefined",
            "wait:" + Self.listed("#dead-letters", attribute: "delivery-id") + " === " + Self.literal(Self.jsonArray(deadIDs)),
            "wait:" + Self.listed("#schedules", attribute: "schedule") + " === " + Self.literal(Self.jsonArray(schedules)),
            "wait:document.querySelector('#backfills [data-backfill-id=\"1\"] [data-progress=\"100\"]') !== null",
        ]
        steps += try logIDs.map { feed, ids in
            try "wait:" + Self.listed("#activity-" + feed, attribute: "row-id") + " === " + Self.literal(Self.jsonArray(ids))
        }
        steps += counts.map { figure in
            "wait:document.querySelector('#deliveries-by-handler td[data-handler=\"\(figure.handler)\"][data-status=\"\(figure.status)\"]')"
                + "?.dataset.count === '\(figure.count)'"
        }
        steps += [
            // Every delivery settled before the page opened: nothing succeeds until the Retry.
            "wait:document.getElementById('deliveries-rate').dataset.rate === '0'",
            "click:#dead-letters button[data-retry=\"\(retried)\"]",
            "wait:document.querySelector('[data-retried=\"\(retried)\"]')?.dataset.outcome === 'requeued'",
            // The rate, measured from /metrics over the last 10 s, counts that delivery. It is read
            // first: the counts below are cached for up to 30 s, longer than the rate's window.
            "wait:Number(document.getElementById('deliveries-rate').dataset.rate) > 0",
            // The retried delivery leaves the dead letters, and the counts show it delivered.
            "wait:!document.querySelector('#dead-letters [data-delivery-id=\"\(retried)\"]')"
                + " && document.querySelector('td[data-handler=\"echo\"][data-status=\"succeeded\"]')?.dataset.count === '1'",
        ]
        if let screenshot = ProcessInfo.processInfo.environment["CHANGERELAY_SCREENSHOT"] {
            steps.append("screenshot:" + screenshot)
        }
        let browser = try Self.browse(base + "/#token=" + token, steps)
        #expect(browser.status == 0, "\(browser.stderr)\n--- changerelay:\n\(run.stderr.suffix(2000))")

        #expect(try setup.db.query("SELECT status FROM changerelay.deliveries WHERE id = $1", [retried]).value("status") == "succeeded")
        #expect(setup.receiver.requests.filter { $0.path.hasPrefix("/echo") }.count == echoRequestsBefore + 1)
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'dead'").value("n")
            == String(deadIDs.count - 1))
        #expect(!run.stderr.contains(token))

        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func activityListsEachLogNewestFirstAndAMissingTableAsEmpty() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            INSERT INTO trigger_execution_logs (trigger_name, record_id, status) VALUES ('a', '1', 'queued'), ('b', '2', 'success');
            DROP TABLE webhook_logs CASCADE
            """)
        let run = try Background(["run"], environment: setup.environment)
        let base = try AdminServerTests.adminURL(run)

        let answer = try AdminServerTests.send(base + "/api/activity?limit=1")
        #expect(answer.status == 200, "\(answer.bodyText)")
        let activity = try #require(try AdminServerTests.json(answer) as? [String: [[String: Any]]], "\(answer.bodyText)")
        #expect(Set(activity.keys) == ["conversation_checks", "automation_runs", "webhook_deliveries", "message_buffers"])
        #expect(activity["conversation_checks"]?.map { $0["trigger_name"] as? String } == ["b"])
        #expect(activity["webhook_deliveries"]?.isEmpty == true)
        let bad = try AdminServerTests.send(base + "/api/activity?limit=101")
        #expect(bad.status == 400 && bad.bodyText.contains(#""parameter":"limit""#), "\(bad.bodyText)")

        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }
}
