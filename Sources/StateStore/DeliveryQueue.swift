import Core
import Foundation
import Logging
import PlannedEffects
import Replication

/// `changerelay.deliveries` as a dispatcher works it: claim due rows, record each try,
/// put back what was claimed and never sent. Any number of dispatchers share the table:
/// a claim takes rows with `FOR UPDATE SKIP LOCKED` and a lease, so the claims of one
/// that dies are taken over when their leases end.
///
/// The statements are built once, from the delivery logs this dispatcher's handlers write:
/// only those log tables are named, so a state database without the seed's tables works
/// as long as no handler reports into them.
public struct DeliveryQueue: Sendable {
    let claimStatement: String
    let recordStatement: String
    private let lease: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - logs: the logs its deliveries may keep current (`Router.reports`).
    ///   - claimLimit: the most rows one claim takes.
    ///   - maxInFlightPerEndpoint: the most rows of one `endpoint` in flight at once,
    ///     across every dispatcher sharing the table.
    ///   - lease: how long a claim holds a row before another dispatcher may take it over;
    ///     longer than a try can last.
    public init(logs: Set<DeliveryLog>, claimLimit: Int, maxInFlightPerEndpoint: Int = 8, lease: Duration,
                logger: Logger) {
        let logs = logs.sorted { $0.key < $1.key }
        claimStatement = Self.claimStatement(limit: claimLimit, maxInFlightPerEndpoint: maxInFlightPerEndpoint, logs: logs)
        recordStatement = Self.recordStatement(logs: logs)
        self.lease = lease
        self.logger = logger
    }

    /// Readies a dispatcher's connection: woken by `DeliveryNotifications`, and without JIT
    /// compilation, which would cost these short statements, prepared and run thousands of
    /// times a second, more than it could ever save.
    public func listen(on db: PostgresConnection) throws(PostgresError) {
        try db.execute("SET jit = off; LISTEN " + DeliveryNotifications.channel)
    }

    /// Claims up to the claim limit of due rows, counting the try each is claimed for.
    public func claim(on db: PostgresConnection) throws(PostgresError) -> [ClaimedDelivery] {
        let rows = try db.query(prepared: "changerelay_claim", claimStatement, ["\(lease.components.seconds) seconds"]).rows
        return rows.compactMap { row in
            guard let decoded = ClaimedDelivery.decode(claimedRow: row) else { return nil }
            if let error = decoded.unreadablePolicy {
                logger.error("delivery has an unreadable retry policy; it gets one attempt",
                             metadata: ["delivery": "\(decoded.delivery.id)", "error": "\(error)"])
            }
            return decoded.delivery
        }
    }

    /// Records the attempts and moves their rows on (succeeded, failed to retry later, or
    /// dead) in one statement, with the log rows they keep current. A row whose attempt
    /// number moved on (its lease ran out and another dispatcher took it) is left alone.
    public func record(_ attempts: [RecordedAttempt], on db: PostgresConnection) throws(PostgresError) {
        var columns = Array(repeating: [String?](), count: 8)
        for attempt in attempts {
            let row: [String?] = [String(attempt.deliveryID), attempt.status.rawValue, attempt.httpStatus.map(String.init),
                                  attempt.error, String(attempt.retryIn.wholeMilliseconds), String(attempt.attempt),
                                  String(attempt.started.timeIntervalSince1970), attempt.responseBody]
            for (index, value) in row.enumerated() { columns[index].append(value) }
        }
        try db.query(prepared: "changerelay_record", recordStatement, columns.map(postgresArrayLiteral))
    }

    /// Puts claimed rows that were never sent back as they were, so a restart need not
    /// wait for their leases. A row taken over from an expired lease goes back as
    /// `failed`: its earlier attempt's outcome is unknown, and `failed` is due again.
    public func release(_ unsent: [ClaimedDelivery], on db: PostgresConnection) throws(PostgresError) {
        try db.query("""
            UPDATE changerelay.deliveries d
            SET status = CASE WHEN r.status = 'sending' THEN 'failed' ELSE r.status END,
                attempt = d.attempt - 1, locked_until = NULL, updated_at = now()
            FROM unnest($1::bigint[], $2::int[], $3::text[]) AS r(id, attempt, status)
            WHERE d.id = r.id AND d.attempt = r.attempt AND d.status = 'sending'
            """, [postgresArrayLiteral(unsent.map { String($0.id) }), postgresArrayLiteral(unsent.map { String($0.attempt) }),
                  postgresArrayLiteral(unsent.map(\.previousStatus.rawValue))])
    }

    /// The limit is part of the statement's text, not a parameter: a prepared statement's
    /// generic plan cannot see a parameter's value, and with a large backlog that plan
    /// walked the whole table to join a few rows. Rows whose report this dispatcher cannot
    /// write (none of `logs` has its key) are left to one that can: sending them here
    /// would lose their log rows; rows whose log's claim condition fails wait, paused.
    ///
    /// An endpoint's rows are claimed only up to its free share: `maxInFlightPerEndpoint`
    /// less the rows of that endpoint under a live lease. Those counts are taken once per
    /// claim (`busy`, from the partial index on in-flight rows), and an endpoint that has no
    /// share left is one array comparison per row: counting per row made a claim over a
    /// large backlog take minutes. The candidates are locked first and the shares counted
    /// over them after, since `FOR UPDATE` allows no window function.
    static func claimStatement(limit: Int, maxInFlightPerEndpoint: Int, logs: [DeliveryLog]) -> String {
        let reportable = logs.isEmpty ? "d.report IS NULL"
            : "(d.report IS NULL OR d.report ?| ARRAY[" + logs.map { quoteLiteral($0.key) }.joined(separator: ", ") + "])"
        let conditions = logs.compactMap { log in
            log.claimCondition.map { "\n      AND (d.report IS NULL OR NOT d.report ? \(quoteLiteral(log.key)) OR (\($0)))" }
        }.joined()
        return """
            WITH busy AS (
                SELECT endpoint, count(*) AS in_flight FROM changerelay.deliveries
                WHERE status = 'sending' AND endpoint IS NOT NULL AND locked_until >= now()
                GROUP BY endpoint),
            candidates AS (
                SELECT d.id, d.status AS previous_status, d.endpoint, d.next_attempt_at
                FROM changerelay.deliveries d
                WHERE d.status IN ('pending', 'failed', 'sending') AND d.next_attempt_at <= now()
                  AND (d.status <> 'sending' OR d.locked_until < now())
                  AND \(reportable)\(conditions)
                  AND (d.endpoint IS NULL OR d.endpoint <> ALL (ARRAY(
                      SELECT endpoint FROM busy WHERE in_flight >= \(maxInFlightPerEndpoint))))
                  AND (d.ordering_key IS NULL OR NOT EXISTS (
                      SELECT 1 FROM changerelay.deliveries e
                      WHERE e.ordering_key = d.ordering_key AND e.id < d.id
                        AND e.status IN ('pending', 'failed', 'sending')))
                ORDER BY d.next_attempt_at, d.id
                LIMIT \(limit)
                FOR UPDATE OF d SKIP LOCKED),
            due AS (
                SELECT c.id, c.previous_status FROM (
                    SELECT c.*, row_number() OVER (PARTITION BY c.endpoint ORDER BY c.next_attempt_at, c.id) AS n
                    FROM candidates c) c
                LEFT JOIN busy b ON b.endpoint = c.endpoint
                WHERE c.endpoint IS NULL OR coalesce(b.in_flight, 0) + c.n <= \(maxInFlightPerEndpoint))
            UPDATE changerelay.deliveries d
            SET status = 'sending', attempt = d.attempt + 1, locked_until = now() + $1::interval, updated_at = now()
            FROM due WHERE d.id = due.id
            RETURNING \(ClaimedDelivery.claimedColumns.joined(separator: ", "))
            """
    }

    /// Records attempts and moves rows on; the logs' CTEs ride along over `updated`, so a
    /// log row is written in the same transaction as the attempt it describes.
    static func recordStatement(logs: [DeliveryLog]) -> String {
        let logFragments = logs.map { ",\n" + $0.recordFragment }.joined()
        return """
            WITH result AS (
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::int[],
                                     $7::float8[], $8::text[])
                    AS r(id, status, http_status, error, delay_ms, attempt, started, body)),
            updated AS (
                UPDATE changerelay.deliveries d
                SET status = r.status, last_http_status = r.http_status, last_error = r.error,
                    next_attempt_at = now() + r.delay_ms * interval '1 millisecond', locked_until = NULL,
                    completed_at = CASE WHEN r.status IN ('succeeded', 'dead') THEN now() END, updated_at = now()
                FROM result r WHERE d.id = r.id AND d.attempt = r.attempt
                RETURNING r.*, d.report)\(logFragments)
            INSERT INTO changerelay.delivery_attempts (delivery_id, attempt, started_at, http_status, error, response_body)
            SELECT id, attempt, to_timestamp(started), http_status, error, body FROM updated
            """
    }
}

/// One finished try as `DeliveryQueue.record` writes it: a `delivery_attempts` row and the
/// delivery's next status.
public struct RecordedAttempt: Sendable {
    public var deliveryID: Int64
    /// The try's number, as claimed: a row claimed again since is left alone.
    public var attempt: Int
    /// `succeeded`, `failed` (due again after `retryIn`) or `dead`.
    public var status: DeliveryStatus
    public var httpStatus: Int?
    public var error: String?
    /// How long after the record the next try is due; zero when there is none.
    public var retryIn: Duration
    public var started: Date
    public var responseBody: String?

    public init(deliveryID: Int64, attempt: Int, status: DeliveryStatus, httpStatus: Int?, error: String?,
                retryIn: Duration, started: Date, responseBody: String?) {
        self.deliveryID = deliveryID
        self.attempt = attempt
        self.status = status
        self.httpStatus = httpStatus
        self.error = error
        self.retryIn = retryIn
        self.started = started
        self.responseBody = responseBody
    }
}
