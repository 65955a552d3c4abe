import Core
import Replication

/// Every statement on `changerelay.backfills` but the progress, which the checkpoint
/// transaction applies (`apply_staged_backfill_progress()`): requests recorded by the
/// command, picked up, failed or cancelled, and listed.
public enum BackfillRequests {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case pending, running, done, cancelled, failed

        public var isFinished: Bool { self == .done || self == .cancelled || self == .failed }
    }

    /// One request as it stands.
    public struct Entry: Sendable, Hashable {
        public var id: Int64
        public var schema: String
        public var table: String
        public var whereClause: String?
        public var chunkSize: Int
        public var keyColumns: [String]
        public var status: Status
        public var cursor: [String]?
        /// The highest key matching the request when its runner started (029); nil before
        /// that, empty when no row matched.
        public var highKey: [String]?
        public var chunksDone: Int
        public var rowsDone: Int64
        public var rowsSuperseded: Int64
        public var rowsEstimated: Int64?
        public var rowsPerSecond: Double?
        public var etaSeconds: Double?
        public var error: String?
        /// ISO timestamps, as Postgres prints them; nil before it happened.
        public var requestedAt: String
        public var startedAt: String?
        public var finishedAt: String?
        /// The slot whose service works on it (037); nil for a request recorded before 037,
        /// which any service's runner takes.
        public var slot: String?

        public var qualifiedTable: String { schema + "." + table }
    }

    /// Wakes the runner of the service that holds the slot.
    static let channel = "changerelay_backfills"

    private static let columns = """
        id, table_schema, table_name, where_clause, chunk_size, key_columns, status, cursor, chunks_done, rows_done,
        rows_superseded, rows_estimated, rows_per_second, eta_seconds, error,
        to_char(requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), high_key, to_jsonb(b) ->> 'slot_name'
        """

    /// Records a request for the service that reads `slot` and wakes the runners; returns
    /// its id.
    public static func request(schema: String, table: String, where condition: String?, chunkSize: Int,
                               keyColumns: [String], rowsEstimated: Int64?, slot: String,
                               on db: PostgresConnection) throws(PostgresError) -> Int64 {
        let id = try db.query("""
            WITH recorded AS (
                INSERT INTO changerelay.backfills (table_schema, table_name, where_clause, chunk_size, key_columns, rows_estimated,
                                                   slot_name)
                VALUES ($1, $2, $3, $4::int, $5::text[], $6::bigint, $7) RETURNING id)
            SELECT id, pg_notify('\(channel)', id::text) FROM recorded
            """, [schema, table, condition, String(chunkSize), postgresArrayLiteral(keyColumns), rowsEstimated.map(String.init),
                  slot])
            .value("id").flatMap(Int64.init)
        guard let id else { throw PostgresError(.protocolViolation, "INSERT … RETURNING id returned no id", endpoint: db.endpoint) }
        return id
    }

    /// Every request, newest first (at most `limit`).
    public static func list(limit: Int = 100, on db: PostgresConnection) throws(PostgresError) -> [Entry] {
        try db.query("SELECT \(columns) FROM changerelay.backfills b ORDER BY id DESC LIMIT $1", [String(limit)]).rows
            .compactMap(entry)
    }

    public static func entry(id: Int64, on db: PostgresConnection) throws(PostgresError) -> Entry? {
        try db.query("SELECT \(columns) FROM changerelay.backfills b WHERE id = $1", [String(id)]).rows.compactMap(entry).first
    }

    /// The oldest request not finished for the service that reads `slot` (or for any, recorded
    /// before 037): the runner works on one at a time, in order. Another slot's request is
    /// another service's, whose handlers and cursor it is.
    public static func next(slot: String, on db: PostgresConnection) throws(PostgresError) -> Entry? {
        try db.query("""
            SELECT \(columns) FROM changerelay.backfills b
            WHERE status IN ('pending', 'running') AND (slot_name IS NULL OR slot_name = $1) ORDER BY id LIMIT 1
            """, [slot]).rows.compactMap(entry).first
    }

    /// The runner took it up; false when it was cancelled meanwhile.
    public static func start(_ id: Int64, on db: PostgresConnection) throws(PostgresError) -> Bool {
        try db.query("""
            UPDATE changerelay.backfills SET status = 'running', started_at = coalesce(started_at, clock_timestamp()),
                   updated_at = clock_timestamp()
            WHERE id = $1 AND status IN ('pending', 'running') RETURNING id
            """, [String(id)]).rows.count == 1
    }

    /// Records where the request ends (`Entry.highKey`), once: a runner that read it before
    /// and crashed keeps the first. Returns the one recorded.
    public static func bound(_ id: Int64, highKey: [String], on db: PostgresConnection) throws(PostgresError) -> [String] {
        let stored = try db.query("""
            UPDATE changerelay.backfills SET high_key = coalesce(high_key, $2::text[]) WHERE id = $1 RETURNING high_key::text
            """, [String(id), postgresArrayLiteral(highKey)]).value("high_key")
        return stored.map { postgresArrayElements($0).compactMap { $0 } } ?? highKey
    }

    public static func fail(_ id: Int64, error: String, on db: PostgresConnection) throws(PostgresError) {
        _ = try db.query("""
            UPDATE changerelay.backfills SET status = 'failed', error = $2, finished_at = clock_timestamp(),
                   updated_at = clock_timestamp()
            WHERE id = $1 AND status IN ('pending', 'running')
            """, [String(id), error])
    }

    /// Cancels a request that has not finished; the status it has otherwise (nil: no such request).
    public static func cancel(_ id: Int64, on db: PostgresConnection) throws(PostgresError) -> (cancelled: Bool, status: Status?) {
        let result = try db.query("""
            WITH cancelled AS (
                UPDATE changerelay.backfills SET status = 'cancelled', finished_at = clock_timestamp(),
                       updated_at = clock_timestamp()
                WHERE id = $1 AND status IN ('pending', 'running') RETURNING id)
            SELECT (SELECT count(*) FROM cancelled) AS cancelled, pg_notify('\(channel)', $1::text),
                   (SELECT status FROM changerelay.backfills WHERE id = $1) AS status
            """, [String(id)])
        return (result.value("cancelled") == "1", result.value("status").flatMap(Status.init(rawValue:)))
    }

    public static func listen(on db: PostgresConnection) throws(PostgresError) {
        try db.execute("LISTEN " + channel)
    }

    private static func entry(_ row: [String?]) -> Entry? {
        guard row.count == 20, let id = row[0].flatMap(Int64.init), let schema = row[1], let table = row[2],
              let chunkSize = row[4].flatMap(Int.init), let status = row[6].flatMap(Status.init(rawValue:)),
              let requestedAt = row[15] else { return nil }
        return Entry(id: id, schema: schema, table: table, whereClause: row[3], chunkSize: chunkSize,
                     keyColumns: row[5].map { postgresArrayElements($0).compactMap { $0 } } ?? [], status: status,
                     cursor: row[7].map { postgresArrayElements($0).compactMap { $0 } },
                     highKey: row[18].map { postgresArrayElements($0).compactMap { $0 } }, chunksDone: row[8].flatMap(Int.init) ?? 0,
                     rowsDone: row[9].flatMap(Int64.init) ?? 0, rowsSuperseded: row[10].flatMap(Int64.init) ?? 0,
                     rowsEstimated: row[11].flatMap(Int64.init), rowsPerSecond: row[12].flatMap(Double.init),
                     etaSeconds: row[13].flatMap(Double.init), error: row[14], requestedAt: requestedAt,
                     startedAt: row[16], finishedAt: row[17], slot: row[19])
    }
}
