import Core
import PlannedEffects
import Replication

/// `deliveries retry`: failed or dead deliveries sent again. Each gets its retry policy's
/// whole allowance and schedule again while its attempt numbers run on
/// (`requeued_at_attempt`, 009), so attempt rows, log rows and the body's attempt field
/// never repeat a number; the logs it keeps current are put back in the same statement,
/// and the dispatchers are woken.
public enum DeliveryRequeue {
    public enum Selection: Sendable, Hashable {
        /// Every dead delivery.
        case allDead
        /// These deliveries, where they are failed or dead.
        case ids([Int64])
    }

    /// Re-queues `selection` and returns how many deliveries it re-queued. `logs` are every
    /// log a delivery in the table may keep current; only those whose table this database
    /// has are named, since no delivery can report into a table that does not exist.
    public static func requeue(_ selection: Selection, logs: Set<DeliveryLog>,
                               on db: PostgresConnection) throws(PostgresError) -> Int {
        let logFragments = try DeliveryLog.present(logs, on: db).compactMap(\.requeueFragment).map { ",\n" + $0 }.joined()
        let (allDead, ids): (Bool, [Int64]) = switch selection {
        case .allDead: (true, [])
        case .ids(let ids): (false, ids)
        }
        let result = try db.query("""
            WITH requeued AS (
                UPDATE changerelay.deliveries
                SET status = 'pending', requeued_at_attempt = attempt, next_attempt_at = now(), locked_until = NULL,
                    completed_at = NULL, updated_at = now()
                WHERE CASE WHEN $1 THEN status = 'dead' ELSE id = ANY($2::bigint[]) AND status IN ('failed', 'dead') END
                RETURNING id, report)\(logFragments)
            SELECT count(*) AS n, pg_notify(\(quoteLiteral(DeliveryNotifications.channel)), '') IS NULL AS notified FROM requeued
            """, [allDead ? "true" : "false", postgresArrayLiteral(ids.map { String($0) })])
        return result.value("n").flatMap { Int($0) } ?? 0
    }
}
