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
}
