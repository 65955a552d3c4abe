import Core
import Replication

/// The admin server's reads of the service's own tables that no command needed before:
/// counts for `/api/status` and `/metrics`.
enum StateQueries {
    /// Deliveries per (handler, status).
    static func deliveryCounts(on db: PostgresConnection) throws(PostgresError) -> [AdminReports.DeliveryCount] {
        counts(try db.query(prepared: "changerelay_admin_delivery_counts", """
            SELECT handler, status, count(*) FROM changerelay.deliveries GROUP BY handler, status ORDER BY handler, status
            """, []))
    }

    /// Unfinished deliveries per (handler, status): what a scrape needs, read through the
    /// partial indexes of open rows, so its cost follows the backlog, not the table's history.
    static func unfinishedDeliveryCounts(on db: PostgresConnection) throws(PostgresError) -> [AdminReports.DeliveryCount] {
        counts(try db.query(prepared: "changerelay_admin_unfinished_counts", """
            SELECT handler, status, count(*) FROM changerelay.deliveries
            WHERE completed_at IS NULL GROUP BY handler, status
            """, []))
    }

    /// Rows of (handler, status, count).
    private static func counts(_ result: QueryResult) -> [AdminReports.DeliveryCount] {
        result.rows.compactMap { row in
            guard let handler = row[0], let status = row[1], let count = row[2].flatMap({ Int($0) }) else { return nil }
            return AdminReports.DeliveryCount(handler: handler, status: status, count: count)
        }
    }

    /// Message buffers open as of the checkpoint; 0 on a state database set up before message buffering.
    static func buffersOpen(on db: PostgresConnection) throws(PostgresError) -> Int {
        try db.query("""
            SELECT CASE WHEN to_regclass('changerelay.buffer_messages') IS NULL THEN 0
                        ELSE (SELECT count(DISTINCT buffer_id) FROM changerelay.buffer_messages) END AS n
            """, []).value("n").flatMap { Int($0) } ?? 0
    }

    /// The running backfills this service's slot works on: its own requests (037) and those
    /// that name no slot. Another slot's service, sharing the state database, has its own.
    /// Read through the row's JSON, so a state database without 037's column (a dispatcher
    /// alone needs none) counts every request, as before it.
    private static let slotsRunningBackfills = """
        FROM changerelay.backfills b
        WHERE status = 'running' AND coalesce(to_jsonb(b) ->> 'slot_name', $1) = $1
        """

    /// Running backfills of `slot`'s service by table (`schema.table`).
    static func backfillsRunningByTable(slot: String, on db: PostgresConnection) throws(PostgresError) -> [String: Int] {
        var running: [String: Int] = [:]
        for row in try db.query("""
            SELECT table_schema || '.' || table_name AS t, count(*) AS n \(slotsRunningBackfills) GROUP BY 1
            """, [slot]).rows {
            if let table = row[0], let count = row[1].flatMap({ Int($0) }) { running[table] = count }
        }
        return running
    }

    static func backfillsRunning(slot: String, on db: PostgresConnection) throws(PostgresError) -> Int {
        try db.query("SELECT count(*) AS n \(slotsRunningBackfills)", [slot]).value("n").flatMap { Int($0) } ?? 0
    }

    /// The delivery's status, nil when there is no such delivery.
    static func deliveryStatus(id: Int64, on db: PostgresConnection) throws(PostgresError) -> String? {
        try db.query("SELECT status FROM changerelay.deliveries WHERE id = $1", [String(id)]).value("status")
    }

    /// The source server's current WAL end (what the slot has yet to reach), and how far the
    /// slot has confirmed: past the last checkpoint when the WAL since holds nothing the
    /// publication carries (an idle stream confirms the WAL's end), and where a new slot starts.
    static func sourcePositions(slot: String, on db: PostgresConnection) throws(PostgresError)
        -> (walEnd: LSN, confirmed: LSN?)?
    {
        let result = try db.query("""
            SELECT pg_current_wal_lsn()::text AS lsn,
                   (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1) AS confirmed
            """, [slot])
        guard let walEnd = result.value("lsn").flatMap({ LSN($0) }) else { return nil }
        return (walEnd, result.value("confirmed").flatMap { LSN($0) })
    }

    /// The WAL the service has yet to handle: from the furthest of its checkpoint and the
    /// slot's confirmed position to the WAL's end.
    static func lagBytes(checkpoint: LSN, source: (walEnd: LSN, confirmed: LSN?)) -> UInt64 {
        let handled = max(checkpoint.value, source.confirmed?.value ?? 0)
        return source.walEnd.value > handled ? source.walEnd.value - handled : 0
    }
}
