import Replication

/// `GET /api/activity`: the newest rows of the seed systems' own log tables, the latest
/// executions the dashboard shows. They are the tables the handlers keep current in the state
/// database (`public.*` there), read as they are, so the page shows what the seed's own queries
/// would find.
///
/// Postgres renders each list (`json_agg`), so a column reaches the page with its table's
/// name and type and nothing here has to mirror the seed's schema. A table that does not exist
/// (that part of the seed never set up) gives an empty list, not an error: the dashboard of a
/// service that runs only some handlers still renders.
enum ActivityQueries {
    static let defaultLimit = 10
    static let maxLimit = 100

    /// One list of the answer: its key, the tables it reads (all must exist) and its query,
    /// newest first, `$1` rows at most. Each orders by an indexed column but the automation
    /// runs, whose table has no index on `created_at` alone: a top-N sort over that log.
    struct Feed {
        var key: String
        var tables: [String]
        var sql: String
    }

    /// A timestamp as the rest of the API writes them: UTC, ISO 8601, whole seconds.
    private static func utc(_ column: String) -> String {
        #"to_char(\#(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"#
    }

    /// Long texts (error messages, response bodies) are cut: the page shows a line, not a page.
    private static func short(_ column: String) -> String { "left(\(column), 300)" }

    static let feeds: [Feed] = [
        Feed(key: "conversation_checks", tables: ["public.trigger_execution_logs"], sql: """
            SELECT id, trigger_name, record_id, attempt, status, http_status, \(short("error")) AS error,
                   \(utc("execution_time")) AS execution_time
            FROM public.trigger_execution_logs ORDER BY id DESC LIMIT $1
            """),
        Feed(key: "automation_runs", tables: ["public.automation_execution_logs"], sql: """
            SELECT id, workflow_id, trigger_type, status, attempts, \(short("error_message")) AS error_message,
                   \(utc("created_at")) AS created_at, \(utc("completed_at")) AS completed_at
            FROM public.automation_execution_logs ORDER BY created_at DESC LIMIT $1
            """),
        Feed(key: "webhook_deliveries", tables: ["public.webhook_logs", "public.webhook_configs"], sql: """
            SELECT l.id, c.name AS webhook, l.event_type, l.response_status, \(short("l.error_message")) AS error_message,
                   l.attempt_count, \(utc("l.created_at")) AS created_at, \(utc("l.completed_at")) AS completed_at
            FROM public.webhook_logs l LEFT JOIN public.webhook_configs c ON c.id = l.webhook_config_id
            ORDER BY l.id DESC LIMIT $1
            """),
        // A buffer with the processing job of its flush, when it has been flushed.
        Feed(key: "message_buffers", tables: ["public.message_buffer", "public.buffer_processing_jobs"], sql: """
            SELECT b.id, b.conversation_id, b.status, b.message_count, \(utc("b.buffer_start_time")) AS buffer_start_time,
                   \(utc("b.flush_due_at")) AS flush_due_at, \(utc("b.processed_at")) AS processed_at,
                   j.status AS job_status, j.attempts AS job_attempts, \(short("j.error_message")) AS job_error
            FROM public.message_buffer b
            LEFT JOIN LATERAL (
                SELECT status, attempts, error_message FROM public.buffer_processing_jobs
                WHERE buffer_id = b.id ORDER BY id DESC LIMIT 1
            ) j ON true
            ORDER BY b.id DESC LIMIT $1
            """),
    ]

    /// The answer's JSON object, one key per feed (sorted, as `AdminReports.json` sorts them).
    static func newest(limit: Int, on db: PostgresConnection) throws(PostgresError) -> String {
        let allTables = Set(feeds.flatMap(\.tables)).sorted()
        let present = Set(try db.query("""
            SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL
            """, ["{" + allTables.joined(separator: ",") + "}"]).rows.compactMap { $0[0] })
        var members: [String] = []
        for feed in feeds.sorted(by: { $0.key < $1.key }) {
            var list = "[]"
            if feed.tables.allSatisfy(present.contains) {
                list = try db.query("SELECT coalesce(json_agg(r), '[]')::text AS rows FROM (\(feed.sql)) r",
                                    [String(limit)]).value("rows") ?? "[]"
            }
            members.append("\"\(feed.key)\":\(list)")
        }
        return "{" + members.joined(separator: ",") + "}"
    }
}

/// `GET /api/activity`'s query: how many rows of each log.
struct ActivityQuery: Sendable, Hashable {
    var limit = ActivityQueries.defaultLimit

    init(limit: Int = ActivityQueries.defaultLimit) {
        self.limit = limit
    }

    init(parameters: [(String, String)]) throws(BadParameter) {
        for (name, value) in parameters {
            guard name == "limit" else { throw BadParameter(name, "unknown parameter; known: limit") }
            guard let limit = Int(value), (1...ActivityQueries.maxLimit).contains(limit) else {
                throw BadParameter(name, "must be an integer from 1 to \(ActivityQueries.maxLimit)")
            }
            self.limit = limit
        }
    }
}
