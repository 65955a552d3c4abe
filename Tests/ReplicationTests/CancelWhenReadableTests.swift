#if canImport(Glibc)
import Glibc
#endif
import Core
import EmbeddedPostgres
import Replication
import Testing

/// `query(_:_:cancelledWhenReadable:)`, which lets a backfill's slow chunk end at a stop
/// rather than hold the stop up for as long as the chunk runs.
@Suite struct CancelWhenReadableTests {
    /// A pipe whose read end is the descriptor watched; writing to it is "stop asked".
    final class Stop: Sendable {
        let read: Int32
        let write: Int32
        init() throws {
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { throw TestFailure("pipe() failed") }
            (read, write) = (ends[0], ends[1])
        }
        func ask() { _ = Glibc.write(write, "x", 1) }
        deinit { close(read); close(write) }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Asks `stop` once `pattern` runs on the server (seen from a connection of its own), so
    /// the cancel meets a statement already executing. On a thread of its own: the statement
    /// watched blocks the test's. Join the thread returned; it asks in any case by its end.
    static func ask(_ stop: Stop, whenRunning pattern: String, on url: String) throws -> pthread_t {
        let thread = startThread {
            defer { stop.ask() }
            guard let watcher = try? PostgresConnection(url: url) else { return }
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let running = try? watcher.query("""
                    SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()
                    """, [pattern]).value("n")
                if running == "1" { return }
                sleepThread(for: .milliseconds(20))
            }
        }
        guard let thread else { throw TestFailure("no thread") }
        return thread
    }

    /// The SQLSTATE `body` failed with; nil when it did not fail.
    static func sqlState(of body: () throws -> Void) -> String? {
        do { try body() } catch { return (error as? PostgresError)?.sqlState ?? "\(error)" }
        return nil
    }

    @Test func aStatementIsNotSentOnceStopIsAsked() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("CREATE TABLE t (id int)")
        let stop = try Stop()
        stop.ask()
        #expect(Self.sqlState { _ = try db.query("INSERT INTO t VALUES (1)", [], cancelledWhenReadable: stop.read) } == "57014")
        #expect(try db.execute("SELECT count(*) AS n FROM t").value("n") == "0")
    }

    @Test func aRunningStatementIsCancelledWhenStopIsAsked() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let stop = try Stop()
        let asker = try Self.ask(stop, whenRunning: "SELECT pg_sleep(600)%", on: cluster.url)
        #expect(Self.sqlState { _ = try db.query("SELECT pg_sleep(600)", [], cancelledWhenReadable: stop.read) } == "57014")
        pthread_join(asker, nil)
        #expect(try db.execute("SELECT 1 AS one").value("one") == "1")
    }

    /// The server drops a cancel that reaches it before it has read the statement; a
    /// statement that swallows the first cancel stands for that here. The cancel is asked
    /// again until the statement ends, so the second sleep is cancelled too.
    @Test func theCancelIsAskedAgainWhileTheStatementRunsOn() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let stop = try Stop()
        let statement = """
            DO $$ BEGIN PERFORM pg_sleep(600); EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(600); END $$
            """
        let asker = try Self.ask(stop, whenRunning: "DO $$ BEGIN PERFORM pg_sleep(600)%", on: cluster.url)
        #expect(Self.sqlState { _ = try db.query(statement, [], cancelledWhenReadable: stop.read) } == "57014")
        pthread_join(asker, nil)
    }

    @Test func aStatementThatEndsFirstReturnsItsRows() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let stop = try Stop()
        #expect(try db.query("SELECT $1::int + 1 AS n", ["41"], cancelledWhenReadable: stop.read).value("n") == "42")
        #expect(Self.sqlState { _ = try db.query("SELECT 1/0", [], cancelledWhenReadable: stop.read) } == "22012")
    }
}
