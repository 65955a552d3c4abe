import Core
import Replication

/// `changerelay.checkpoints`: per slot, the end LSN of the last transaction whose effects
/// are committed. The batch committer writes it in the transaction that commits those effects, so
/// a crash keeps both or neither, and the slot is acknowledged up to it.
public struct SlotCheckpoint: Sendable {
    public let slot: String

    public init(slot: String) {
        self.slot = slot
    }

    /// The stored checkpoint; zero for a slot that never committed a batch.
    public func read(on db: PostgresConnection) throws(PostgresError) -> LSN {
        let row = try db.query("SELECT lsn::text AS lsn FROM changerelay.checkpoints WHERE slot_name = $1", [slot])
        return row.value("lsn").flatMap { LSN($0) } ?? .zero
    }

    /// Moves the checkpoint to `lsn`, inside the caller's open transaction.
    public func write(_ lsn: LSN, on db: PostgresConnection) throws(PostgresError) {
        try db.query("""
            INSERT INTO changerelay.checkpoints (slot_name, lsn, updated_at) VALUES ($1, $2::pg_lsn, now())
            ON CONFLICT (slot_name) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()
            """, [slot, lsn.description])
    }
}
