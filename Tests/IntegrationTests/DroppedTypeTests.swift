import Core
import Decoding
import Foundation
import Testing

/// A change read after the type of one of its columns was dropped (a backlog, a retained
/// slot): the catalog no longer says what the type was, so its values render as strings.
/// Read before the drop they rendered as the domain's base type; the difference is said.
@Suite struct DroppedTypeTests {
    @Test(arguments: ["pgoutput", "wal2json"])
    func aDomainDroppedBeforeItsChangeIsReadIsNamedInAWarning(plugin: String) throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("""
            CREATE DOMAIN counted AS int;
            CREATE TABLE tallies (id int PRIMARY KEY, n counted);
            CREATE PUBLICATION tally_pub FOR TABLE tallies;
            """)
        try db.execute("SELECT pg_create_logical_replication_slot('tally', '\(plugin)')")
        let type = try #require(try db.execute("SELECT 'counted'::regtype::oid::text AS oid").value("oid"))
        try db.execute("INSERT INTO tallies VALUES (1, 5)")
        try db.execute("DROP DOMAIN counted CASCADE")
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "tally_pub"]
        let tail = try runChangeRelay(["tail", "--plugin", plugin, "--slot", "tally", "--limit", "1"], environment: environment)
        #expect(tail.status == 0, "\(tail.stderr)")
        #expect(tail.stdout.contains(#""n":"5""#), "\(tail.stdout)")
        #expect(tail.stderr.contains("no longer in the source's catalog") && tail.stderr.contains("type_oid=\(type)"),
                "\(tail.stderr)")
    }
}
