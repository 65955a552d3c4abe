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
    ///   - lease: how long a claim holds a row before another dispatcher may take it over;
    ///     longer than a try can last.
    public init(logs: Set<DeliveryLog>, claimLimit: Int, lease: Duration, logger: Logger) {
        let logs = logs.sorted { $0.key < $1.key }
        claimStatement = Self.claimStatement(limit: claimLimit, logs: logs)
        recordStatement = Self.recordStatement(logs: logs)
        self.lease = lease
        self.logger = logger
    }

    /// Readies a dispatcher's connection: woken by `DeliveryNotifications`, and without JIT
    /// compilation, which would cost these short statements, prepared and run thousands of
    /// times a second, more than it could ever save.
    ///
    /// Every statement here reads and writes a few rows by key, through an index, so scans of
    /// whole tables and the joins that take them (hash, merge) are off: a prepared
    /// statement keeps the plan made for the table as it was then, and the record's plan,
    /// made while `deliveries` was empty (a new install, its first minutes), scanned the
    /// whole table on every record afterwards: 2 ms a record at 3 000 rows, growing with
    /// the table until a reconnect.
    ///
    /// With those off, the claim's generic plan reads by key too, whatever the table held
    /// when it was made, so the session uses it (`plan_cache_mode`): planning the claim anew
    /// took 0.5 ms of each call, more than claiming the one or two rows a busy dispatcher
    /// finds due at a time.
    public func listen(on db: PostgresConnection) throws(PostgresError) {
        try db.execute("""
            SET jit = off; SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off;
            SET plan_cache_mode = force_generic_plan; LISTEN \(DeliveryNotifications.channel)
            """)
    }

    /// Claims up to the claim limit of due rows, counting the try each is claimed for.
    /// `shares` says how many rows of each endpoint it may take (endpoints not named give
    /// none) and from where (`OpenDeliveries`); rows without an endpoint are always looked
    /// at, from `unroutedFloor` on.
    /// `claimer`: the claiming process (`ProcessIdentity`), written in each claimed row with
    /// the attempt it makes; nil writes none.
    public func claim(on db: PostgresConnection, claimer: String?, shares: [EndpointShare],
                      unroutedFloor: String?) throws(PostgresError) -> [ClaimedDelivery] {
        let rows = try db.query(prepared: "changerelay_claim", claimStatement,
                                ["\(lease.components.seconds) seconds", postgresArrayLiteral(shares.map(\.endpoint)),
                                 postgresArrayLiteral(shares.map { String($0.rows) }),
                                 postgresArrayLiteral(shares.map(\.floor)), unroutedFloor, claimer]).rows
        var policies: [String: Result<RetryPolicy, any Error>] = [:]
        return rows.compactMap { row in
            guard let decoded = ClaimedDelivery.decode(claimedRow: row, policies: &policies) else { return nil }
            if let error = decoded.unreadablePolicy {
                logger.error("delivery has an unreadable retry policy; it gets one attempt",
                             metadata: ["delivery": "\(decoded.delivery.id)", "error": "\(error)"])
            }
            return decoded.delivery
        }
    }

    /// Makes due now, rather than when their leases end, the claims of dispatcher processes
    /// `ended` says have ended; returns how many. A claim names its process and the attempt
    /// it made (`claimed_by`, sql/033: `ProcessIdentity#attempt`). A dispatcher killed mid-try
    /// leaves its claims `sending` under a lease of four request timeouts and 30 s; a
    /// dispatcher that connects holding no claims of its own runs this, and the next claim
    /// takes them over as it takes over an expired lease (its try not counted, since whether
    /// it was sent is unknown).
    ///
    /// Only the process can say it has ended: its database session does not (a process whose
    /// connection was cut lives on, its requests in flight), so `ended` looks the process up,
    /// and can only for processes of its own machine. A claim whose attempt is not the row's
    /// was overwritten by a binary from before 033, which leaves the name of the claim before,
    /// and is left to its lease. It reads every unfinished row (no index can find the claimed
    /// ones without costing every claim its heap-only update), so it runs when a dispatcher
    /// connects, not per claim; an ended process claims nothing more, so no claim made since
    /// the read can be taken.
    public static func takeOverOrphans(on db: PostgresConnection, ended: (String) -> Bool) throws(PostgresError) -> Int {
        let claimers = try db.query("""
            SELECT DISTINCT split_part(claimed_by, '#', 1) FROM changerelay.deliveries
            WHERE completed_at IS NULL AND status = 'sending' AND locked_until > now() AND claimed_by IS NOT NULL
            """, []).rows.compactMap { $0[0] }
        let gone = claimers.filter(ended)
        guard !gone.isEmpty else { return 0 }
        return try db.query("""
            UPDATE changerelay.deliveries d SET locked_until = now(), updated_at = now()
            WHERE d.completed_at IS NULL AND d.status = 'sending' AND d.locked_until > now()
              AND split_part(d.claimed_by, '#', 1) = ANY ($1::text[]) AND split_part(d.claimed_by, '#', 2) = d.attempt::text
            RETURNING d.id
            """, [postgresArrayLiteral(gone)]).rows.count
    }

    /// The endpoints with unfinished rows and where each one's rows start: one index probe
    /// each, skipping through `deliveries_endpoint_open`. Each probe also walks the index
    /// entries that finished rows leave until a vacuum removes them, which made half of a
    /// claim's cost when every claim did it; a dispatcher reads this again only now and then
    /// (`EndpointCache.maxAge`) and on a notification, and its claims start their scans at
    /// the floors found here, past those entries.
    public func openDeliveries(on db: PostgresConnection) throws(PostgresError) -> OpenDeliveries {
        // Planned every time, like `nextDue`: a plan kept from when the table was small scans
        // it whole once it is not, and this runs a few times a second at most.
        var open = OpenDeliveries(endpoints: [], unroutedFloor: nil)
        for row in try db.query(Self.openStatement, []).rows {
            guard let floor = row[1] else { continue }
            if let endpoint = row[0] {
                open.endpoints.append(OpenEndpoint(endpoint: endpoint, floor: floor))
            } else {
                open.unroutedFloor = floor
            }
        }
        return open
    }

    /// `endpoints`: every endpoint with unfinished rows and the earliest `next_attempt_at`
    /// among them, one probe of `deliveries_endpoint_open` each.
    static let endpointsCTE = """
        WITH RECURSIVE endpoints AS (
            (SELECT endpoint, next_attempt_at FROM changerelay.deliveries
             WHERE completed_at IS NULL AND endpoint IS NOT NULL ORDER BY endpoint, next_attempt_at LIMIT 1)
            UNION ALL
            SELECT n.endpoint, n.next_attempt_at FROM endpoints e CROSS JOIN LATERAL (
                SELECT d.endpoint, d.next_attempt_at FROM changerelay.deliveries d
                WHERE d.completed_at IS NULL AND d.endpoint IS NOT NULL AND d.endpoint > e.endpoint
                ORDER BY d.endpoint, d.next_attempt_at LIMIT 1) n)
        """

    /// The endpoints' rows, then one row without an endpoint: the floor of the rows without one.
    static let openStatement = endpointsCTE + """

        SELECT endpoint, next_attempt_at::text FROM endpoints
        UNION ALL
        SELECT NULL, (SELECT next_attempt_at FROM changerelay.deliveries
                      WHERE endpoint IS NULL AND completed_at IS NULL ORDER BY next_attempt_at LIMIT 1)::text
        """

    /// How long until the next pending or failed row falls due (`next_attempt_at`); nil when
    /// none is waiting for a time. Rows that wait for something else (a paused endpoint, an
    /// earlier row of their ordering key) are woken by the notification or the record that
    /// frees them, and a lease left by a dispatcher that died by the poll. One index probe
    /// per endpoint.
    public func nextDue(on db: PostgresConnection) throws(PostgresError) -> Duration? {
        // Planned every time, from the table as it is: it runs at most once a poll interval.
        let result = try db.query(Self.nextDueStatement, [])
        return result.value("ms").flatMap { Double($0) }.map { .microseconds(Int64($0 * 1000)) }
    }

    static let nextDueStatement = endpointsCTE + """
        ,
        due AS (
            SELECT (SELECT d.next_attempt_at FROM changerelay.deliveries d
                    WHERE d.endpoint = e.endpoint AND d.completed_at IS NULL AND d.status <> 'sending'
                          AND d.next_attempt_at > now()
                    ORDER BY d.next_attempt_at LIMIT 1) AS at
            FROM endpoints e
            UNION ALL
            (SELECT next_attempt_at FROM changerelay.deliveries
             WHERE endpoint IS NULL AND completed_at IS NULL AND status <> 'sending' AND next_attempt_at > now()
             ORDER BY next_attempt_at LIMIT 1))
        SELECT extract(epoch FROM min(at) - now()) * 1000 AS ms FROM due
        """

    /// Records the attempts and moves their rows on (succeeded, failed to retry later, or
    /// dead) in one statement, with the log rows they keep current. A row whose attempt
    /// number moved on (its lease ran out and another dispatcher took it), or that is no
    /// longer `sending` (an operator cancelled it once its lease ran out), is left alone.
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
    /// wait for their leases. Their claimer is forgotten, as a record forgets it: the attempt
    /// number goes back, and a claim by a binary from before sql/033 (which names no claimer)
    /// would otherwise match the old name's attempt again and be taken for that claim. A row taken over from an expired lease goes back as
    /// `failed`: its earlier attempt's outcome is unknown, and `failed` is due again.
    public func release(_ unsent: [ClaimedDelivery], on db: PostgresConnection) throws(PostgresError) {
        try db.query("""
            UPDATE changerelay.deliveries d
            SET status = CASE WHEN r.status = 'sending' THEN 'failed' ELSE r.status END,
                attempt = d.attempt - 1,
                requeued_at_attempt = d.requeued_at_attempt - CASE WHEN r.status = 'sending' THEN 1 ELSE 0 END,
                locked_until = NULL, claimed_by = NULL, updated_at = now()
            FROM unnest($1::bigint[], $2::int[], $3::text[]) AS r(id, attempt, status)
            WHERE d.id = r.id AND d.attempt = r.attempt AND d.status = 'sending'
            """, [postgresArrayLiteral(unsent.map { String($0.id) }), postgresArrayLiteral(unsent.map { String($0.attempt) }),
                  postgresArrayLiteral(unsent.map(\.previousStatus.rawValue))])
    }

    /// Points claimed rows at the URLs they are now sent to (a webhook config's URL changed
    /// since they were planned), so that what a try's answer says about its URL is checked
    /// against the URL it was sent to.
    public static func retarget(_ rows: [(id: Int64, url: String)], on db: PostgresConnection) throws(PostgresError) {
        try db.query("""
            UPDATE changerelay.deliveries d SET target_url = r.url, updated_at = now()
            FROM unnest($1::bigint[], $2::text[]) AS r(id, url) WHERE d.id = r.id
            """, [postgresArrayLiteral(rows.map { String($0.id) }), postgresArrayLiteral(rows.map(\.url))])
    }

    /// The limit is part of the statement's text, not a parameter: a prepared statement's
    /// generic plan cannot see a parameter's value, and with a large backlog that plan
    /// walked the whole table to join a few rows. Rows whose report this dispatcher cannot
    /// write (none of `logs` has its key) are left to one that can: sending them here
    /// would lose their log rows.
    ///
    /// The cost of a claim follows what it takes, not how many rows are due or have been
    /// finished since the last vacuum, so that a backlog of any size drains at the same rate:
    /// - rows with an endpoint are read endpoint by endpoint (`$2`, with each one's share in
    ///   `$3`): an endpoint that is paused (`DeliveryLog.endpointCondition`) or has no share
    ///   left is not read at all, and each other endpoint gives at most its share, in due order;
    /// - rows without one come from `deliveries_unrouted_open` in due order, never walking
    ///   past rows of a saturated endpoint;
    /// - each scan starts at its floor (`$4`, `$5`: `OpenDeliveries`), not at the start of
    ///   the index, whose first entries are those finished rows leave behind.
    ///
    /// A row waits while an unfinished row before it shares its ordering key, or has it as its
    /// former key, or has its former key as its own (031): a record's key-changing UPDATE is
    /// sent after the earlier deliveries of both its keys, and before the later ones.
    ///
    /// A row taken over from a lease that ran out (its dispatcher died between claim and
    /// record) gets its attempt number moved on, as every try does, but not a try of its
    /// retry allowance (`requeued_at_attempt`, which the policy counts from, moves with it):
    /// whether the lost claim was ever sent is unknown, and counting it let a delivery go dead
    /// after fewer tries than its policy gives, one fewer for every kill.
    ///
    /// The update changes no indexed column (017), so each row's claimed version stays on
    /// its page (a HOT update) instead of costing an entry in every index. It finds its rows
    /// by their ids (`= ANY`) as well as by the join: a plan made without knowing how few
    /// rows `due` holds (a generic one) would otherwise walk the whole table to join them.
    static func claimStatement(limit: Int, logs: [DeliveryLog]) -> String {
        let reportable = logs.isEmpty ? "d.report IS NULL"
            : "(d.report IS NULL OR d.report ?| ARRAY[" + logs.map { quoteLiteral($0.key) }.joined(separator: ", ") + "])"
        let paused = logs.compactMap { log in
            log.endpointCondition.map {
                "\n      AND (NOT starts_with(e.endpoint, \(quoteLiteral($0.prefix))) OR (\($0.sql)))"
            }
        }.joined()
        let claimable = """
            d.completed_at IS NULL AND d.next_attempt_at <= now()
                      AND (d.status <> 'sending' OR d.locked_until < now())
                      AND \(reportable)
                      AND (d.ordering_key IS NULL OR NOT EXISTS (
                          SELECT FROM changerelay.deliveries o
                          WHERE o.ordering_key = d.ordering_key AND o.id < d.id AND o.completed_at IS NULL)
                          AND NOT EXISTS (
                          SELECT FROM changerelay.deliveries o
                          WHERE o.former_ordering_key = d.ordering_key AND o.id < d.id AND o.completed_at IS NULL))
                      AND (d.former_ordering_key IS NULL OR NOT EXISTS (
                          SELECT FROM changerelay.deliveries o
                          WHERE o.ordering_key = d.former_ordering_key AND o.id < d.id AND o.completed_at IS NULL))
            """
        return """
            WITH shares AS (
                SELECT e.endpoint, e.share, e.floor FROM unnest($2::text[], $3::int[], $4::timestamptz[]) AS e(endpoint, share, floor)
                WHERE e.endpoint IS NOT NULL AND e.share > 0\(paused)),
            routed AS (
                SELECT c.* FROM shares s CROSS JOIN LATERAL (
                    SELECT d.id, d.status AS previous_status, d.next_attempt_at
                    FROM changerelay.deliveries d
                    WHERE d.endpoint = s.endpoint AND d.next_attempt_at >= s.floor AND \(claimable)
                    ORDER BY d.next_attempt_at, d.id
                    LIMIT least(s.share, \(limit))
                    FOR UPDATE OF d SKIP LOCKED) c),
            unrouted AS (
                SELECT d.id, d.status AS previous_status, d.next_attempt_at
                FROM changerelay.deliveries d
                WHERE d.endpoint IS NULL AND d.next_attempt_at >= coalesce($5::timestamptz, '-infinity') AND \(claimable)
                ORDER BY d.next_attempt_at, d.id
                LIMIT \(limit)
                FOR UPDATE OF d SKIP LOCKED),
            due AS (
                SELECT id, previous_status FROM (SELECT * FROM routed UNION ALL SELECT * FROM unrouted) c
                ORDER BY next_attempt_at, id
                LIMIT \(limit))
            UPDATE changerelay.deliveries d
            SET status = 'sending', attempt = d.attempt + 1,
                requeued_at_attempt = d.requeued_at_attempt + CASE WHEN due.previous_status = 'sending' THEN 1 ELSE 0 END,
                locked_until = now() + $1::interval, claimed_by = $6 || '#' || (d.attempt + 1), updated_at = now()
            FROM due WHERE d.id = due.id AND d.id = ANY (ARRAY(SELECT id FROM due))
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
                    next_attempt_at = now() + r.delay_ms * interval '1 millisecond', locked_until = NULL, claimed_by = NULL,
                    completed_at = CASE WHEN r.status IN ('succeeded', 'dead') THEN now() END, updated_at = now()
                FROM result r WHERE d.id = r.id AND d.attempt = r.attempt AND d.status = 'sending'
                RETURNING r.*, d.report, d.target_url)\(logFragments)
            INSERT INTO changerelay.delivery_attempts (delivery_id, attempt, started_at, http_status, error, response_body)
            SELECT id, attempt, to_timestamp(started), http_status, error, body FROM updated
            """
    }
}

/// Where a claim's scans start (`DeliveryQueue.openDeliveries`): every row unfinished when
/// this was read is due no earlier than its floor, and a row that is not (one committed
/// since by a transaction that began earlier, or planned with a past due time) waits for
/// the next read, a fraction of a second.
public struct OpenDeliveries: Sendable, Equatable {
    public var endpoints: [OpenEndpoint]
    /// The earliest `next_attempt_at` of the unfinished rows without an endpoint; nil when
    /// there were none, and the claim then reads those from the start.
    public var unroutedFloor: String?

    public init(endpoints: [OpenEndpoint], unroutedFloor: String?) {
        self.endpoints = endpoints
        self.unroutedFloor = unroutedFloor
    }
}

/// An endpoint with unfinished rows, and the earliest `next_attempt_at` among them as
/// the database wrote it.
public struct OpenEndpoint: Sendable, Equatable {
    public var endpoint: String
    public var floor: String

    public init(endpoint: String, floor: String) {
        self.endpoint = endpoint
        self.floor = floor
    }
}

/// How many rows of one endpoint a claim may take, and from where.
public struct EndpointShare: Sendable, Equatable {
    public var endpoint: String
    public var floor: String
    public var rows: Int

    public init(_ open: OpenEndpoint, rows: Int) {
        endpoint = open.endpoint
        floor = open.floor
        self.rows = rows
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
