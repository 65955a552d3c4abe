import EmbeddedPostgres
import Replication
import Testing

/// `executeCountingRows`, the schedules' runner, on every kind of statement an operator may
/// write, COPY included: the connection must come back usable whatever it was.
@Suite struct RowCountTests {
    @Test func everyKindOfStatementEndsWithTheConnectionUsable() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("CREATE TABLE t (id int)")
        #expect(try db.executeCountingRows("INSERT INTO t SELECT generate_series(1, 3)") == 3)
        #expect(try db.executeCountingRows("COPY (SELECT id FROM t) TO STDOUT") == 3)
        #expect(try db.executeCountingRows("VACUUM t") == nil)
        #expect(throws: PostgresError.self) { try db.executeCountingRows("COPY t FROM STDIN") }
        #expect(throws: PostgresError.self) { try db.executeCountingRows("SELECT 1/0") }
        #expect(try db.executeCountingRows("DELETE FROM t") == 3)
        #expect(try db.execute("SELECT count(*) AS n FROM t").value("n") == "0")
    }

    /// A query's rows come one at a time and are dropped, however many: counted from the
    /// command tag, the last statement's when there are several.
    @Test func aQuerysRowsAreCountedNotKept() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        #expect(try db.executeCountingRows("SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g") == 200_000)
        #expect(try db.executeCountingRows("SELECT 1; SELECT g FROM generate_series(1, 5) g") == 5)
        #expect(try db.executeCountingRows("SELECT g FROM generate_series(1, 3) g WHERE false") == 0)
        #expect(throws: PostgresError.self) { try db.executeCountingRows("SELECT 1 / (g - 50000) FROM generate_series(1, 100000) g") }
        #expect(try db.execute("SELECT 7 AS n").value("n") == "7", "usable after a failure midway")
    }
}
