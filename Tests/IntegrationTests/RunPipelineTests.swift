import Core
import Decoding
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Synchronization
import Testing

/// `changerelay run` end to end: a real cluster, the real binary, a real receiver.
/// The guarantees of DESIGN.md are what is asserted: nothing lost, each change planned
/// exactly once, every idempotency key delivered, the slot advancing while an endpoint is down.
@Suite struct RunPipelineTests {
    struct Setup {
        let cluster: LocalPostgres
        let db: PostgresConnection
        let receiver: LocalReceiver
        let environment: [String: String]
    }

    static func prepare(behavior: Behavior = .status(200), extra: [String: String] = [:],
                        clusterSettings: [String: String] = [:]) throws -> Setup {
        let cluster = try startCluster(settings: clusterSettings, schema: false)
        let receiver = try LocalReceiver(behavior: behavior)
        var environment = [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url,
            "CHANGERELAY_SOURCE_STATUS_INTERVAL_MS": "200",
            "CHANGERELAY_HANDLERS_ECHO_URL": receiver.url(path: "/echo"),
            "CHANGERELAY_HANDLERS_ECHO_TABLES": "public.items",
            "CHANGERELAY_HANDLERS_ECHO_RETRY_CAP_MS": "2000",
            "CHANGERELAY_HANDLERS_ECHO_MAX_ATTEMPTS": "100",
        ]
        environment.merge(extra) { $1 }
        let setup = try runChangeRelay(["setup"], environment: environment)
        guard setup.status == 0 else { throw TestFailure("setup failed: \(setup.stderr)") }
        let db = try cluster.connect()
        try db.execute("CREATE TABLE items (id int PRIMARY KEY, v text); ALTER PUBLICATION changerelay_pub ADD TABLE items")
        return Setup(cluster: cluster, db: db, receiver: receiver, environment: environment)
    }

    static func distinctKeys(_ receiver: LocalReceiver) -> Set<String> {
        Set(receiver.requests.compactMap { $0.header("Idempotency-Key") })
    }

    static func waitFor(_ what: String, timeout: Duration = .seconds(120), _ condition: () throws -> Bool) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while try !condition() {
            guard clock.now < deadline else { throw TestFailure("\(what) did not happen within \(timeout)") }
            usleep(50_000)
        }
    }

    /// Exactly one planned delivery per change: as many rows as changes, and as many keys.
    static func expectPlannedOnce(_ db: PostgresConnection, changes: Int) throws {
        let counts = try db.execute("""
            SELECT count(*) AS rows, count(DISTINCT idempotency_key) AS keys FROM changerelay.deliveries
            """)
        #expect(counts.value("rows") == String(changes))
        #expect(counts.value("keys") == String(changes))
    }

    @Test func everyChangeIsPlannedOnceAndDelivered() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        for batch in 0..<20 {
            try setup.db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(\(batch * 50 + 1), \(batch * 50 + 50)) g")
        }
        try Self.waitFor("1000 deliveries") { Self.distinctKeys(setup.receiver).count >= 1000 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        try Self.expectPlannedOnce(setup.db, changes: 1000)
        let statuses = try setup.db.execute("SELECT status, count(*) AS n FROM changerelay.deliveries GROUP BY status")
        #expect(statuses.rows.count == 1 && statuses.value("status") == "succeeded")
        let request = try #require(setup.receiver.requests.first)
        #expect(request.method == "POST" && request.path == "/echo")
        #expect(request.header("Content-Type") == "application/json")
        guard case .string(let table)? = try JSONParser.parse(request.body)["table"] else {
            Issue.record("body is not a change: \(request.bodyText)")
            return
        }
        #expect(table == "items")
    }

    /// Under REPLICA IDENTITY USING INDEX a DELETE carries only the index's columns: every
    /// change of a record is ordered by those, its insert and update as its delete, through
    /// both plugins (wal2json marks the primary key's columns as keys, and its DELETE had none).
    @Test(arguments: ["pgoutput", "wal2json"])
    func aRecordOfAUsingIndexTableKeepsOneOrderingKey(plugin: String) throws {
        let setup = try Self.prepare(extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE TABLE indexed (id int PRIMARY KEY, email text NOT NULL, note text);
            CREATE UNIQUE INDEX indexed_email ON indexed (email);
            ALTER TABLE indexed REPLICA IDENTITY USING INDEX indexed_email;
            ALTER PUBLICATION changerelay_pub ADD TABLE indexed
            """)
        var environment = setup.environment
        environment["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "public.indexed"
        let run = try Background(["run"], environment: environment)
        try setup.db.execute("INSERT INTO indexed VALUES (1, 'a@example.com', 'x')")
        try setup.db.execute("UPDATE indexed SET note = 'y' WHERE id = 1")
        try setup.db.execute("DELETE FROM indexed WHERE id = 1")
        try Self.waitFor("three deliveries") { Self.distinctKeys(setup.receiver).count >= 3 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let keys = try setup.db.execute("SELECT DISTINCT ordering_key FROM changerelay.deliveries").rows
        #expect(keys == [["public.indexed:email=a@example.com"]], "\(keys)")
    }

    /// An UPDATE that changes a record's primary key is ordered under both keys (031): it is
    /// sent only after the earlier change of its old key has gone (here retried until the
    /// receiver takes it), and a row inserted later with the freed key waits for it in turn.
    /// Ordered by its new key alone, the UPDATE went out while the old key's insert was
    /// still being retried, and the later insert went out before the UPDATE.
    @Test(arguments: ["pgoutput", "wal2json"])
    func anUpdateOfThePrimaryKeyIsOrderedAfterTheOldKeysChangesAndBeforeItsLaterOnes(plugin: String) throws {
        final class Gate: Sendable {
            let open = Mutex<Set<String>>([])
            /// (value, status) of every request, in arrival order.
            let answered = Mutex<[(String, Int)]>([])
        }
        let gate = Gate()
        let values = ["first", "moved", "again", "later"]
        let behavior = Behavior.dynamic { request in
            let value = values.first { request.bodyText.contains("\"" + $0 + "\"") } ?? "?"
            let held = ["first", "moved"].contains(value) && !gate.open.withLock { $0.contains(value) }
            gate.answered.withLock { $0.append((value, held ? 503 : 200)) }
            return .status(held ? 503 : 200)
        }
        func tries(_ value: String) -> Int { gate.answered.withLock { $0.count { $0.0 == value } } }
        let setup = try Self.prepare(behavior: behavior, extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items VALUES (1, 'first')")
        try setup.db.execute("UPDATE items SET id = 2, v = 'moved' WHERE id = 1")
        try setup.db.execute("INSERT INTO items VALUES (1, 'again')")
        try setup.db.execute("UPDATE items SET v = 'later' WHERE id = 2")
        // Three tries of the old key's insert: the UPDATE, ready since its commit, had every chance to go.
        try Self.waitFor("three tries of the first insert") { tries("first") >= 3 }
        #expect(tries("moved") == 0, "the key-changing UPDATE went before the old key's earlier change")
        gate.open.withLock { _ = $0.insert("first") }
        try Self.waitFor("three tries of the UPDATE") { tries("moved") >= 3 }
        #expect(tries("again") == 0, "the freed key's later insert went before the UPDATE that freed it")
        #expect(tries("later") == 0, "the new key's later change went before the UPDATE")
        gate.open.withLock { _ = $0.insert("moved") }
        try Self.waitFor("four deliveries") { Self.distinctKeys(setup.receiver).count >= 4 && tries("later") >= 1 && tries("again") >= 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let succeeded = gate.answered.withLock { $0.filter { $0.1 == 200 }.map(\.0) }
        #expect(succeeded.count == 4 && succeeded.firstIndex(of: "first")! < succeeded.firstIndex(of: "moved")!
                && succeeded.firstIndex(of: "moved")! < succeeded.firstIndex(of: "again")!
                && succeeded.firstIndex(of: "moved")! < succeeded.firstIndex(of: "later")!, "\(succeeded)")
        let keys = try setup.db.execute("""
            SELECT ordering_key, coalesce(former_ordering_key, '-') AS former FROM changerelay.deliveries ORDER BY id
            """).rows
        #expect(keys == [["public.items:id=1", "-"], ["public.items:id=2", "public.items:id=1"],
                         ["public.items:id=1", "-"], ["public.items:id=2", "-"]], "\(keys)")
    }

    /// A primary key long enough to be stored out of line is left out of an UPDATE's new row
    /// that does not change it, and sent in the old key instead: the UPDATE is still the
    /// record's, ordered after its INSERT (here retried once). It was ordered under `k=?`,
    /// shared by every such record, and went out before the INSERT.
    @Test(arguments: ["pgoutput", "wal2json"])
    func anUpdateOfARowWhoseKeyIsInToastWaitsForItsInsert(plugin: String) throws {
        let setup = try Self.prepare(behavior: .dynamic { request in
            request.index == 0 ? .status(503) : .status(200)
        }, extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE TABLE bigpk (k text PRIMARY KEY, v int);
            ALTER TABLE bigpk ALTER COLUMN k SET STORAGE EXTERNAL;
            ALTER PUBLICATION changerelay_pub ADD TABLE bigpk
            """)
        var environment = setup.environment
        environment["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "public.bigpk"
        try setup.db.execute("INSERT INTO bigpk SELECT string_agg(md5(g::text), ''), 10 FROM generate_series(1, 80) g")
        try setup.db.execute("UPDATE bigpk SET v = 11")
        let run = try Background(["run"], environment: environment)
        try Self.waitFor("the insert twice and the update") { setup.receiver.requestCount >= 3 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let operations = setup.receiver.requests.compactMap { request -> String? in
            guard case .string(let operation)? = try? JSONParser.parse(request.body)["op"] else { return nil }
            return operation
        }
        #expect(operations == ["insert", "insert", "update"])
        let keys = try setup.db.execute("SELECT DISTINCT ordering_key FROM changerelay.deliveries").rows
        #expect(keys.count == 1 && keys.first?.first??.contains("?") == false, "\(keys.map { $0.first??.prefix(40) })")
    }

    /// With REPLICA IDENTITY FULL every column is in a row's key, so an ordering key built from
    /// it can be as long as the row. One over Postgres' btree limit failed the batch holding
    /// it, every time it was read again: the stream stopped. A record's ordering key is its
    /// primary key when the table has one (`PrimaryKeys`), and a key built from every column
    /// (a table without one) is bounded (`BoundedKey`).
    @Test func aRowWhoseKeyIsLongerThanAnIndexEntryIsDeliveredOnce() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // Random bytes as base64: 8 536 characters that do not compress.
        try setup.db.execute("""
            ALTER TABLE items REPLICA IDENTITY FULL;
            INSERT INTO items SELECT 1, encode(decode(string_agg(md5(random()::text), ''), 'hex'), 'base64')
            FROM generate_series(1, 400);
            UPDATE items SET v = v || 'x' WHERE id = 1;
            INSERT INTO items VALUES (2, 'short')
            """)
        let run = try Background(["run"], environment: setup.environment)
        try Self.waitFor("three deliveries") { Self.distinctKeys(setup.receiver).count >= 3 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let rows = try setup.db.execute("""
            SELECT ordering_key, status FROM changerelay.deliveries ORDER BY id
            """).rows
        #expect(rows.count == 3 && rows.allSatisfy { $0[1] == "succeeded" }, "\(rows)")
        #expect(rows.map { $0[0] } == ["public.items:id=1", "public.items:id=1", "public.items:id=2"])
        #expect(Self.distinctKeys(setup.receiver).count == 3)

        // Without a primary key every column names the row, bounded.
        try setup.db.execute("""
            CREATE TABLE keyless (v text); ALTER TABLE keyless REPLICA IDENTITY FULL;
            ALTER PUBLICATION changerelay_pub ADD TABLE keyless
            """)
        var environment = setup.environment
        environment["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "public.items,public.keyless"
        let again = try Background(["run"], environment: environment)
        try setup.db.execute("""
            INSERT INTO keyless SELECT encode(decode(string_agg(md5(random()::text), ''), 'hex'), 'base64')
            FROM generate_series(1, 400)
            """)
        try Self.waitFor("the keyless row's delivery") { Self.distinctKeys(setup.receiver).count >= 4 }
        again.child.signal(SIGTERM)
        #expect(again.waitForExit() == 0, "\(again.stderr.suffix(2000))")
        let keyless = try setup.db.execute("SELECT ordering_key FROM changerelay.deliveries WHERE ordering_key LIKE 'public.keyless:%'")
            .value("ordering_key") ?? ""
        #expect(keyless.hasPrefix("public.keyless:v=") && keyless.contains("sha256:") && keyless.utf8.count < 700, "\(keyless)")
    }

    /// Postgres stores json and jsonb nested as deep as its stack allows, far past the 512
    /// levels the service's own parser takes: such a value is a change like any other, sent
    /// exactly as Postgres holds it, with both plugins, and the changes after it flow.
    @Test(arguments: ["pgoutput", "wal2json"])
    func aJSONValueNestedDeeperThanTheParsersBoundIsDelivered(plugin: String) throws {
        let setup = try Self.prepare(extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let depth = 2000
        try setup.db.execute("""
            ALTER TABLE items ADD COLUMN doc jsonb, ADD COLUMN raw json;
            INSERT INTO items SELECT 1, 'deep', (repeat('{"k": [', \(depth)) || '1' || repeat(']}', \(depth)))::jsonb,
                                     (repeat('[ ', \(depth)) || 'true' || repeat(' ]', \(depth)))::json;
            INSERT INTO items VALUES (2, 'after')
            """)
        let run = try Background(["run"], environment: setup.environment)
        try Self.waitFor("both changes delivered") { Self.distinctKeys(setup.receiver).count >= 2 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let bodies = setup.receiver.requests.map(\.bodyText)
        let doc = String(repeating: #"{"k":["#, count: depth) + "1" + String(repeating: "]}", count: depth)
        let raw = String(repeating: "[", count: depth) + "true" + String(repeating: "]", count: depth)
        #expect(bodies.contains { $0.contains(#""doc":\#(doc),"raw":\#(raw)}"#) }, "\(bodies.map { $0.prefix(300) })")
        #expect(bodies.contains { $0.contains(#""v":"after""#) })
    }

    /// An idle stream writes nothing. wal2json sends every table's transactions, the
    /// committer's own checkpoint write among them (state database = source), and a checkpoint
    /// committed for each was the next: about 800 a second, forever, with nothing to plan.
    /// A transaction of unpublished tables alone moves the slot all the same.
    @Test(arguments: ["pgoutput", "wal2json"])
    func anIdleStreamWritesNoCheckpointsAndTheSlotStillMoves(plugin: String) throws {
        let setup = try Self.prepare(extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("CREATE TABLE unpublished (id int PRIMARY KEY)")
        try setup.db.execute("INSERT INTO items VALUES (1, 'one')")
        let run = try Background(["run"], environment: setup.environment)
        try Self.waitFor("the change delivered") { Self.distinctKeys(setup.receiver).count == 1 }
        let written = try setup.db.execute("INSERT INTO unpublished VALUES (1) RETURNING pg_current_wal_insert_lsn()::text AS at")
            .value("at")!
        try Self.waitFor("the slot past the unpublished write") {
            try setup.db.query("""
                SELECT confirmed_flush_lsn >= $1::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = 'changerelay'
                """, [written]).value("past") == "t"
        }
        func checkpoint() throws -> String? {
            try setup.db.execute("SELECT lsn::text || ' ' || updated_at::text AS at FROM changerelay.checkpoints").value("at")
        }
        let idle = try checkpoint()
        let watched = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < watched {
            let now = try checkpoint()
            #expect(now == idle, "a checkpoint written while the stream was idle")
            if now != idle { break }
            usleep(50_000)
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test(.tags(.soak), .enabled(if: soaksEnabled)) func killNineAtRandomInstantsLosesAndDoublesNothing() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let total = 20_000
        let writer = Thread {
            guard let db = try? setup.cluster.connect() else { return }
            for batch in 0..<200 {
                _ = try? db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(\(batch * 100 + 1), \(batch * 100 + 100)) g")
            }
        }
        writer.start()
        var generator = SystemRandomNumberGenerator()
        // scripts/soak-kill.sh sets 100; the suite does 10.
        let kills = Int(ProcessInfo.processInfo.environment["CHANGERELAY_SOAK_KILLS"] ?? "") ?? 10
        for _ in 0..<kills {
            let run = try Background(["run"], environment: setup.environment)
            // Each kill lands while the run streams, not while it is still starting.
            try Self.waitFor("the run to stream") { run.stderr.contains("streaming") }
            usleep(UInt32.random(in: 200_000...1_200_000, using: &generator))
            run.child.signal(SIGKILL)
            _ = run.waitForExit()
        }
        let final = try Background(["run"], environment: setup.environment)
        // Its SIGTERM must find the service running: the killed runs' claims are taken over
        // at its start, so everything may be delivered before it is.
        try Self.waitFor("the final run to stream") { final.stderr.contains("streaming") }
        try Self.waitFor("every change planned", timeout: .seconds(240)) {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == String(total)
        }
        try Self.waitFor("every key delivered", timeout: .seconds(240)) { Self.distinctKeys(setup.receiver).count >= total }
        final.child.signal(SIGTERM)
        #expect(final.waitForExit() == 0)
        try Self.expectPlannedOnce(setup.db, changes: total)
        #expect(Self.distinctKeys(setup.receiver).count == total)
    }

    /// The batch committer's staging tables are temporary tables of its session (sql/018,
    /// 019): a role the database denies TEMPORARY is refused at start with the grant to make,
    /// and with it the same role runs and delivers.
    @Test func aRoleThatMayNotCreateTemporaryTablesIsToldWhatToGrant() throws {
        let setup = try Self.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("REVOKE TEMPORARY ON DATABASE postgres FROM PUBLIC")
        var environment = setup.environment
        environment["CHANGERELAY_SOURCE_DATABASE_URL"] = "postgresql://changerelay@127.0.0.1:\(setup.cluster.port)/postgres"
        let refused = try runChangeRelay(["run"], environment: environment, timeout: .seconds(60))
        #expect(refused.status != 0 && refused.stderr.contains("GRANT TEMPORARY ON DATABASE"), "\(refused.stderr)")
        #expect(refused.stderr.contains("SQLSTATE 42501"), "\(refused.stderr)")

        try setup.db.execute("GRANT TEMPORARY ON DATABASE postgres TO changerelay")
        let run = try Background(["run"], environment: environment)
        try setup.db.execute("INSERT INTO items VALUES (1, 'one')")
        try Self.waitFor("the delivery") { Self.distinctKeys(setup.receiver).count == 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        try Self.expectPlannedOnce(setup.db, changes: 1)
    }

    @Test func anEndpointOutageDoesNotHoldTheSlot() throws {
        let setup = try Self.prepare(behavior: .status(500))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'down' FROM generate_series(1, 100) g")
        let afterFirst = try setup.db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try Self.waitFor("the slot to move past the first writes while the receiver fails") {
            try setup.db.query("SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'changerelay'",
                               [afterFirst]).value("ok") == "t"
        }
        try Self.waitFor("failed attempts") { setup.receiver.requestCount >= 100 }
        try setup.db.execute("INSERT INTO items SELECT g, 'still down' FROM generate_series(101, 200) g")
        let afterSecond = try setup.db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try Self.waitFor("the slot to keep advancing during the outage") {
            try setup.db.query("SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'changerelay'",
                               [afterSecond]).value("ok") == "t"
        }
        let failed = try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'")
        #expect(failed.value("n") == "0")
        setup.receiver.behavior = .status(200)
        try Self.waitFor("every delivery to succeed after the outage", timeout: .seconds(180)) {
            try setup.db.execute("SELECT count(*) FILTER (WHERE status = 'succeeded') AS n FROM changerelay.deliveries").value("n") == "200"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let attempts = try setup.db.execute("SELECT count(*) AS n FROM changerelay.delivery_attempts WHERE http_status = 500")
        #expect(Int(attempts.value("n") ?? "0")! >= 100)
    }
}

@Suite struct RunResilienceTests {
    /// A record the state database refuses (a constraint or a trigger an operator added) is
    /// said to be that, not a lost connection; the try is kept, and recorded once it is accepted.
    @Test func aRecordTheStateDatabaseRefusesIsNamedAndKept() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE FUNCTION refuse_success() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'successes refused for now'; END $$;
            CREATE TRIGGER refuse_success BEFORE UPDATE ON changerelay.deliveries
                FOR EACH ROW WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION refuse_success();
            """)
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items VALUES (1, 'x')")
        try run.waitFor("the refusal named") { _ in run.stderr.contains("the state database refused the dispatcher's statement") }
        #expect(run.stderr.contains("successes refused for now"), "\(run.stderr.suffix(2000))")
        #expect(!run.stderr.contains("state database unavailable"), "\(run.stderr.suffix(2000))")
        try setup.db.execute("DROP TRIGGER refuse_success ON changerelay.deliveries")
        try RunPipelineTests.waitFor("the try recorded") {
            try DualWriteTests.count(setup.db, "SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'") == 1
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        try RunPipelineTests.expectPlannedOnce(setup.db, changes: 1)
    }

    @Test func aPostgresCrashMidBurstLosesAndDoublesNothing() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'before' FROM generate_series(1, 2000) g")
        try RunPipelineTests.waitFor("some deliveries") { setup.receiver.requestCount > 0 }
        try setup.cluster.restart(immediate: true)
        let db = try setup.cluster.connect()
        for batch in 0..<20 {
            try db.execute("INSERT INTO items SELECT g, 'after' FROM generate_series(\(2001 + batch * 100), \(2100 + batch * 100)) g")
        }
        do {
            try RunPipelineTests.waitFor("every key delivered after the restart", timeout: .seconds(180)) {
                RunPipelineTests.distinctKeys(setup.receiver).count >= 4000
            }
        } catch {
            let states = try db.execute("SELECT string_agg(status || '=' || n, ' ') AS s FROM (SELECT status, count(*) n FROM changerelay.deliveries GROUP BY 1) x")
            Issue.record("received \(RunPipelineTests.distinctKeys(setup.receiver).count) keys; rows: \(states.value("s") ?? "none"); log: \(run.stderr.suffix(3000))")
            throw error
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        try RunPipelineTests.expectPlannedOnce(db, changes: 4000)
        #expect(run.stderr.contains("reconnecting"))
    }

    @Test func aSecondRunWaitsForTheSlotAndTakesOver() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let first = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items VALUES (1, 'first')")
        try RunPipelineTests.waitFor("the first run to deliver") { setup.receiver.requestCount >= 1 }
        let second = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("the second run to find the slot busy") { second.stderr.contains("standing by") }
        first.child.signal(SIGKILL)
        _ = first.waitForExit()
        try setup.db.execute("INSERT INTO items SELECT g, 'second' FROM generate_series(2, 500) g")
        try RunPipelineTests.waitFor("the second run to take over", timeout: .seconds(120)) {
            RunPipelineTests.distinctKeys(setup.receiver).count >= 500
        }
        second.child.signal(SIGTERM)
        #expect(second.waitForExit() == 0)
        try RunPipelineTests.expectPlannedOnce(setup.db, changes: 500)
    }

    /// The heartbeat writes its message into the source's WAL at the interval, while
    /// the published tables stay quiet; a second slot (test_decoding) sees them.
    @Test func theHeartbeatWritesItsMessageAtTheInterval() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_PIPELINE_HEARTBEAT_INTERVAL_MS": "100"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("SELECT pg_create_logical_replication_slot('probe', 'test_decoding')")
        let run = try Background(["run"], environment: setup.environment)
        func heartbeats() throws -> Int {
            let rows = try setup.db.execute("""
                SELECT count(*) AS n FROM pg_logical_slot_peek_changes('probe', NULL, NULL)
                WHERE data LIKE 'message: transactional: 0 prefix: changerelay.heartbeat%'
                """)
            return Int(rows.value("n") ?? "0") ?? 0
        }
        try RunPipelineTests.waitFor("five heartbeats", timeout: .seconds(60)) { try heartbeats() >= 5 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(setup.receiver.requestCount == 0)
        try setup.db.execute("SELECT pg_drop_replication_slot('probe')")
    }

    /// A `run` (at concurrency 2) with ten rows planned, two requests to a receiver that never
    /// answers, and two more rows claimed behind them.
    static func runWithTwoRequestsUnansweredAndTwoMoreClaimed(_ setup: RunPipelineTests.Setup) throws -> Background {
        setup.receiver.behavior = .neverAnswer
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'x' FROM generate_series(1, 10) g")
        try RunPipelineTests.waitFor("two requests in flight and two more claimed") {
            let claimed = try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'sending'")
            return setup.receiver.requestCount == 2 && claimed.value("n") == "4"
        }
        return run
    }

    /// Claims run ahead of sending. At a stop, claimed rows that were never sent go back
    /// to `pending` with their attempt count restored, so the next run sends them at once;
    /// only the requests really in flight keep their claims.
    @Test func aStopReleasesClaimedDeliveriesThatWereNotSent() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_DELIVERY_CONCURRENCY": "2",
                                                         "CHANGERELAY_DELIVERY_TIMEOUT_MS": "60000"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Self.runWithTwoRequestsUnansweredAndTwoMoreClaimed(setup)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(60)) == 0)
        #expect(run.stderr.contains("released claimed deliveries that were not sent"))
        let states = try setup.db.execute("""
            SELECT count(*) FILTER (WHERE status = 'sending' AND attempt = 1) AS sending,
                   count(*) FILTER (WHERE status = 'pending' AND attempt = 0) AS pending
            FROM changerelay.deliveries
            """)
        #expect(states.value("sending") == "2")
        #expect(states.value("pending") == "8")
    }

    /// A run killed with requests in flight and more claimed leaves claims leased for four
    /// request timeouts and 30 s (here 270 s). The next run's dispatcher finds the killed
    /// run's process ended when it connects and sends them again at once, each with the
    /// Idempotency-Key its first try had.
    @Test func claimsOfARunKilledMidTryAreSentAgainAtTheNextStartNotAfterTheirLeases() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_DELIVERY_CONCURRENCY": "2",
                                                         "CHANGERELAY_DELIVERY_TIMEOUT_MS": "60000"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let killed = try Self.runWithTwoRequestsUnansweredAndTwoMoreClaimed(setup)
        let unanswered = Set(setup.receiver.requests.compactMap { $0.header("Idempotency-Key") })
        killed.child.signal(SIGKILL)
        #expect(killed.waitForExit() != nil)
        setup.receiver.behavior = .status(200)
        let next = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("every delivery to succeed well inside the killed run's leases", timeout: .seconds(60)) {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "10"
        }
        next.child.signal(SIGTERM)
        #expect(next.waitForExit() == 0)
        #expect(next.stderr.contains("took over deliveries claimed by a dispatcher process of this machine that has ended"),
                "\(next.stderr)")
        // The two sent before the kill went again under their keys; no try of the four counts
        // against its allowance, since whether it was sent is unknown.
        let keys = setup.receiver.requests.compactMap { $0.header("Idempotency-Key") }
        #expect(Set(keys).count == 10 && unanswered.allSatisfy { key in keys.filter { $0 == key }.count == 2 })
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE requeued_at_attempt = 1")
            .value("n") == "4")
    }

    /// A run whose state-database connections are all cut (a Postgres restart, a failover)
    /// lives on with its requests in flight. A dispatcher that starts meanwhile sees claims
    /// whose session is gone, but their process runs: it must not take them over and send
    /// them a second time while the first tries are still open.
    @Test func aRunWhoseConnectionsAreCutKeepsItsClaimsFromADispatcherThatStarts() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_DELIVERY_TIMEOUT_MS": "60000"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // Each answer takes about 4 s to arrive whole.
        setup.receiver.behavior = .trickle(bytes: 8, interval: .milliseconds(500))
        let cut = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'x' FROM generate_series(1, 6) g")
        try RunPipelineTests.waitFor("six requests in flight") { setup.receiver.requestCount == 6 }
        try setup.db.execute("""
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
            """)
        let other = try Background(["run", "--only", "dispatcher"], environment: setup.environment)
        try RunPipelineTests.waitFor("every delivery to succeed") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "6"
        }
        other.child.signal(SIGTERM)
        cut.child.signal(SIGTERM)
        #expect(other.waitForExit() == 0 && cut.waitForExit() == 0)
        #expect(setup.receiver.requestCount == 6, "a request sent twice: \(setup.receiver.requests.compactMap { $0.header("Idempotency-Key") })")
        #expect(!other.stderr.contains("took over"), "\(other.stderr.suffix(2000))")
    }

    /// SIGTERM ends the service in order: the stream stops and acknowledges what it
    /// committed, then the dispatcher lets the requests in flight finish and records them
    /// before the process exits 0.
    @Test func aStopLetsRequestsInFlightFinishAndRecordsThem() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // Each answer takes about two seconds: long enough to be caught in flight, well inside the drain bound.
        setup.receiver.behavior = .trickle(bytes: 20, interval: .milliseconds(100))
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'x' FROM generate_series(1, 2) g")
        try RunPipelineTests.waitFor("two requests in flight") { setup.receiver.requestCount == 2 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit(timeout: .seconds(60)) == 0, "\(run.stderr.suffix(2000))")
        #expect(!run.stderr.contains("stopping with requests in flight"))
        let states = try setup.db.execute("""
            SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                   (SELECT count(*) FROM changerelay.delivery_attempts WHERE http_status = 200) AS recorded
            FROM changerelay.deliveries
            """)
        #expect(states.value("succeeded") == "2")
        #expect(states.value("recorded") == "2")
        let acknowledged = try setup.db.execute("""
            SELECT s.confirmed_flush_lsn >= c.lsn AS acknowledged
            FROM pg_replication_slots s JOIN changerelay.checkpoints c ON c.slot_name = s.slot_name
            """)
        #expect(acknowledged.value("acknowledged") == "t")
    }

    @Test func aReceiverThatNeverAnswersFailsOnlyItsAttempts() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(200), extra: ["CHANGERELAY_DELIVERY_TIMEOUT_MS": "500"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        setup.receiver.behavior = .neverAnswer
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'x' FROM generate_series(1, 20) g")
        try RunPipelineTests.waitFor("timed-out attempts to be recorded") {
            let n = try setup.db.execute("SELECT count(*) AS n FROM changerelay.delivery_attempts WHERE error LIKE '%timed out%'").value("n")
            return Int(n ?? "0")! >= 20
        }
        setup.receiver.behavior = .status(200)
        try RunPipelineTests.waitFor("recovery", timeout: .seconds(120)) {
            try setup.db.execute("SELECT count(*) FILTER (WHERE status = 'succeeded') AS n FROM changerelay.deliveries").value("n") == "20"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }
}

@Suite struct DeliveriesCommandTests {
    @Test func deadDeliveriesAreListedAndRequeued() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(500), extra: ["CHANGERELAY_HANDLERS_ECHO_MAX_ATTEMPTS": "1"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try setup.db.execute("INSERT INTO items SELECT g, 'x' FROM generate_series(1, 3) g")
        try RunPipelineTests.waitFor("three dead deliveries") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'dead'").value("n") == "3"
        }
        let listed = try runChangeRelay(["deliveries", "list", "--status", "dead"], environment: setup.environment)
        #expect(listed.status == 0, "\(listed.stderr)")
        let rows = listed.stdout.split(separator: "\n").dropFirst()
        #expect(rows.count == 3)
        #expect(rows.allSatisfy { $0.contains("\tdead\t") && $0.contains("\t500\t") })

        setup.receiver.behavior = .status(200)
        let retried = try runChangeRelay(["deliveries", "retry", "--all-dead"], environment: setup.environment)
        #expect(retried.stdout.contains("re-queued 3 deliveries"), "\(retried.stdout)\(retried.stderr)")
        try RunPipelineTests.waitFor("the re-queued deliveries to succeed") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'succeeded'").value("n") == "3"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let attempts = try setup.db.execute("SELECT count(*) AS n FROM changerelay.delivery_attempts")
        #expect(attempts.value("n") == "6", "one failed and one successful attempt each")

        let bad = try runChangeRelay(["deliveries", "retry"], environment: setup.environment)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--all-dead"))
        // Succeeded now, or never there: named, they are not re-queued, and the exit says so.
        let succeeded = try #require(setup.db.execute("SELECT min(id)::text AS id FROM changerelay.deliveries").value("id"))
        let notRequeued = try runChangeRelay(["deliveries", "retry", succeeded, "987654"], environment: setup.environment)
        #expect(notRequeued.status == 1 && notRequeued.stdout.contains("re-queued 0 deliveries"), "\(notRequeued.stdout)")
        #expect(notRequeued.stderr.contains("2 of the 2 deliveries named were not re-queued"), "\(notRequeued.stderr)")
        for limit in ["0", "-1", "1001"] {
            let refused = try runChangeRelay(["deliveries", "list", "--limit=\(limit)"], environment: setup.environment)
            #expect(refused.status != 0 && refused.stderr.contains("--limit must be 1 to 1000"), "\(limit): \(refused.stderr)")
        }
    }

    /// Echo tables without an address stay off, as the edge-function handlers do without
    /// `functions.base_url`, and say so instead of passing over the tables in silence.
    @Test func echoTablesWithoutAnAddressAreNamedInAWarning() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var environment = setup.environment
        environment["CHANGERELAY_HANDLERS_ECHO_URL"] = nil
        let run = try Background(["run"], environment: environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(run.stderr.contains("handlers.echo.tables is set but handlers.echo.url is not: the echo handler is off"),
                "\(run.stderr.suffix(2000))")
    }

    /// Echo follows changes by the name they arrive under: a listed table the stream never
    /// names is said at start with its fix, instead of never being sent.
    @Test func echoTablesTheStreamNeverNamesAreNamedInAWarning() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
            CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
            CREATE TABLE unpublished (id int PRIMARY KEY);
            ALTER PUBLICATION changerelay_pub ADD TABLE parted;
            """)
        var environment = setup.environment
        // `items` without its schema is public.items, which is published.
        environment["CHANGERELAY_HANDLERS_ECHO_TABLES"] = "items,public.parted,public.parted_low,public.unpublished,public.gone"
        let run = try Background(["run"], environment: environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let warnings = run.stderr.split(separator: "\n").filter { $0.contains("an echo table's changes never reach") }
        func warned(_ table: String, _ words: String) -> Bool {
            warnings.contains { $0.contains("table=\(table) ") && $0.contains(words) }
        }
        #expect(warnings.count == 3, "\(warnings)")
        #expect(warned("public.parted", "publish_via_partition_root = true"))
        #expect(warned("public.unpublished", "it is not in the publication") && warned("public.unpublished", "ADD TABLE"))
        #expect(warned("public.gone", "the source has no such table"))
    }

    /// A database that has not had 009 is refused by name, not by the first claim failing.
    @Test func aDatabaseWithoutTheRequeueMigrationIsRefusedByName() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute(try String(contentsOfFile: repositoryRoot + "/sql/009_delivery_requeue.rollback.sql", encoding: .utf8))
        let run = try runChangeRelay(["run"], environment: setup.environment, timeout: .seconds(60))
        #expect(run.status != 0 && run.stderr.contains("sql/009_delivery_requeue.sql"), "\(run.stderr)")
        let retry = try runChangeRelay(["deliveries", "retry", "--all-dead"], environment: setup.environment)
        #expect(retry.status != 0 && retry.stderr.contains("sql/009_delivery_requeue.sql"), "\(retry.stderr)")
    }
}
