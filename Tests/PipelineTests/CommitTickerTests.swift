import Core
import EmbeddedPostgres
import Logging
import Pipeline
import Replication
import Synchronization
import Testing

/// The ticker against a real cluster, with this host's clock set apart from the server's:
/// deadlines are the server's commit times, so the wait is measured on the server's clock.
@Suite struct CommitTickerTests {
    /// Waits until `slot` (test_decoding) holds a tick that committed after `due` on the
    /// server's clock; false when none has by `timeout`.
    static func tickCommitted(after due: PostgresTimestamp, _ db: PostgresConnection, slot: String,
                              within timeout: Duration) throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            // A tick's transaction holds only its message: its COMMIT line follows the message's.
            let changes = try db.execute("""
                SELECT data FROM pg_logical_slot_peek_changes('\(slot)', NULL, NULL, 'include-timestamp', 'on')
                """).rows.compactMap { $0[0] ?? nil }
            for (index, line) in changes.enumerated().dropLast()
            where line.contains("prefix: \(CommitTicker.prefix)") && changes[index + 1].hasPrefix("COMMIT") {
                let at = try db.query("SELECT substring($1 FROM '\\(at (.*)\\)')::timestamptz > $2::timestamptz AS late",
                                      [changes[index + 1], due.postgresText]).value("late")
                if at == "t" { return true }
            }
            sleepThread(for: .milliseconds(20))
        }
        return false
    }

    @Test(arguments: [-5, 5])
    func aDeadlineIsTickedOnTheServersClockWhateverThisHostsReads(hostSecondsOff: Int) throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("SELECT pg_create_logical_replication_slot('ticks', 'test_decoding')")
        let deadline = NextDeadline()
        let url = cluster.url
        let stop = StopSignal()
        let stopped = StopSignal()
        try #require(startThread(detached: true) {
            CommitTicker(sourceURL: url, deadline: deadline,
                         localNow: { PostgresTimestamp.now.advanced(by: .seconds(hostSecondsOff)) },
                         logger: Logger(label: "test")).run(until: stop)
            stopped.request()
        } != nil)
        defer {
            stop.request()
            _ = stopped.sleep(for: .seconds(30))
        }
        let serverNow = try #require(try db.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS t")
            .value("t").flatMap { Int64($0) })
        let due = PostgresTimestamp(unixMicroseconds: serverNow).advanced(by: .milliseconds(300))
        deadline.set(due)
        // 300 ms on the server's clock; 5 s late was what a host clock behind it used to cost.
        #expect(try Self.tickCommitted(after: due, db, slot: "ticks", within: .seconds(3)))
    }
}

/// A standby's handlers hold the deadlines they loaded at start; the instance streaming the
/// slot closes the windows. The ticker writes nothing until this instance streams.
@Suite struct CommitTickerStandbyTests {
    final class Streaming: Sendable {
        let value = Mutex(false)
    }

    @Test func aStandbyWritesNoTickUntilItStreams() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("SELECT pg_create_logical_replication_slot('ticks', 'test_decoding')")
        let deadline = NextDeadline()
        let streaming = Streaming()
        let url = cluster.url
        let stop = StopSignal()
        let stopped = StopSignal()
        try #require(startThread(detached: true) {
            CommitTicker(sourceURL: url, deadline: deadline, isStreaming: { streaming.value.withLock { $0 } },
                         logger: Logger(label: "test")).run(until: stop)
            stopped.request()
        } != nil)
        defer {
            stop.request()
            _ = stopped.sleep(for: .seconds(30))
        }
        // Long past: a streaming ticker would tick at once.
        let due = PostgresTimestamp.now.advanced(by: .seconds(-60))
        deadline.set(due)
        #expect(try !CommitTickerTests.tickCommitted(after: due, db, slot: "ticks", within: .seconds(2)))
        streaming.value.withLock { $0 = true }
        #expect(try CommitTickerTests.tickCommitted(after: due, db, slot: "ticks", within: .seconds(5)))
    }
}
