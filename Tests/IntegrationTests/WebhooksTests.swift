import Core
import Decoding
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Testing

/// Webhook fan-out through `changerelay run`: real cluster, real receiver on loopback
/// (so private targets are allowed unless a test says otherwise), the real binary.
@Suite struct WebhooksTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    static func environment(_ setup: RunPipelineTests.Setup, allowPrivate: Bool = true) -> [String: String] {
        var environment = setup.environment.filter { !$0.key.hasPrefix("CHANGERELAY_HANDLERS_ECHO") }
        environment["CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = allowPrivate ? "true" : "false"
        return environment
    }

    /// A config named `name` for `events`, pointing at `path` on the receiver; its id.
    @discardableResult
    static func addConfig(_ setup: RunPipelineTests.Setup, name: String, events: [String], path: String = "/hook",
                          url: String? = nil, secret: String? = WebhooksTests.secret, headers: String = "{}",
                          retry: String = #"{"max_retries": 3, "retry_delay": 100}"#) throws -> String {
        let target = url ?? setup.receiver.url(path: path)
        let list = "{" + events.map { "\"\($0)\"" }.joined(separator: ",") + "}"
        return try setup.db.query("""
            INSERT INTO webhook_configs (name, url, secret, events, headers, retry_config)
            VALUES ($1, $2, $3, $4::text[], $5::jsonb, $6::jsonb) RETURNING id::text AS id
            """, [name, target, secret, list, headers, retry]).value("id")!
    }

    /// A chat session and `count` user messages in it, each its own transaction.
    static func chat(_ setup: RunPipelineTests.Setup, messages count: Int, role: String = "user") throws {
        let session = try setup.db.execute("""
            INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001') RETURNING id::text AS id
            """).value("id")!
        for index in 0..<count {
            try setup.db.execute("INSERT INTO chat_messages (session_id, role, content) VALUES ('\(session)', '\(role)', 'm\(index)')")
        }
    }

    /// A chat session and `count` assistant messages in one transaction: the service plans
    /// them in one batch, and a dispatcher claims several of them at once.
    static func chatInOneTransaction(_ setup: RunPipelineTests.Setup, messages count: Int) throws {
        try setup.db.execute("""
            WITH session AS (INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001') RETURNING id)
            INSERT INTO chat_messages (session_id, role, content) SELECT id, 'assistant', 'm' || g FROM session, generate_series(1, \(count)) g
            """)
    }

    /// `messages` assistant messages planned by a planner-only run, which is then stopped:
    /// their deliveries wait in the table, none sent, for a test to change their configs.
    static func planOnly(_ setup: RunPipelineTests.Setup, messages: Int, deliveries: Int) throws {
        let planner = try Background(["run", "--only", "planner"], environment: Self.environment(setup))
        try Self.chat(setup, messages: messages, role: "assistant")
        try RunPipelineTests.waitFor("\(deliveries) planned deliveries") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == String(deliveries)
        }
        planner.child.signal(SIGTERM)
        #expect(planner.waitForExit() == 0)
    }

    @Test func aMatchingConfigGetsSignedEventsAndTheirLogRows() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "chat", events: ["chat.message.*"],
                                        headers: #"{"X-Tenant": "t1", "webhook-id": "forged", "content-type": "text/plain"}"#)
        try Self.addConfig(setup, name: "sessions", events: ["chat.session.started"], path: "/sessions", secret: nil)
        let run = try Background(["run"], environment: Self.environment(setup))
        try Self.chat(setup, messages: 1)
        // created + process to "chat", started to "sessions".
        try RunPipelineTests.waitFor("three events") { setup.receiver.requestCount >= 3 }
        try RunPipelineTests.waitFor("their log rows") {
            try setup.db.execute("SELECT count(*) AS n FROM webhook_logs WHERE completed_at IS NOT NULL").value("n") == "3"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")

        let hooks = setup.receiver.requests.filter { $0.path == "/hook" }
        #expect(Set(hooks.compactMap { request -> String? in
            guard case .string(let type)? = try? JSONParser.parse(request.body)["type"] else { return nil }
            return type
        }) == ["chat.message.created", "chat.message.process"])
        for request in hooks {
            let id = try #require(request.header("webhook-id"))
            #expect(id.hasPrefix("msg_"))
            #expect(request.header("Idempotency-Key") == id)
            #expect(request.header("X-Tenant") == "t1")
            #expect(request.header("Content-Type") == "application/json")
            #expect(request.header("webhook-signature")?.hasPrefix("v1,") == true)
            #expect(Int64(request.header("webhook-timestamp") ?? "") != nil)
            let body = try JSONParser.parse(request.body)
            #expect(body["data"]?["table"] == .string("chat_messages"))
            #expect(body["data"]?["record"]?["role"] == .string("user"))
            #expect(body["data"]?["old_record"] == .null)
        }
        let unsigned = try #require(setup.receiver.requests.first { $0.path == "/sessions" })
        #expect(unsigned.header("webhook-signature") == nil)
        #expect(unsigned.header("webhook-id") != nil)
        // The seed's monitoring queries, unchanged.
        let logs = try setup.db.execute("""
            SELECT webhook_config_id::text AS config, event_type, attempt_count, response_status, completed_at IS NOT NULL AS done
            FROM webhook_logs ORDER BY event_type
            """)
        #expect(logs.rows.map { $0[1] } == ["chat.message.created", "chat.message.process", "chat.session.started"])
        #expect(logs.rows.allSatisfy { $0[2] == "1" && $0[3] == "200" && $0[4] == "t" })
        #expect(logs.rows.prefix(2).allSatisfy { $0[0] == config })
        let failures = try setup.db.execute("SELECT count(*) AS n FROM webhook_logs WHERE response_status >= 400")
        #expect(failures.value("n") == "0")
        #expect(!run.stderr.contains(Self.secret) && !run.stderr.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
    }

    /// Without 024 the committer could not create staging tables that it empties itself,
    /// without 031 no delivery holds its former ordering key, and without 035 the committer
    /// could neither number webhook log rows nor stage them: such a database is refused by
    /// name, at start. The migration's rollback, a second application of it, and `setup`
    /// leave a database that logs every event once.
    @Test(arguments: ["024_staging_emptied_by_committer", "031_ordering_across_key_changes", "035_webhook_log_ids_reserved"])
    func aDatabaseWithoutTheLogStagingIsRefusedByNameAndItsRollbackReapplies(migration: String) throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.addConfig(setup, name: "chat", events: ["chat.message.created"])
        let file = repositoryRoot + "/sql/" + migration
        try setup.db.execute(try String(contentsOfFile: file + ".rollback.sql", encoding: .utf8))
        let refused = try runChangeRelay(["run"], environment: Self.environment(setup), timeout: .seconds(60))
        #expect(refused.status != 0 && refused.stderr.contains("sql/\(migration).sql"), "\(refused.stderr)")

        try setup.db.execute(try String(contentsOfFile: file + ".sql", encoding: .utf8))
        try setup.db.execute(try String(contentsOfFile: file + ".sql", encoding: .utf8))
        let again = try runChangeRelay(["setup"], environment: Self.environment(setup))
        #expect(again.status == 0, "\(again.stderr)")
        let run = try Background(["run"], environment: Self.environment(setup))
        try Self.chat(setup, messages: 3)
        try RunPipelineTests.waitFor("three logged events") {
            try setup.db.execute("SELECT count(*) AS n FROM webhook_logs WHERE completed_at IS NOT NULL").value("n") == "3"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT count(*) AS n FROM webhook_logs").value("n") == "3")
    }

    /// `run` as the role `setup` creates, with nothing granted by hand: a try is recorded (the
    /// statement that records every try also sets a config a 410 made gone inactive) and
    /// each event's log row is numbered from `webhook_logs`' own sequence. Tests that log in as
    /// a superuser could not see either grant missing; without them the first batch stopped
    /// `run`, and every try went unrecorded and was sent again at each restart.
    @Test func theServiceRoleAloneSendsAndRecords() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(410))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "gone", events: ["chat.message.created"])
        var environment = Self.environment(setup)
        environment["CHANGERELAY_SOURCE_DATABASE_URL"] = setup.cluster.url.replacingOccurrences(of: "//postgres@", with: "//changerelay@")
        #expect(environment["CHANGERELAY_SOURCE_DATABASE_URL"] != setup.cluster.url)
        #expect(try setup.db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'changerelay'").value("rolsuper") == "f")
        let run = try Background(["run"], environment: environment)
        try Self.chatInOneTransaction(setup, messages: 1)
        try RunPipelineTests.waitFor("the try recorded and the config deactivated") {
            try setup.db.query("""
                SELECT (SELECT is_active FROM webhook_configs WHERE id::text = $1) = false
                   AND (SELECT response_status FROM webhook_logs WHERE completed_at IS NOT NULL) = 410 AS done
                """, [config]).value("done") == "t"
        }
        #expect(run.child.poll() == nil, "the service stopped: \(run.stderr.suffix(2000))")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(!run.stderr.contains("permission denied"), "\(run.stderr.suffix(2000))")
        #expect(setup.receiver.requestCount == 1)
        let delivery = try setup.db.execute("SELECT status, attempt FROM changerelay.deliveries")
        #expect(delivery.rows == [["dead", "1"]], "\(delivery.rows)")
    }

    /// The first 410 ends its delivery and pauses the config; the config's other deliveries,
    /// claimed with it and queued behind it, are not sent to the gone endpoint (each would end
    /// dead) but wait, paused, with the rest.
    @Test func a410StopsTheDeliveryAndDeactivatesTheConfig() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(410))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "gone", events: ["chat.message.created"])
        // One transaction, so the service plans them in one batch and claims two at once: one
        // sent, one queued behind it at the endpoint's limit.
        try Self.chatInOneTransaction(setup, messages: 5)
        var environment = Self.environment(setup)
        environment["CHANGERELAY_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT"] = "1"
        let run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the config to be deactivated") {
            try setup.db.query("SELECT is_active::text AS a FROM webhook_configs WHERE id::text = $1", [config])
                .value("a") == "false"
        }
        try RunPipelineTests.waitFor("the log row") {
            try setup.db.execute("SELECT response_status FROM webhook_logs WHERE completed_at IS NOT NULL")
                .value("response_status") == "410"
        }
        try RunPipelineTests.waitFor("the other four deliveries to wait unclaimed") {
            try setup.db.execute("""
                SELECT count(*) FILTER (WHERE status = 'pending' AND attempt = 0 AND locked_until IS NULL) AS paused
                FROM changerelay.deliveries
                """).value("paused") == "4"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(setup.receiver.requestCount == 1)
        let deliveries = try setup.db.execute("SELECT status, attempt FROM changerelay.deliveries ORDER BY id")
        #expect(deliveries.rows == [["dead", "1"]] + Array(repeating: ["pending", "0"], count: 4))
        let logs = try setup.db.execute("""
            SELECT count(*) FILTER (WHERE completed_at IS NULL AND attempt_count = 0) AS waiting, count(*) AS total FROM webhook_logs
            """)
        #expect(logs.value("waiting") == "4" && logs.value("total") == "5")
        #expect(run.stderr.contains("webhook config deactivated"), "\(run.stderr.suffix(2000))")
    }

    /// Deliveries planned while a config was active wait, paused, while it is inactive, and
    /// go out once it is active again: nothing is dropped.
    @Test func anInactiveConfigsDeliveriesWaitAndResume() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "paused", events: ["chat.message.created"])
        // Active throughout: once its events arrive, the dispatcher has claimed past the paused ones.
        try Self.addConfig(setup, name: "witness", events: ["chat.message.created"], path: "/witness")
        try Self.planOnly(setup, messages: 3, deliveries: 6)
        try setup.db.query("UPDATE webhook_configs SET is_active = false WHERE id::text = $1", [config])
        let dispatcher = try Background(["run", "--only", "dispatcher"], environment: Self.environment(setup))
        try RunPipelineTests.waitFor("the witness's three events") {
            setup.receiver.requests.filter { $0.path == "/witness" }.count == 3
        }
        #expect(setup.receiver.requests.filter { $0.path == "/hook" }.isEmpty)
        let pending = try setup.db.query("""
            SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'pending' AND attempt = 0 AND endpoint = $1
            """, ["webhook:" + config])
        #expect(pending.value("n") == "3")
        try setup.db.query("UPDATE webhook_configs SET is_active = true WHERE id::text = $1", [config])
        try RunPipelineTests.waitFor("the paused three to arrive") {
            setup.receiver.requests.filter { $0.path == "/hook" }.count == 3
        }
        let contents = setup.receiver.requests.filter { $0.path == "/hook" }.compactMap { request -> String? in
            guard case .string(let text)? = try? JSONParser.parse(request.body)["data"]?["record"]?["content"] else { return nil }
            return text
        }
        #expect(Set(contents) == ["m0", "m1", "m2"])
        dispatcher.child.signal(SIGTERM)
        #expect(dispatcher.waitForExit() == 0)
    }

    /// The deliveries of an inactive config are listed as paused, and an operator who gives
    /// up on them cancels them: dead, saying so, their log rows finished; `deliveries retry`
    /// brings them back, and they go out once the config is active again.
    @Test func pausedDeliveriesAreListedAndCanBeCancelledAndRetried() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "paused", events: ["chat.message.created"])
        let environment = Self.environment(setup)
        try Self.planOnly(setup, messages: 3, deliveries: 3)
        try setup.db.query("UPDATE webhook_configs SET is_active = false WHERE id::text = $1", [config])

        let listed = try runChangeRelay(["deliveries", "list", "--status", "paused"], environment: environment)
        let rows = listed.stdout.split(separator: "\n").dropFirst()
        #expect(listed.status == 0 && rows.count == 3 && rows.allSatisfy { $0.split(separator: "\t")[1] == "paused" },
                "\(listed.stdout)\(listed.stderr)")
        let ids = rows.map { String($0.split(separator: "\t")[0]) }
        let cancelled = try runChangeRelay(["deliveries", "cancel"] + ids + ["999999"], environment: environment)
        #expect(cancelled.status == 1 && cancelled.stdout.contains("cancelled 3 deliveries")
                && cancelled.stderr.contains("1 of the 4 deliveries named were not cancelled"), "\(cancelled.stdout)\(cancelled.stderr)")
        let ended = try setup.db.execute("""
            SELECT (SELECT count(*) FROM changerelay.deliveries WHERE status = 'dead' AND last_error = 'cancelled by an operator') AS dead,
                   (SELECT count(*) FROM webhook_logs WHERE completed_at IS NOT NULL AND error_message = 'cancelled by an operator') AS logs
            """)
        #expect(ended.value("dead") == "3" && ended.value("logs") == "3", "\(ended.rows)")

        #expect(try runChangeRelay(["deliveries", "retry", "--all-dead"], environment: environment).status == 0)
        try setup.db.query("UPDATE webhook_configs SET is_active = true WHERE id::text = $1", [config])
        let dispatcher = try Background(["run", "--only", "dispatcher"], environment: environment)
        try RunPipelineTests.waitFor("the three sent") { setup.receiver.requests.filter { $0.path == "/hook" }.count == 3 }
        dispatcher.child.signal(SIGTERM)
        #expect(dispatcher.waitForExit() == 0)
    }

    /// A config made unreadable after its deliveries were planned (here its `headers`) holds
    /// them back, said once, until it is fixed: nothing is sent half as planned, and nothing
    /// is dropped. Held back, they stay unclaimed: claimed, they were put back at once and
    /// claimed again, about a thousand times a second, each release logged, and an operator's
    /// cancel found them under way.
    @Test func aConfigMadeUnreadableHoldsItsDeliveriesUntilFixed() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "broken", events: ["chat.message.created"], headers: #"{"X-Version": "1"}"#)
        let environment = Self.environment(setup)
        try Self.planOnly(setup, messages: 2, deliveries: 2)
        try setup.db.query(#"UPDATE webhook_configs SET headers = '["X-Version"]' WHERE id::text = $1"#, [config])
        let dispatcher = try Background(["run", "--only", "dispatcher"], environment: environment)
        try RunPipelineTests.waitFor("the config named as unreadable") {
            dispatcher.stderr.contains("webhook config cannot be sent to; its deliveries wait until it is fixed")
        }
        let watched = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < watched {
            let claimed = try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'sending'")
            #expect(claimed.value("n") == "0", "a held-back delivery was claimed again")
            if claimed.value("n") != "0" { break }
            usleep(20_000)
        }
        #expect(dispatcher.stderr.components(separatedBy: "released claimed deliveries that were not sent").count <= 3,
                "released at most once a claim that found the config unreadable")
        #expect(setup.receiver.requestCount == 0)
        try setup.db.query(#"UPDATE webhook_configs SET headers = '{"X-Version": "2"}' WHERE id::text = $1"#, [config])
        try RunPipelineTests.waitFor("both sent once it is fixed") { setup.receiver.requestCount == 2 }
        #expect(setup.receiver.requests.allSatisfy { $0.header("X-Version") == "2" })
        dispatcher.child.signal(SIGTERM)
        #expect(dispatcher.waitForExit() == 0)
        #expect(dispatcher.stderr.components(separatedBy: "cannot be sent to").count == 2, "said once")
    }

    /// A cluster whose first request fails once, a config for every session event, and one
    /// session started and then changed by `change` (SQL with `$1` for the session's id,
    /// returning the id it has after it); the service runs until both events have arrived,
    /// one of them twice. The event types in arrival order, and the ids before and after.
    static func sessionEventsWithTheFirstRetried(plugin: String, change: String) throws
        -> (setup: RunPipelineTests.Setup, types: [String], session: String, after: String) {
        let setup = try RunPipelineTests.prepare(behavior: .dynamic { request in
            request.index == 0 ? .status(500) : .status(200)
        }, extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        do {
            try Self.addConfig(setup, name: "sessions", events: ["chat.session.*"],
                               retry: #"{"max_retries": 3, "retry_delay": 1000}"#)
            let session = try setup.db.execute("""
                INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001') RETURNING id::text AS id
                """).value("id")!
            let after = try setup.db.query(change, [session]).value("id")!
            let run = try Background(["run"], environment: Self.environment(setup))
            try RunPipelineTests.waitFor("both events, one of them twice") { setup.receiver.requestCount >= 3 }
            run.child.signal(SIGTERM)
            #expect(run.waitForExit() == 0)
            let types = setup.receiver.requests.compactMap { request -> String? in
                guard case .string(let type)? = try? JSONParser.parse(request.body)["type"] else { return nil }
                return type
            }
            return (setup, types, session, after)
        } catch {
            try? setup.cluster.stop()
            setup.receiver.stop()
            throw error
        }
    }

    /// `chat_sessions` is REPLICA IDENTITY FULL (the seed's bodies carry the old record), so
    /// every column is a key column in pgoutput's stream and none in wal2json's: a session's
    /// events are still one record's, ordered by its primary key. The end of a session waits
    /// for its start's retry.
    @Test(arguments: ["pgoutput", "wal2json"])
    func oneRecordsEventsKeepTheirOrderOnAReplicaIdentityFullTable(plugin: String) throws {
        let (setup, types, session, _) = try Self.sessionEventsWithTheFirstRetried(plugin: plugin, change: """
            UPDATE chat_sessions SET status = 'ended' WHERE id::text = $1 RETURNING id::text AS id
            """)
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        #expect(types == ["chat.session.started", "chat.session.started", "chat.session.ended"])
        let keys = try setup.db.execute("SELECT DISTINCT ordering_key FROM changerelay.deliveries")
        #expect(keys.rows.count == 1)
        #expect(keys.rows.first?.first??.hasSuffix("public.chat_sessions:id=" + session) == true, "\(keys.rows)")
    }

    /// A session's end that also changed its id is ordered after the start under the old id
    /// (031): the start's delivery is retried, and the end, under a key nothing else holds,
    /// still waits for it. The delivery went through the webhook staging table with its
    /// former key.
    @Test(arguments: ["pgoutput", "wal2json"])
    func anEventThatChangedItsRecordsKeyWaitsForTheOldKeysEvents(plugin: String) throws {
        let (setup, types, session, moved) = try Self.sessionEventsWithTheFirstRetried(plugin: plugin, change: """
            UPDATE chat_sessions SET id = gen_random_uuid(), status = 'ended' WHERE id::text = $1 RETURNING id::text AS id
            """)
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        #expect(types == ["chat.session.started", "chat.session.started", "chat.session.ended"])
        let keys = try setup.db.execute("""
            SELECT ordering_key, coalesce(former_ordering_key, '-') AS former FROM changerelay.deliveries ORDER BY id
            """).rows.map { $0.map { $0 ?? "" } }
        #expect(keys.count == 2 && keys[0][0].hasSuffix("public.chat_sessions:id=" + session) && keys[0][1] == "-"
                && keys[1][0].hasSuffix("public.chat_sessions:id=" + moved) && keys[1][1] == keys[0][0], "\(keys)")
    }

    /// An operator turns a config off while its rows wait in the dispatcher's queue behind a
    /// slow request: the request in flight finishes, the queued rows are put back unsent, and
    /// they go out, in order, once the config is active again.
    @Test func turningAConfigOffStopsItsQueuedRowsToo() throws {
        // The first answer takes 10 s: several claims come and go while it is in flight.
        let setup = try RunPipelineTests.prepare(behavior: .dynamic { request in
            request.index == 0 ? .trickle(bytes: 10, interval: .seconds(1)) : .status(200)
        })
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "slow", events: ["chat.message.created"])
        try Self.chat(setup, messages: 4, role: "assistant")
        var environment = Self.environment(setup)
        environment["CHANGERELAY_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT"] = "1"
        let run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the first request") { setup.receiver.requestCount >= 1 }
        try setup.db.query("UPDATE webhook_configs SET is_active = false WHERE id::text = $1", [config])
        try RunPipelineTests.waitFor("the first delivery recorded and the other three waiting unclaimed") {
            try setup.db.execute("""
                SELECT count(*) FILTER (WHERE status = 'succeeded') = 1
                   AND count(*) FILTER (WHERE status = 'pending' AND attempt = 0 AND locked_until IS NULL) = 3 AS paused
                FROM changerelay.deliveries
                """).value("paused") == "t"
        }
        #expect(setup.receiver.requestCount == 1)
        try setup.db.query("UPDATE webhook_configs SET is_active = true WHERE id::text = $1", [config])
        try RunPipelineTests.waitFor("all four", timeout: .seconds(60)) {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "4"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let contents = setup.receiver.requests.compactMap { request -> String? in
            guard case .string(let text)? = try? JSONParser.parse(request.body)["data"]?["record"]?["content"] else { return nil }
            return text
        }
        #expect(contents == ["m0", "m1", "m2", "m3"])
    }

    /// An operator whose endpoint moved (its old URL answers 410, which turned the config off)
    /// fixes the URL and a header and turns the config on: the deliveries that waited go to
    /// the new URL with the new header, and the config stays on.
    @Test func aRepairedConfigsWaitingDeliveriesGoWhereItNowPoints() throws {
        let setup = try RunPipelineTests.prepare(behavior: .dynamic { request in
            request.path == "/gone" ? .status(410) : .status(200)
        })
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "moved", events: ["chat.message.created"], path: "/gone",
                                        headers: #"{"X-Version": "1"}"#)
        try Self.chatInOneTransaction(setup, messages: 3)
        var environment = Self.environment(setup)
        environment["CHANGERELAY_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT"] = "1"
        let run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the config to be turned off and two deliveries to wait") {
            try setup.db.query("""
                SELECT NOT c.is_active AND (SELECT count(*) FROM changerelay.deliveries WHERE status = 'pending') = 2 AS waiting
                FROM webhook_configs c WHERE id::text = $1
                """, [config]).value("waiting") == "t"
        }
        try setup.db.query("""
            UPDATE webhook_configs SET url = $2, headers = '{"X-Version": "2"}', is_active = true WHERE id::text = $1
            """, [config, setup.receiver.url(path: "/moved")])
        try RunPipelineTests.waitFor("the two at the new URL") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "2"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let moved = setup.receiver.requests.filter { $0.path == "/moved" }
        #expect(moved.count == 2)
        #expect(moved.allSatisfy { $0.header("X-Version") == "2" })
        #expect(setup.receiver.requests.filter { $0.path == "/gone" }.count == 1)
        let state = try setup.db.query("""
            SELECT c.is_active::text AS active,
                   (SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded' AND target_url = c.url) AS there
            FROM webhook_configs c WHERE id::text = $1
            """, [config])
        #expect(state.value("active") == "true")
        #expect(state.value("there") == "2")
    }

    /// A 410 that answers a try sent before the config's URL changed says the old URL is
    /// gone, not the new one: the config stays on and later events go to the new URL.
    @Test func a410FromAnOldURLLeavesTheConfigOn() throws {
        let answer = DispatchSemaphore(value: 0)
        let setup = try RunPipelineTests.prepare(behavior: .dynamic { request in
            guard request.path == "/old" else { return .status(200) }
            _ = answer.wait(timeout: .now() + 60)
            return .status(410)
        })
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "moving", events: ["chat.message.created"], path: "/old")
        let run = try Background(["run"], environment: Self.environment(setup))
        try Self.chat(setup, messages: 1, role: "assistant")
        try RunPipelineTests.waitFor("the try at the old URL") { setup.receiver.requestCount == 1 }
        try setup.db.query("UPDATE webhook_configs SET url = $2 WHERE id::text = $1", [config, setup.receiver.url(path: "/new")])
        answer.signal()
        try RunPipelineTests.waitFor("the 410 recorded") {
            try setup.db.execute("SELECT response_status FROM webhook_logs").value("response_status") == "410"
        }
        try Self.chat(setup, messages: 1, role: "assistant")
        try RunPipelineTests.waitFor("the next event at the new URL") {
            setup.receiver.requests.contains { $0.path == "/new" }
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let active = try setup.db.query("SELECT is_active::text AS a FROM webhook_configs WHERE id::text = $1", [config])
        #expect(active.value("a") == "true")
        #expect(!run.stderr.contains("webhook config deactivated"), "\(run.stderr.suffix(2000))")
    }

    /// A config deleted between two tries of a delivery gets no second try: the dispatcher
    /// that signed the first forgets the config's secret, and the delivery ends dead with its
    /// log row saying why.
    @Test func aConfigDeletedBetweenTriesGetsNoFurtherTry() throws {
        // The first try hangs until the delivery timeout; the config is deleted meanwhile.
        let setup = try RunPipelineTests.prepare(behavior: .dynamic { request in
            request.index == 0 ? .neverAnswer : .status(500)
        })
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "deleted", events: ["chat.message.created"],
                                        retry: #"{"max_retries": 3, "retry_delay": 100}"#)
        var environment = Self.environment(setup)
        environment["CHANGERELAY_DELIVERY_TIMEOUT_MS"] = "2000"
        let run = try Background(["run"], environment: environment)
        try Self.chat(setup, messages: 1, role: "assistant")
        try RunPipelineTests.waitFor("the first try under way") { setup.receiver.requestCount == 1 }
        try setup.db.query("DELETE FROM webhook_configs WHERE id::text = $1", [config])
        try RunPipelineTests.waitFor("the delivery to end", timeout: .seconds(60)) {
            try setup.db.execute("SELECT status FROM changerelay.deliveries").value("status") == "dead"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(setup.receiver.requestCount == 1)
        let log = try setup.db.execute("SELECT error_message, completed_at IS NOT NULL AS done FROM webhook_logs")
        #expect(log.value("error_message")?.contains("no longer exists") == true, "\(log.rows)")
        #expect(log.value("done") == "t")
    }

    /// One endpoint that never answers holds at most its own share of the dispatcher:
    /// every delivery to another endpoint arrives while it hangs. A limit at or above the
    /// concurrency (the default 16 with 8 slots) is lowered to half the slots, said at start.
    @Test(arguments: [(limit: "2", hanging: 2), (limit: nil, hanging: 4)] as [(limit: String?, hanging: Int)])
    func aHangingEndpointDoesNotHoldBackAnother(limit: String?, hanging: Int) throws {
        let setup = try RunPipelineTests.prepare(behavior: .dynamic { request in
            request.path == "/hang" ? .neverAnswer : .status(200)
        })
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.addConfig(setup, name: "hangs", events: ["chat.message.created"], path: "/hang")
        try Self.addConfig(setup, name: "fine", events: ["chat.message.created"], path: "/fine")
        var environment = Self.environment(setup)
        environment["CHANGERELAY_DELIVERY_CONCURRENCY"] = "8"
        environment["CHANGERELAY_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT"] = limit
        environment["CHANGERELAY_DELIVERY_TIMEOUT_MS"] = "600000"
        let run = try Background(["run"], environment: environment)
        try Self.chat(setup, messages: 40, role: "assistant")
        try RunPipelineTests.waitFor("every delivery to the fine endpoint") {
            setup.receiver.requests.filter { $0.path == "/fine" }.count == 40
        }
        #expect(setup.receiver.requests.filter { $0.path == "/hang" }.count == hanging)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(60)) == 0)
        #expect(run.stderr.contains("max_in_flight_per_endpoint is lowered") == (limit == nil), "\(run.stderr.suffix(2000))")
    }

    /// Webhooks point at addresses anyone who can write `webhook_configs` chooses: without
    /// `webhooks.allow_private_targets`, loopback in any spelling fails at once, unsent.
    @Test func aPrivateTargetIsRefusedWithoutTheSetting() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let port = setup.receiver.url(path: "").split(separator: ":").last.map { String($0.prefix { $0.isNumber }) }!
        let spellings = ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0"]
        for (index, host) in spellings.enumerated() {
            try Self.addConfig(setup, name: "loopback \(index)", events: ["chat.message.created"],
                               url: "http://\(host):\(port)/hook")
        }
        let run = try Background(["run"], environment: Self.environment(setup, allowPrivate: false))
        try Self.chat(setup, messages: 1, role: "assistant")
        try RunPipelineTests.waitFor("every delivery refused") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'dead'").value("n")
                == String(spellings.count)
        }
        #expect(setup.receiver.requestCount == 0)
        let errors = try setup.db.execute("SELECT error_message FROM webhook_logs").rows.map { $0[0] ?? "" }
        #expect(errors.count == spellings.count)
        #expect(errors.allSatisfy { $0.contains("webhooks.allow_private_targets") }, "\(errors)")
        let attempts = try setup.db.execute("SELECT max(attempt) AS n FROM changerelay.deliveries")
        #expect(attempts.value("n") == "1")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// The seed's own table definitions with uuid ids (as earlier installs made them) work too.
    @Test func configsWithUUIDIdsWork() throws {
        let cluster = try startCluster(schema: false)
        let receiver = try LocalReceiver(behavior: .status(200))
        defer { try? cluster.stop(); receiver.stop() }
        let db = try cluster.connect()
        try db.execute("""
            CREATE TABLE public.webhook_configs (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL UNIQUE, url text NOT NULL, secret text,
                events text[] NOT NULL DEFAULT '{}', headers jsonb NOT NULL DEFAULT '{}', is_active boolean NOT NULL DEFAULT true,
                retry_config jsonb NOT NULL DEFAULT '{"max_retries": 3, "retry_delay": 1000}',
                created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE public.webhook_logs (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                webhook_config_id uuid REFERENCES public.webhook_configs (id) ON DELETE SET NULL,
                event_type text NOT NULL, payload jsonb NOT NULL, response_status int, response_body text,
                error_message text, attempt_count int NOT NULL DEFAULT 0, created_at timestamptz DEFAULT now(),
                completed_at timestamptz)
            """)
        let environment = [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_STATUS_INTERVAL_MS": "200",
            "CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
        ]
        let setupRun = try runChangeRelay(["setup"], environment: environment)
        #expect(setupRun.status == 0, "\(setupRun.stderr)")
        try db.query("INSERT INTO webhook_configs (name, url, events) VALUES ('u', $1, '{*}')", [receiver.url(path: "/u")])
        let run = try Background(["run"], environment: environment)
        try db.execute("INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001')")
        try RunPipelineTests.waitFor("the event and its log row") {
            try db.execute("SELECT count(*) AS n FROM webhook_logs WHERE response_status = 200").value("n") == "1"
        }
        #expect(receiver.requestCount == 1)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    @Test func webhooksTestSendsOneSignedEventAndLogsIt() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(200, body: "thanks"))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "ops", events: ["*"])
        try Self.addConfig(setup, name: "off", events: ["*"])
        try setup.db.execute("UPDATE webhook_configs SET is_active = false WHERE name = 'off'")
        let environment = Self.environment(setup)

        let sent = try runChangeRelay(["webhooks", "test", "ops"], environment: environment)
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(sent.stdout.contains("HTTP 200") && sent.stdout.contains("thanks"))
        let request = try #require(setup.receiver.requests.first)
        #expect(try JSONParser.parse(request.body)["type"] == .string("webhook.test"))
        #expect(request.header("webhook-signature")?.hasPrefix("v1,") == true)
        let logged = try setup.db.query("""
            SELECT event_type, response_status, attempt_count FROM webhook_logs WHERE webhook_config_id::text = $1
            """, [config])
        #expect(logged.rows.map { $0 } == [["webhook.test", "200", "1"]])

        setup.receiver.behavior = .status(500)
        #expect(try runChangeRelay(["webhooks", "test", "ops"], environment: environment).status == 1)
        #expect(try runChangeRelay(["webhooks", "test", "off"], environment: environment).status == 2)
        let unknown = try runChangeRelay(["webhooks", "test", "nobody"], environment: environment)
        #expect(unknown.status == 2 && unknown.stderr.contains("nobody"))
        #expect(!sent.stdout.contains(Self.secret) && !sent.stderr.contains(Self.secret))
        // Through the guard: loopback without the setting is refused, logged, exit 1.
        let refused = try runChangeRelay(["webhooks", "test", "ops"], environment: Self.environment(setup, allowPrivate: false))
        #expect(refused.status == 1 && refused.stderr.contains("webhooks.allow_private_targets"), "\(refused.stderr)")
        // A config the service would never fire is not given a passing test.
        let requests = setup.receiver.requestCount
        for (column, value, reason) in [("headers", #"'["x"]'"#, "headers is not a JSON object"),
                                        ("retry_config", #"'"bad"'"#, "retry_config"),
                                        ("url", "'http://127.0.0.1:99999/x'", "url is not an http")] {
            try setup.db.execute("UPDATE webhook_configs SET \(column) = \(value) WHERE name = 'ops' RETURNING id")
            let unusable = try runChangeRelay(["webhooks", "test", "ops"], environment: environment)
            #expect(unusable.status == 2 && unusable.stderr.contains("cannot fire") && unusable.stderr.contains(reason),
                    "\(column): \(unusable.stderr)")
            try setup.db.execute("""
                UPDATE webhook_configs SET headers = '{}', retry_config = '{}', url = '\(setup.receiver.url(path: "/hook"))'
                WHERE name = 'ops' RETURNING id
                """)
        }
        #expect(setup.receiver.requestCount == requests)

        // A table without the seed's unique names: one of two active configs is not picked.
        try setup.db.execute("ALTER TABLE webhook_configs DROP CONSTRAINT webhook_configs_name_key")
        let twin = try Self.addConfig(setup, name: "ops", events: ["*"])
        let ambiguous = try runChangeRelay(["webhooks", "test", "ops"], environment: environment)
        #expect(ambiguous.status == 2 && ambiguous.stderr.contains("2 active webhook configs are named 'ops' (ids \(config), \(twin))"),
                "\(ambiguous.stderr)")
        #expect(setup.receiver.requestCount == requests)
        try setup.db.query("UPDATE webhook_configs SET is_active = false WHERE id::text = $1", [config])
        setup.receiver.behavior = .status(200)
        #expect(try runChangeRelay(["webhooks", "test", "ops"], environment: environment).status == 0)
        let tested = try setup.db.execute("SELECT string_agg(DISTINCT webhook_config_id::text, ',') AS ids FROM webhook_logs WHERE attempt_count = 1 AND response_status = 200")
        #expect(tested.value("ids")?.split(separator: ",").contains(Substring(twin)) == true, "the active one of the two")
    }

    /// kill -9 at the crash points and at random instants during a burst of chat messages:
    /// every event arrives at least once under one stable `webhook-id`, and each (config,
    /// event) has exactly one `webhook_logs` row.
    @Test func killNineDuringABurstLosesNoEventAndDoublesNoLogRow() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.addConfig(setup, name: "a", events: ["chat.message.created"], path: "/a")
        try Self.addConfig(setup, name: "b", events: ["chat.message.*"], path: "/b")
        let environment = Self.environment(setup)
        let session = try setup.db.execute("""
            INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001') RETURNING id::text AS id
            """).value("id")!
        let transactions = 20, perTransaction = 50
        let writer = Thread {
            guard let db = try? setup.cluster.connect() else { return }
            for batch in 0..<transactions {
                _ = try? db.execute("""
                    INSERT INTO chat_messages (session_id, role, content)
                    SELECT '\(session)', CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END, 'm' || g
                    FROM generate_series(\(batch * perTransaction + 1), \((batch + 1) * perTransaction)) g
                    """)
            }
        }
        writer.start()
        try killRunRepeatedly(environment: environment)
        let messages = transactions * perTransaction
        // a: every message created; b: every message created, and the users' ones to process.
        let events = messages + messages + messages / 2
        let final = try Background(["run"], environment: environment)
        // Its SIGTERM must find the service running, not starting: what it waits for may all be done by then.
        try RunPipelineTests.waitFor("the last run to stream") { final.stderr.contains("streaming") }
        try RunPipelineTests.waitFor("every event delivered", timeout: .seconds(300)) {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n")
                == String(events)
        }
        final.child.signal(SIGTERM)
        #expect(final.waitForExit() == 0)
        let logs = try setup.db.execute("""
            SELECT count(*) AS n, count(DISTINCT (webhook_config_id, payload)) AS distinct_events,
                   count(*) FILTER (WHERE response_status = 200 AND completed_at IS NOT NULL) AS done
            FROM webhook_logs
            """)
        #expect(logs.value("n") == String(events) && logs.value("distinct_events") == String(events))
        #expect(logs.value("done") == String(events))
        let planned = Set(try setup.db.execute("SELECT idempotency_key FROM changerelay.deliveries").rows.compactMap { $0[0] })
        #expect(planned.count == events)
        let received = Set(setup.receiver.requests.compactMap { $0.header("webhook-id") })
        #expect(planned == received)
    }

    @Test func retriesFollowTheConfigAndRetryAfterAndTheLogKeepsTheLastTry() throws {
        let large = String(repeating: "x", count: 10_000)
        let setup = try RunPipelineTests.prepare(behavior: .sequence([
            .status(500), .retryAfter(1, status: 503), .status(200, body: large),
        ]))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try Self.addConfig(setup, name: "flaky", events: ["chat.message.created"], path: "/flaky")
        try Self.addConfig(setup, name: "down", events: ["chat.session.started"], path: "/down",
                           retry: #"{"max_retries": 1, "retry_delay": 100}"#)
        let run = try Background(["run"], environment: Self.environment(setup))
        let session = try setup.db.execute("""
            INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001') RETURNING id::text AS id
            """).value("id")!
        try RunPipelineTests.waitFor("the session's event to give up") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'dead'").value("n") == "1"
        }
        setup.receiver.behavior = .sequence([.status(500), .retryAfter(1, status: 503), .status(200, body: large)])
        try setup.db.execute("INSERT INTO chat_messages (session_id, role, content) VALUES ('\(session)', 'assistant', 'm')")
        try RunPipelineTests.waitFor("the message's event to succeed") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "1"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let succeeded = try setup.db.execute("""
            SELECT attempt_count, response_status, octet_length(response_body) AS bytes, error_message,
                   completed_at IS NOT NULL AS done
            FROM webhook_logs WHERE event_type = 'chat.message.created'
            """)
        #expect(succeeded.value("attempt_count") == "3" && succeeded.value("response_status") == "200")
        #expect(succeeded.value("bytes") == "4096" && succeeded.value("error_message") == nil)
        #expect(succeeded.value("done") == "t")
        // Retry-After: 1 second between the 503 and the next try, whatever the jittered backoff says.
        let spacing = try setup.db.execute("""
            SELECT extract(epoch FROM max(started_at) - min(started_at)) AS seconds FROM changerelay.delivery_attempts a
            JOIN changerelay.deliveries d ON d.id = a.delivery_id WHERE d.status = 'succeeded' AND a.attempt IN (2, 3)
            """)
        #expect((Double(spacing.value("seconds") ?? "0") ?? 0) >= 0.99)
        let dead = try setup.db.execute("""
            SELECT attempt_count, response_status, error_message, completed_at IS NOT NULL AS done
            FROM webhook_logs WHERE event_type = 'chat.session.started'
            """)
        #expect(dead.value("attempt_count") == "2" && dead.value("done") == "t")
        #expect(dead.value("error_message")?.isEmpty == false)
    }

    /// The cache is the configs as of the checkpoint, not of the restart: a message written
    /// while the service was down, before its config was deactivated, is still delivered;
    /// the one after it is not.
    @Test func aRestartPlansTheBacklogAgainstTheConfigsOfItsCommits() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "soon off", events: ["chat.message.created"])
        let session = try setup.db.execute("""
            INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001') RETURNING id::text AS id
            """).value("id")!
        let first = try Background(["run"], environment: Self.environment(setup))
        try setup.db.execute("INSERT INTO chat_messages (session_id, role, content) VALUES ('\(session)', 'assistant', 'live')")
        try RunPipelineTests.waitFor("the live message's event") { setup.receiver.requestCount == 1 }
        first.child.signal(SIGTERM)
        #expect(first.waitForExit() == 0)

        try setup.db.execute("INSERT INTO chat_messages (session_id, role, content) VALUES ('\(session)', 'assistant', 'before')")
        try setup.db.query("UPDATE webhook_configs SET is_active = false WHERE id::text = $1", [config])
        try setup.db.execute("INSERT INTO chat_messages (session_id, role, content) VALUES ('\(session)', 'assistant', 'after')")
        let late = try Self.addConfig(setup, name: "late", events: ["chat.message.created"], path: "/late")
        try setup.db.execute("INSERT INTO chat_messages (session_id, role, content) VALUES ('\(session)', 'assistant', 'last')")

        let second = try Background(["run"], environment: Self.environment(setup))
        try RunPipelineTests.waitFor("the backlog planned") {
            try setup.db.query("SELECT count(*) AS n FROM webhook_logs WHERE webhook_config_id::text = $1", [late])
                .value("n") == "1"
        }
        try RunPipelineTests.waitFor("the late config's event") { setup.receiver.requestCount == 2 }
        second.child.signal(SIGTERM)
        #expect(second.waitForExit() == 0)
        func contents(_ path: String) -> [String] {
            setup.receiver.requests.filter { $0.path == path }.compactMap { request in
                guard case .string(let text)? = try? JSONParser.parse(request.body)["data"]?["record"]?["content"] else {
                    return nil
                }
                return text
            }
        }
        // "before" was planned while the config was active; it is sent once reactivated, so here
        // it is only planned: the config is inactive now.
        let planned = try setup.db.query("""
            SELECT l.payload->'data'->'record'->>'content' AS content FROM webhook_logs l
            WHERE l.webhook_config_id::text = $1 ORDER BY l.id
            """, [config]).rows.map { $0[0] }
        #expect(planned == ["live", "before"])
        #expect(contents("/hook") == ["live"])
        #expect(contents("/late") == ["last"])
    }

    /// A config deleted while the service was down still gets the events committed before
    /// the deletion planned: their log rows lose the reference (as ON DELETE SET NULL would
    /// have left them) instead of failing the batch, and the stream goes on. Their deliveries
    /// are not sent: they end dead, saying why, rather than wait unseen for a config that
    /// will not come back.
    @Test func aConfigDeletedDuringADowntimeDoesNotStopTheStream() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let config = try Self.addConfig(setup, name: "deleted", events: ["chat.session.started"])
        let first = try Background(["run"], environment: Self.environment(setup))
        try RunPipelineTests.waitFor("the run to stream") { first.stderr.contains("streaming") }
        first.child.signal(SIGTERM)
        #expect(first.waitForExit() == 0)
        try setup.db.execute("INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000001')")
        try setup.db.query("DELETE FROM webhook_configs WHERE id::text = $1", [config])
        try setup.db.execute("INSERT INTO chat_sessions (user_id) VALUES ('00000000-0000-4000-8000-000000000002')")
        let second = try Background(["run"], environment: Self.environment(setup))
        try RunPipelineTests.waitFor("the backlog committed") {
            try setup.db.execute("SELECT count(*) AS n FROM webhook_logs WHERE webhook_config_id IS NULL").value("n") == "1"
        }
        try RunPipelineTests.waitFor("the stranded delivery to end") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'dead'").value("n") == "1"
        }
        second.child.signal(SIGTERM)
        #expect(second.waitForExit() == 0, "\(second.stderr.suffix(2000))")
        #expect(setup.receiver.requestCount == 0)
        let dead = try setup.db.execute("SELECT last_error FROM changerelay.deliveries WHERE status = 'dead'")
        #expect(dead.value("last_error")?.contains("webhook config \(config) no longer exists") == true, "\(dead.rows)")
        let log = try setup.db.execute("""
            SELECT error_message, completed_at IS NOT NULL AS completed FROM webhook_logs WHERE webhook_config_id IS NULL
            """)
        #expect(log.value("completed") == "t" && log.value("error_message")?.contains("no longer exists") == true, "\(log.rows)")
        #expect(second.stderr.contains("delivery is dead"))
    }
}

