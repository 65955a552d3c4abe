import Core
import PlannedEffects
import Replication

/// `deliveries cancel`: unfinished deliveries an operator gives up on (the waiting deliveries
/// of a webhook config that is off for good, say). Each ends dead, saying so, with the logs it
/// keeps current finished in the same statement; `deliveries retry` can send it again later.
/// A delivery whose try is under way (`sending`, its lease running) is left to finish; one
/// whose lease ran out (its dispatcher died) can be cancelled, and a late record of that try
/// leaves it cancelled (`DeliveryQueue.record` records only rows still `sending`). One that
/// reports into a log that cannot be closed (`DeliveryLog.cancelFragment` nil) is left alone:
/// ending it would leave that log saying it is still to come.
public enum DeliveryCancel {
    /// Cancels those of `ids` that can be and returns how many it cancelled. `logs` are every
    /// log a delivery in the table may keep current; only those whose table this database has
    /// are named, since no delivery can report into a table that does not exist.
    public static func cancel(_ ids: [Int64], logs: Set<DeliveryLog>, on db: PostgresConnection) throws(PostgresError) -> Int {
        let present = try DeliveryLog.present(logs, on: db)
        let fragments = present.compactMap(\.cancelFragment).map { ",\n" + $0 }.joined()
        let unclosable = present.filter { $0.cancelFragment == nil }.map(\.key)
        let closable = unclosable.isEmpty ? "true"
            : "coalesce(NOT (d.report ?| ARRAY[" + unclosable.map(quoteLiteral).joined(separator: ", ") + "]), true)"
        let result = try db.query("""
            WITH cancelled AS (
                UPDATE changerelay.deliveries d
                SET status = 'dead', last_error = \(quoteLiteral(DeliveryLog.cancelReason)), locked_until = NULL, completed_at = now(),
                    updated_at = now()
                WHERE d.id = ANY($1::bigint[]) AND d.completed_at IS NULL AND (d.status <> 'sending' OR d.locked_until < now())
                  AND \(closable)
                RETURNING d.id, d.report)\(fragments)
            SELECT count(*) AS n FROM cancelled
            """, [postgresArrayLiteral(ids.map { String($0) })])
        return result.value("n").flatMap { Int($0) } ?? 0
    }
}
