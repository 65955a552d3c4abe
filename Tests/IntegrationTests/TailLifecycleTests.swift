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

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Starts `changerelay tail` in the background; output goes to files the test reads.
    final class Background {
        let child: ChildProcess
        let out: String, err: String

        init(_ arguments: [String], environment: [String: String]) throws {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("tail-\(UUID().uuidString)").path
            out = base + ".out"
            err = base + ".err"
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHANGERELAY_") }
            env.merge(environment) { $1 }
            child = try ChildProcess([changerelayBinary] + arguments, environment: env, outputPath: out, errorPath: err)
        }

        var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }

        /// Waits for a condition on the output, with a deadline.
        func waitFor(_ what: String, timeout: Duration = .seconds(60), _ condition: (String) -> Bool) throws {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            while !condition(stdout) {
                guard clock.now < deadline, child.poll() == nil else {
                    throw TestFailure("\(what) did not happen; stdout: \(stdout.suffix(500)) stderr: \(stderr.suffix(1000))")
                }
                usleep(20_000)
            }
        }

        func waitForExit(timeout: Duration = .seconds(30)) -> Int32? {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: timeout)
            while clock.now < deadline {
                if let status = child.poll() { return status }
                usleep(20_000)
            }
            child.signal(SIGKILL)
            child.wait()
            return nil
        }

        deinit {
            if child.poll() == nil {
                child.signal(SIGKILL)
                child.wait()
            }
            unlink(out)
            unlink(err)
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
