import Core
import PlannedEffects
import Replication

/// `deliveries list`: the newest deliveries, for a person to read.
public enum DeliveryListing {
    /// One delivery as it is listed: Postgres' text of each column, printed as it comes.
    public struct Entry: Sendable, Hashable {
        public var id: String
        /// The row's status, or `paused` for an unfinished one whose endpoint is paused (its
        /// webhook config is inactive): it waits, and is not claimed until the config is active.
        public var status: String
        public var attempt: String
        public var handler: String
        public var idempotencyKey: String
        /// Without credentials (`redactedURL`): listings are read by people and pages.
        public var url: String
        /// The last try's HTTP status, or `-` when it had none.
        public var lastHTTPStatus: String
        /// The last try's error, or empty.
        public var lastError: String
        /// `YYYY-MM-DD HH24:MI:SS` in the session's time zone.
        public var nextAttemptAt: String
    }

    /// Which deliveries to list: a status, or the paused ones.
    public enum Filter: Sendable, Hashable {
        case status(DeliveryStatus)
        case paused

        public init?(_ text: String) {
            if text == "paused" { self = .paused } else if let status = DeliveryStatus(rawValue: text) { self = .status(status) }
            else { return nil }
        }

        var text: String {
            switch self {
            case .status(let status): status.rawValue
            case .paused: "paused"
            }
        }
    }

    /// At most `limit` deliveries, newest first, only those `status` names and of `handler`
    /// when they are given. The due time is UTC, as every other time the API and the commands
    /// show, whatever the session's time zone. `logs` are the logs whose endpoint conditions may pause a
    /// delivery; those whose table this database lacks are left out.
    public static func newest(status: Filter?, handler: String? = nil, limit: Int, logs: Set<DeliveryLog> = [],
                              on db: PostgresConnection) throws(PostgresError) -> [Entry] {
        let paused = try DeliveryLog.present(logs, on: db).compactMap(\.endpointCondition).map { condition in
            "(starts_with(e.endpoint, \(quoteLiteral(condition.prefix))) AND NOT (\(condition.sql)))"
        }
        let shown = paused.isEmpty ? "d.status" : """
            CASE WHEN d.completed_at IS NULL AND d.status <> 'sending' AND EXISTS (
                SELECT FROM (SELECT d.endpoint) e (endpoint) WHERE \(paused.joined(separator: " OR ")))
            THEN 'paused' ELSE d.status END
            """
        return try db.query("""
            SELECT id, \(shown), attempt, handler, idempotency_key, target_url, coalesce(last_http_status::text, '-'),
                   coalesce(last_error, ''),
                   to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM changerelay.deliveries d WHERE ($1::text IS NULL OR \(shown) = $1) AND ($3::text IS NULL OR handler = $3)
            ORDER BY id DESC LIMIT $2
            """, [status?.text, String(limit), handler]).rows.map { row in
            // Every column is NOT NULL or coalesced; "" only stands in for what cannot happen.
            let text = row.map { $0 ?? "" }
            return Entry(id: text[0], status: text[1], attempt: text[2], handler: text[3], idempotencyKey: text[4],
                         url: redactedURL(text[5]), lastHTTPStatus: text[6], lastError: text[7], nextAttemptAt: text[8])
        }
    }
}
