import Core
import Replication

/// `deliveries list`: the newest deliveries, for a person to read.
public enum DeliveryListing {
    /// One delivery as it is listed: Postgres' text of each column, printed as it comes.
    public struct Entry: Sendable, Hashable {
        public var id: String
        public var status: String
        public var attempt: String
        public var handler: String
        public var idempotencyKey: String
        /// Without a `user:password@` part: listings are read by people and pages.
        public var url: String
        /// The last try's HTTP status, or `-` when it had none.
        public var lastHTTPStatus: String
        /// The last try's error, or empty.
        public var lastError: String
        /// `YYYY-MM-DD HH24:MI:SS` in the session's time zone.
        public var nextAttemptAt: String
    }

    /// At most `limit` deliveries, newest first, only those in `status` and of `handler` when they are given.
    public static func newest(status: DeliveryStatus?, handler: String? = nil, limit: Int,
                              on db: PostgresConnection) throws(PostgresError) -> [Entry] {
        try db.query("""
            SELECT id, status, attempt, handler, idempotency_key, target_url, coalesce(last_http_status::text, '-'),
                   coalesce(last_error, ''), to_char(next_attempt_at, 'YYYY-MM-DD HH24:MI:SS')
            FROM changerelay.deliveries WHERE ($1::text IS NULL OR status = $1) AND ($3::text IS NULL OR handler = $3)
            ORDER BY id DESC LIMIT $2
            """, [status?.rawValue, String(limit), handler]).rows.map { row in
            // Every column is NOT NULL or coalesced; "" only stands in for what cannot happen.
            let text = row.map { $0 ?? "" }
            return Entry(id: text[0], status: text[1], attempt: text[2], handler: text[3], idempotencyKey: text[4],
                         url: redactedURL(text[5]), lastHTTPStatus: text[6], lastError: text[7], nextAttemptAt: text[8])
        }
    }
}
