import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// kill -9 at named instants of the checkpoint transaction (the process stops itself at
/// the armed point, and the test kills it there): whatever the instant, every change is
/// planned exactly once and every key is delivered.
@Suite struct CrashPointTests {
    static func checkpoint(_ db: PostgresConnection) throws -> String? {
        try db.execute("SELECT lsn::text AS lsn FROM changerelay.checkpoints WHERE slot_name = 'changerelay'").value("lsn")
    }

    @Test(arguments: ["batch-copied", "checkpoint-committed"])
    func aKillAtTheCrashPointLosesAndDoublesNothing(point: String) throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        var armed = setup.environment
        armed["CHANGERELAY_CRASH_POINT"] = point
        let run = try Background(["run"], environment: armed)
        for batch in 0..<5 {
            try db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(\(batch * 100 + 1), \(batch * 100 + 100)) g")
        }
        try RunPipelineTests.waitFor("the crash point") { run.stderr.contains("crash point \(point) reached") }
        run.child.signal(SIGKILL)
        _ = run.waitForExit()

        // What the kill left: the first batch either not committed at all, or committed but not acknowledged.
        let stored = try Self.checkpoint(db)
        let confirmed = try db.execute(
            "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'changerelay'").value("lsn")
        let planned = try db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n")
        if point == "batch-copied" {
            #expect(stored == nil && planned == "0", "the batch's transaction never committed")
        } else {
            let checkpoint = try #require(stored.flatMap { LSN($0) })
            #expect(planned != "0")
            #expect(confirmed.flatMap { LSN($0) }.map { $0 < checkpoint } == true,
                    "committed (\(checkpoint)) but not acknowledged (\(confirmed ?? "none"))")
        }

        let resumed = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("every key delivered") { RunPipelineTests.distinctKeys(setup.receiver).count >= 500 }
        try RunPipelineTests.waitFor("every delivery recorded") {
            try db.execute("SELECT count(*) FILTER (WHERE status = 'succeeded') AS n FROM changerelay.deliveries").value("n") == "500"
        }
        resumed.child.signal(SIGTERM)
        #expect(resumed.waitForExit() == 0, "\(resumed.stderr.suffix(2000))")
        try RunPipelineTests.expectPlannedOnce(db, changes: 500)
        #expect(RunPipelineTests.distinctKeys(setup.receiver).count == 500)
    }

    /// Killed with a try's answer in hand but unrecorded: the lease runs out and the same key
    /// is sent again (at least once), and the delivery ends recorded once.
    @Test func aKillBetweenATryAndItsRecordResendsTheSameKey() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_DELIVERY_TIMEOUT_MS": "1000"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let db = setup.db
        var armed = setup.environment
        armed["CHANGERELAY_CRASH_POINT"] = "try-sent"
        let run = try Background(["run"], environment: armed)
        try db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 20) g")
        try RunPipelineTests.waitFor("the crash point") { run.stderr.contains("crash point try-sent reached") }
        run.child.signal(SIGKILL)
        _ = run.waitForExit()
        let sentBefore = RunPipelineTests.distinctKeys(setup.receiver)
        #expect(!sentBefore.isEmpty)
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.delivery_attempts").value("n") == "0",
                "nothing was recorded before the kill")

        let resumed = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("every delivery recorded", timeout: .seconds(180)) {
            try db.execute("SELECT count(*) FILTER (WHERE status = 'succeeded') AS n FROM changerelay.deliveries").value("n") == "20"
        }
        resumed.child.signal(SIGTERM)
        #expect(resumed.waitForExit() == 0, "\(resumed.stderr.suffix(2000))")
        try RunPipelineTests.expectPlannedOnce(db, changes: 20)
        let keys = setup.receiver.requests.compactMap { $0.header("Idempotency-Key") }
        #expect(Set(keys).count == 20)
        #expect(sentBefore.allSatisfy { key in keys.filter { $0 == key }.count >= 2 }, "a try in doubt is sent again, with its key")
    }
}
