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

    /// The statement that moves the checkpoint to `lsn`, for the caller's open transaction.
    /// A literal rather than a parameterised query, so the committer can send it in one
    /// round trip with the rest of its transaction's end (`BatchCommitter`).
    public func statement(writing lsn: LSN) -> String {
        """
        INSERT INTO changerelay.checkpoints (slot_name, lsn, updated_at) VALUES (\(quoteLiteral(slot)), \(quoteLiteral(lsn.description))::pg_lsn, now())
        ON CONFLICT (slot_name) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()
        """
    }
}
