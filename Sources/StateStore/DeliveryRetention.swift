import Replication

/// Deletes finished deliveries by age, a bounded batch per statement: each batch is its
/// own short transaction, so a large backlog never holds one long transaction, one long
/// lock or one huge WAL record. Their attempts go with them (ON DELETE CASCADE). Only
/// the statuses named are swept; dead, failed, pending and paused deliveries wait for an
/// operator (`deliveries retry` or `deliveries purge --dead`) unless asked for.
public enum DeliveryRetention {
    public static let batchSize = 5_000

    /// Succeeded deliveries completed more than `days` days ago (the hourly built-in job).
    public static func sweepSucceeded(olderThanDays days: Int, on db: PostgresConnection) throws(PostgresError) -> Int64 {
        try deleteInBatches(name: "changerelay_retention_succeeded", """
            DELETE FROM changerelay.deliveries WHERE id = ANY (ARRAY(
                SELECT id FROM changerelay.deliveries
                WHERE status = 'succeeded' AND completed_at < now() - make_interval(days => $1::int)
                ORDER BY completed_at LIMIT $2))
              AND status = 'succeeded' AND completed_at < now() - make_interval(days => $1::int)
            """, age: String(days), on: db)
    }

    /// Deliveries dead for more than `seconds` seconds (`deliveries purge --dead`).
    public static func purgeDead(olderThanSeconds seconds: Int64, on db: PostgresConnection) throws(PostgresError) -> Int64 {
        try deleteInBatches(name: "changerelay_purge_dead", """
            DELETE FROM changerelay.deliveries WHERE id = ANY (ARRAY(
                SELECT id FROM changerelay.deliveries
                WHERE status = 'dead' AND completed_at < now() - make_interval(secs => $1::float8)
                ORDER BY completed_at LIMIT $2))
              AND status = 'dead' AND completed_at < now() - make_interval(secs => $1::float8)
            """, age: String(seconds), on: db)
    }

    /// Runs `sql` (a DELETE of at most `$2` rows older than `$1`) until a batch deletes fewer
    /// than a whole batch; the total deleted. Each batch's ids are collected first, oldest
    /// first, from 015's partial index, and deleted through the primary key
    /// (`id = ANY (ARRAY(…))`): with `id IN (…)` the planner may hash-join the whole table.
    /// The DELETE repeats the status and age: a row an operator re-queued (`deliveries retry`)
    /// after its id was collected is checked again, in its new version, when the DELETE waits
    /// for the re-queue's lock, and the id list alone would delete a pending delivery.
    private static func deleteInBatches(name: String, _ sql: String, age: String,
                                        on db: PostgresConnection) throws(PostgresError) -> Int64 {
        var total: Int64 = 0
        while true {
            let result = try db.query(prepared: name, "WITH deleted AS (\(sql) RETURNING 1) SELECT count(*) AS n FROM deleted",
                                      [age, String(batchSize)])
            let deleted = result.value("n").flatMap(Int.init) ?? 0
            total += Int64(deleted)
            if deleted < batchSize { return total }
        }
    }
}
