import Core
import EmbeddedPostgres
import Logging
import Pipeline
import Replication
import TestSupport
import Testing

/// A slot another process streams: `run` stands by for it, a replay must not (two replays of
/// one slot started together would both pass its check for an active slot, and the second
/// would wait and then report nothing).
@Suite struct SlotReaderInUseTests {
    @Test func aReaderThatMustNotWaitIsRefusedAHeldSlot() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("CREATE TABLE items (id int PRIMARY KEY); CREATE PUBLICATION held_pub FOR TABLE items")
        try db.execute("SELECT pg_create_logical_replication_slot('held', 'pgoutput')")
        let holder = try ReplicationConnection(url: cluster.url).startReplication(
            slot: "held", options: [("proto_version", "1"), ("publication_names", "held_pub")])
        defer { _ = holder }

        let settings = SlotReader.Settings(databaseURL: cluster.url, plugin: .pgoutput, slot: "held", publication: "held_pub",
                                           standsByWhileSlotInUse: false)
        #expect {
            try SlotReader(settings, logger: Logger(label: "test")).run(until: StopSignal()) { _ in .proceed }
        } throws: { error in
            (error as? PostgresError)?.isSlotInUse == true
        }
    }
}
