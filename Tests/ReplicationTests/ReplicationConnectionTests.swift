import Core
import EmbeddedPostgres
import Replication
import Testing

/// The replication commands against a real server: what `backfill` (a consistent
/// snapshot shared with the slot) will stand on.
@Suite struct ReplicationConnectionTests {
    @Test func identifiesTheSystemAndExportsASnapshotAtTheSlotsStart() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("CREATE TABLE t (id int PRIMARY KEY)")
        try db.execute("INSERT INTO t VALUES (1)")

        let replication = try ReplicationConnection(url: cluster.url)
        let identity = try replication.identifySystem()
        #expect(identity.timeline == 1)
        #expect(identity.database == "postgres")
        #expect(identity.walPosition > .zero)
        #expect(!identity.systemID.isEmpty)

        let slot = try replication.createSlot("snap", plugin: "pgoutput", temporary: true, snapshot: .export)
        #expect(slot.consistentPoint >= identity.walPosition)
        let snapshot = try #require(slot.snapshotName)
        // A row written after the slot's start is invisible in the exported snapshot.
        try db.execute("INSERT INTO t VALUES (2)")
        let reader = try cluster.connect()
        try reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT \(quoteLiteral(snapshot))")
        #expect(try reader.execute("SELECT count(*) AS n FROM t").value("n") == "1")
        try reader.execute("COMMIT")
        #expect(try db.execute("SELECT count(*) AS n FROM t").value("n") == "2")
    }

    @Test func anUnknownSlotIsANamedError() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let replication = try ReplicationConnection(url: cluster.url)
        do {
            _ = try replication.startReplication(slot: "missing", options: [("proto_version", "1"), ("publication_names", "p")])
            Issue.record("START_REPLICATION of a missing slot succeeded")
        } catch {
            #expect(error.sqlState == "42704")
            #expect(error.description.contains("missing"))
        }
    }
}
