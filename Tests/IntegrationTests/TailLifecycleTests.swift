import Core
import Decoding
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// `tail` on a persistent slot: what it printed is acknowledged, a stop is clean, a lost
/// connection is retried — and no change is lost or printed twice across any of these.
@Suite struct TailLifecycleTests {
    static func prepare() throws -> (LocalPostgres, PostgresConnection, [String: String]) {
        let cluster = try startCluster(schema: false)
        let db = try cluster.connect()
        try db.execute("CREATE TABLE items (id int PRIMARY KEY, v text); CREATE PUBLICATION life_pub FOR TABLE items")
        try db.execute("SELECT pg_create_logical_replication_slot('life', 'pgoutput')")
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "life_pub",
                           "CHANGERELAY_SOURCE_STATUS_INTERVAL_MS": "200"]
        return (cluster, db, environment)
    }

    static func insert(_ db: PostgresConnection, _ ids: ClosedRange<Int>) throws {
        for id in ids { try db.execute("INSERT INTO items VALUES (\(id), 'v\(id)')") }
    }

    static func ids(_ output: String) throws -> [Int] {
        try output.split(separator: "\n").map { line in
            guard case .number(let text)? = try JSONParser.parse(Array(line.utf8))["new"]?["id"], let id = Int(text) else {
                throw TestFailure("line without id: \(line)")
            }
            return id
        }
    }

    @Test func aSecondRunContinuesWhereTheFirstStopped() throws {
        let (cluster, db, environment) = try Self.prepare()
        defer { try? cluster.stop() }
        try Self.insert(db, 1...10)
        try db.execute("INSERT INTO items SELECT g, 'batch' FROM generate_series(11, 13) g")
        let first = try runChangeRelay(["tail", "--slot", "life", "--limit", "4"], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try Self.ids(first.stdout) == [1, 2, 3, 4])
        // --limit 8 cuts the three-row transaction after one row: it is printed whole next time.
        let second = try runChangeRelay(["tail", "--slot", "life", "--limit", "7"], environment: environment)
        #expect(try Self.ids(second.stdout) == Array(5...11))
        let third = try runChangeRelay(["tail", "--slot", "life", "--limit", "3"], environment: environment)
        #expect(try Self.ids(third.stdout) == [11, 12, 13])
    }

    /// The slot a service plans from is not tail's: it acknowledged what it printed, and the
    /// service, resuming at the slot's position, never planned those changes. Refused when it
    /// is `source.slot` and when the state database has a checkpoint for it; the slot does not
    /// move, and a slot of tail's own is read as before.
    @Test func aSlotTheServicePlansFromIsRefusedAndLeftWhereItIs() throws {
        let (cluster, db, environment) = try Self.prepare()
        defer { try? cluster.stop() }
        try Self.insert(db, 1...2)
        func position() throws -> String? {
            try db.execute("SELECT confirmed_flush_lsn::text AS at FROM pg_replication_slots WHERE slot_name = 'life'").value("at")
        }
        let before = try position()
        var serviceSlot = environment
        serviceSlot["CHANGERELAY_SOURCE_SLOT"] = "life"
        let own = try runChangeRelay(["tail", "--slot", "life", "--limit", "1"], environment: serviceSlot)
        #expect(own.status == 1 && own.stdout.isEmpty
                && own.stderr.contains("refusing slot life: it is source.slot, the slot the service plans from"), "\(own.stderr)")

        try db.execute("""
            CREATE SCHEMA changerelay;
            CREATE TABLE changerelay.checkpoints (slot_name text PRIMARY KEY, lsn pg_lsn NOT NULL);
            INSERT INTO changerelay.checkpoints VALUES ('life', '0/1');
            """)
        let checkpointed = try runChangeRelay(["tail", "--slot", "life", "--limit", "1"], environment: environment)
        #expect(checkpointed.status == 1 && checkpointed.stdout.isEmpty
                && checkpointed.stderr.contains("refusing slot life: the state database has a checkpoint for it"),
                "\(checkpointed.stderr)")
        #expect(try position() == before)

        // A state database it cannot read: said so, naming what it checks, and the slot is not read.
        var unreachable = environment
        unreachable["CHANGERELAY_STATE_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/state"
        let unchecked = try runChangeRelay(["tail", "--slot", "life", "--limit", "1"], environment: unreachable)
        #expect(unchecked.status == 1 && unchecked.stdout.isEmpty
                && unchecked.stderr.contains("tail: cannot tell whether a service or a replay plans from slot life"),
                "\(unchecked.stderr)")
        #expect(try position() == before)

        try db.execute("DELETE FROM changerelay.checkpoints")
        let read = try runChangeRelay(["tail", "--slot", "life", "--limit", "2"], environment: environment)
        #expect(read.status == 0, "\(read.stderr)")
        #expect(try Self.ids(read.stdout) == [1, 2])
    }

    @Test func interruptStopsCleanlyAndAcknowledgesWhatWasPrinted() throws {
        let (cluster, db, environment) = try Self.prepare()
        defer { try? cluster.stop() }
        let tail = try Background(["tail", "--slot", "life"], environment: environment)
        try Self.insert(db, 1...10)
        try tail.waitFor("ten lines") { $0.split(separator: "\n").count == 10 }
        tail.child.signal(SIGINT)
        #expect(tail.waitForExit() == 0, "\(tail.stderr)")
        #expect(try Self.ids(tail.stdout) == Array(1...10))
        // The final status update moved the slot: a new run starts after the ten printed rows.
        try Self.insert(db, 11...11)
        let next = try runChangeRelay(["tail", "--slot", "life", "--limit", "1"], environment: environment)
        #expect(try Self.ids(next.stdout) == [11])
    }

    @Test func aLostConnectionIsRetriedWithoutLossOrRepeat() throws {
        let (cluster, db, environment) = try Self.prepare()
        defer { try? cluster.stop() }
        let tail = try Background(["tail", "--slot", "life"], environment: environment)
        try Self.insert(db, 1...5)
        try tail.waitFor("five lines") { $0.split(separator: "\n").count == 5 }
        try db.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'life'")
        try Self.insert(db, 6...10)
        try tail.waitFor("ten lines after the reconnect") { $0.split(separator: "\n").count >= 10 }
        tail.child.signal(SIGTERM)
        #expect(tail.waitForExit() == 0)
        #expect(try Self.ids(tail.stdout) == Array(1...10))
        #expect(tail.stderr.contains("reconnecting"))
    }

    /// wal2json's catalog (publication members, shapes) is read on a connection of its own:
    /// losing it is a lost connection like the stream's, retried, not an undecodable message.
    @Test func aLostWal2JsonCatalogConnectionIsRetriedWithoutLossOrRepeat() throws {
        let (cluster, db, environment) = try Self.prepare()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE unpublished (id int)")
        try db.execute("SELECT pg_create_logical_replication_slot('life_w2j', 'wal2json')")
        let tail = try Background(["tail", "--plugin", "wal2json", "--slot", "life_w2j"], environment: environment)
        try Self.insert(db, 1...5)
        try tail.waitFor("five lines") { $0.split(separator: "\n").count == 5 }
        let ended = try db.execute("""
            SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
            """)
        #expect(ended.value("n") == "1", "the catalog's connection is the tail's only one besides its stream")
        // A change of a table the catalog has not seen makes it ask the server.
        try db.execute("INSERT INTO unpublished VALUES (1)")
        try Self.insert(db, 6...10)
        try tail.waitFor("ten lines after the reconnect") { $0.split(separator: "\n").count >= 10 }
        tail.child.signal(SIGTERM)
        #expect(tail.waitForExit() == 0, "\(tail.stderr)")
        #expect(try Self.ids(tail.stdout) == Array(1...10))
        #expect(tail.stderr.contains("reconnecting"))
    }

    @Test func aTemporarySlotSeesOnlyChangesMadeWhileItRuns() throws {
        let (cluster, db, environment) = try Self.prepare()
        defer { try? cluster.stop() }
        try Self.insert(db, 1...3)
        let tail = try Background(["tail", "--temporary", "--limit", "2"], environment: environment)
        try tail.waitFor("the stream to start", { _ in tail.stderr.contains("streaming") })
        try Self.insert(db, 4...5)
        #expect(tail.waitForExit() == 0, "\(tail.stderr)")
        #expect(try Self.ids(tail.stdout) == [4, 5])
        let slots = try db.execute("SELECT count(*) AS n FROM pg_replication_slots WHERE temporary")
        #expect(slots.value("n") == "0")
    }
}

@Suite struct TailOptionsTests {
    @Test func anIdlePublicationStillAdvancesTheSlot() throws {
        let (cluster, db, environment) = try TailLifecycleTests.prepare()
        defer { try? cluster.stop() }
        let tail = try Background(["tail", "--slot", "life"], environment: environment)
        try tail.waitFor("the stream to start") { _ in tail.stderr.contains("streaming") }
        try db.execute("CREATE TABLE unpublished (id int); INSERT INTO unpublished SELECT generate_series(1, 10000)")
        let target = try db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(60))
        var advanced = false
        while clock.now < deadline {
            let row = try db.query("SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'life'",
                                   [target])
            if row.value("ok") == "t" { advanced = true; break }
            usleep(50_000)
        }
        #expect(advanced, "confirmed_flush_lsn never reached \(target) while only keepalives arrived")
        #expect(tail.stdout.isEmpty)
    }

    @Test func formatNoneCountsAndProtocolOneGivesTheSameChanges() throws {
        let (cluster, db, environment) = try TailLifecycleTests.prepare()
        defer { try? cluster.stop() }
        try db.execute("SELECT pg_create_logical_replication_slot('proto1', 'pgoutput')")
        try TailLifecycleTests.insert(db, 1...3)
        let counted = try runChangeRelay(["tail", "--slot", "life", "--format", "none", "--limit", "3"], environment: environment)
        #expect(counted.status == 0, "\(counted.stderr)")
        #expect(counted.stdout == "3 changes\n")
        let proto1 = try runChangeRelay(["tail", "--slot", "proto1", "--proto-version", "1", "--limit", "3"], environment: environment)
        #expect(try TailLifecycleTests.ids(proto1.stdout) == [1, 2, 3])
    }

    /// pgoutput's options are refused with wal2json, from `--plugin` or the configuration,
    /// rather than passed over: a line read as text must not look binary-checked.
    @Test func pgoutputsOwnOptionsAreRefusedWithWal2Json() throws {
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"]
        for (arguments, named) in [(["--plugin", "wal2json", "--binary"], "--binary is pgoutput's, and the plugin is wal2json (from --plugin)"),
                                   (["--plugin", "wal2json", "--proto-version", "1"], "--proto-version is pgoutput's"),
                                   (["--binary"], "(from source.plugin)")] {
            var environment = environment
            if !arguments.contains("--plugin") { environment["CHANGERELAY_SOURCE_PLUGIN"] = "wal2json" }
            let refused = try runChangeRelay(["tail"] + arguments, environment: environment)
            // A usage error of tail's own, not the whole command's usage.
            #expect(refused.status == 64 && refused.stderr.contains(named), "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.hasPrefix("changerelay: tail: ") && !refused.stderr.contains("Usage:"), "\(refused.stderr)")
        }
    }

    @Test func startLSNSkipsWhatCameBefore() throws {
        let (cluster, db, environment) = try TailLifecycleTests.prepare()
        defer { try? cluster.stop() }
        try TailLifecycleTests.insert(db, 1...3)
        let position = try db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try TailLifecycleTests.insert(db, 4...5)
        let result = try runChangeRelay(["tail", "--slot", "life", "--start-lsn", position, "--limit", "2"], environment: environment)
        #expect(try TailLifecycleTests.ids(result.stdout) == [4, 5], "\(result.stdout) \(result.stderr)")
        let bad = try runChangeRelay(["tail", "--start-lsn", "nonsense"], environment: environment)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--start-lsn"))
    }

    @Test func wal2jsonFollowsATableAddedToThePublication() throws {
        let (cluster, db, environment) = try TailLifecycleTests.prepare()
        defer { try? cluster.stop() }
        try db.execute("CREATE TABLE later (id int PRIMARY KEY, v text)")
        try db.execute("SELECT pg_create_logical_replication_slot('w', 'wal2json')")
        let tail = try Background(["tail", "--plugin", "wal2json", "--slot", "w"], environment: environment)
        try TailLifecycleTests.insert(db, 1...1)
        try db.execute("INSERT INTO later VALUES (100, 'not published yet')")
        try tail.waitFor("the first row") { !$0.isEmpty }
        try db.execute("ALTER PUBLICATION life_pub ADD TABLE later")
        try db.execute("INSERT INTO later VALUES (200, 'published')")
        try tail.waitFor("the row of the added table") { $0.split(separator: "\n").count >= 2 }
        tail.child.signal(SIGTERM)
        #expect(tail.waitForExit() == 0)
        #expect(try TailLifecycleTests.ids(tail.stdout) == [1, 200])
    }
}
