import Core
import Replication

/// `changerelay.checkpoints`: per slot, the end LSN of the last transaction whose effects
/// are committed. The batch committer writes it in the transaction that commits those effects, so
/// a crash keeps both or neither, and the slot is acknowledged up to it.
public struct SlotCheckpoint: Sendable {
    /// The command that writes it (032's `written_by`): a replay refuses a live service's slot
    /// by it, whatever name the replay's configuration gives the service's own.
    public enum Writer: String, Sendable {
        case run, replay
    }

    public let slot: String
    public let writer: Writer

    public init(slot: String, writer: Writer = .run) {
        self.slot = slot
        self.writer = writer
    }

    /// Who wrote the stored checkpoint last; nil for none, or one written before 032.
    public func storedWriter(on db: PostgresConnection) throws(PostgresError) -> Writer? {
        let row = try db.query("SELECT written_by FROM changerelay.checkpoints WHERE slot_name = $1", [slot])
        return row.value("written_by").flatMap(Writer.init(rawValue:))
    }

    /// Whether a service or a replay has committed a batch from this slot: false too on a
    /// database without the service's schema.
    public func isStored(on db: PostgresConnection) throws(PostgresError) -> Bool {
        do {
            return try !db.query("SELECT 1 AS stored FROM changerelay.checkpoints WHERE slot_name = $1", [slot]).rows.isEmpty
        } catch where ["42P01", "3F000"].contains(error.sqlState) {
            return false
        }
    }

    /// The stored checkpoint; zero for a slot that never committed a batch.
    public func read(on db: PostgresConnection) throws(PostgresError) -> LSN {
        let row = try db.query("SELECT lsn::text AS lsn FROM changerelay.checkpoints WHERE slot_name = $1", [slot])
        return row.value("lsn").flatMap { LSN($0) } ?? .zero
    }

    /// Marks a stored checkpoint as this writer's without moving it (nor its `updated_at`,
    /// which the automations' loader reads as the time of the last batch): a service upgraded
    /// to 032 says the slot is its own at start, not at its first batch, which an idle one
    /// may not commit for a long time.
    public func stamp(on db: PostgresConnection) throws(PostgresError) {
        try db.query("""
            UPDATE changerelay.checkpoints SET written_by = $2 WHERE slot_name = $1 AND written_by IS DISTINCT FROM $2
            """, [slot, writer.rawValue])
    }

    /// The statement that moves the checkpoint to `lsn`, for the caller's open transaction.
    /// A literal rather than a parameterised query, so the committer can send it in one
    /// round trip with the rest of its transaction's end (`BatchCommitter`).
    public func statement(writing lsn: LSN) -> String {
        """
        INSERT INTO changerelay.checkpoints (slot_name, lsn, updated_at, written_by)
        VALUES (\(quoteLiteral(slot)), \(quoteLiteral(lsn.description))::pg_lsn, now(), '\(writer.rawValue)')
        ON CONFLICT (slot_name) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now(), written_by = EXCLUDED.written_by
        """
    }
}
