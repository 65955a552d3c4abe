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

    /// A reader away for longer than `wal_sender_timeout` (a long batch commit) keeps its
    /// walsender: the stream's heartbeat answers for it. Without it the server ended the
    /// stream and every reconnect decoded again from the slot's restart point.
    @Test func aReaderAwayLongerThanTheSenderTimeoutKeepsItsStream() throws {
        let cluster = try LocalPostgres(.init(extraSettings: ["wal_sender_timeout": "1s"]))
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION p FOR TABLE t")
        let replication = try ReplicationConnection(url: cluster.url)
        _ = try replication.createSlot("beat", plugin: "pgoutput", temporary: true)
        let stream = try replication.startReplication(slot: "beat", options: [("proto_version", "1"), ("publication_names", "p")],
                                                      statusInterval: Duration.milliseconds(200))
        try db.execute("INSERT INTO t VALUES (1)")
        #expect(try Self.payloads(stream, count: 3).count == 3)
        sleepThread(for: .seconds(4))
        try db.execute("INSERT INTO t VALUES (2)")
        #expect(try Self.payloads(stream, count: 3).count == 3)
        #expect(try db.execute("SELECT count(*) AS n FROM pg_stat_replication").value("n") == "1")
    }

    /// The next `count` data messages (Begin, Insert, Commit), keepalives passed over.
    static func payloads(_ stream: ReplicationStream, count: Int) throws -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while payloads.count < count, ContinuousClock.now < deadline {
            if case .data(_, _, _, let payload)? = try stream.next(timeout: .seconds(1)) { payloads.append(payload) }
        }
        return payloads
    }
}
