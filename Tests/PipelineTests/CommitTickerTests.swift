import Core
import EmbeddedPostgres
import Logging
import Pipeline
import Replication
import Synchronization
import Testing

/// A ticker on its own thread against a real cluster, with a test_decoding slot that sees
/// its ticks; stopped at the end.
final class TickerUnderTest {
    final class Streaming: Sendable {
        let value: Mutex<Bool>
        init(_ streaming: Bool) { value = Mutex(streaming) }
    }

    let cluster: LocalPostgres
    let db: PostgresConnection
    let deadline = NextDeadline()
    let streaming: Streaming
    private let stop = StopSignal()
    private let stopped = StopSignal()

    /// `hostSecondsOff`: how far this host's clock, as the ticker reads it, is from the server's.
    init(hostSecondsOff: Int = 0, streaming: Bool = true) throws {
        cluster = try LocalPostgres()
        try cluster.start()
        db = try cluster.connect()
        try db.execute("SELECT pg_create_logical_replication_slot('ticks', 'test_decoding')")
        let streaming = Streaming(streaming)
        self.streaming = streaming
        let (url, deadline, stop, stopped) = (cluster.url, deadline, stop, stopped)
        guard startThread(detached: true, {
            CommitTicker(sourceURL: url, deadline: deadline, isStreaming: { streaming.value.withLock { $0 } },
                         localNow: { PostgresTimestamp.now.advanced(by: .seconds(hostSecondsOff)) },
                         logger: Logger(label: "test")).run(until: stop)
            stopped.request()
        }) != nil else { throw PostgresError(.connectionFailed, "cannot start the ticker's thread", endpoint: "") }
    }

    deinit {
        stop.request()
        _ = stopped.sleep(for: .seconds(30))
        try? cluster.stop()
    }

    /// Waits until the slot holds a tick that committed after `due` on the server's clock;
    /// false when none has by `timeout`.
    func tickCommitted(after due: PostgresTimestamp, within timeout: Duration) throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            // A tick's transaction holds only its message: its COMMIT line follows the message's.
            let changes = try db.execute("""
                SELECT data FROM pg_logical_slot_peek_changes('ticks', NULL, NULL, 'include-timestamp', 'on')
                """).rows.compactMap { $0[0] ?? nil }
            for (index, line) in changes.enumerated().dropLast()
            where line.contains("prefix: \(CommitTicker.prefix)") && changes[index + 1].hasPrefix("COMMIT") {
                let late = try db.query("SELECT substring($1 FROM '\\(at (.*)\\)')::timestamptz > $2::timestamptz AS late",
                                        [changes[index + 1], due.postgresText]).value("late")
                if late == "t" { return true }
            }
            sleepThread(for: .milliseconds(20))
        }
        return false
    }
}

/// The ticker with this host's clock set apart from the server's: deadlines are the
/// server's commit times, so the wait is measured on the server's clock.
@Suite struct CommitTickerTests {
    @Test(arguments: [-5, 5])
    func aDeadlineIsTickedOnTheServersClockWhateverThisHostsReads(hostSecondsOff: Int) throws {
        let ticker = try TickerUnderTest(hostSecondsOff: hostSecondsOff)
        let serverNow = try #require(try ticker.db.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS t")
            .value("t").flatMap { Int64($0) })
        let due = PostgresTimestamp(unixMicroseconds: serverNow).advanced(by: .milliseconds(300))
        ticker.deadline.set(due)
        // 300 ms on the server's clock; 5 s late was what a host clock behind it used to cost.
        #expect(try ticker.tickCommitted(after: due, within: .seconds(3)))
    }

    /// A standby's handlers hold the deadlines they loaded at start; the instance streaming
    /// the slot closes the windows. The ticker writes nothing until this instance streams.
    @Test func aStandbyWritesNoTickUntilItStreams() throws {
        let ticker = try TickerUnderTest(streaming: false)
        // Long past: a streaming ticker would tick at once.
        let due = PostgresTimestamp.now.advanced(by: .seconds(-60))
        ticker.deadline.set(due)
        #expect(try !ticker.tickCommitted(after: due, within: .seconds(2)))
        ticker.streaming.value.withLock { $0 = true }
        #expect(try ticker.tickCommitted(after: due, within: .seconds(5)))
    }
}
