import Handlers
import Logging
import Replication
import Schema

/// Fills the webhook handler's config cache at start; the stream keeps it current after.
enum WebhookCacheLoader {
    /// The configs as of the checkpoint: `changerelay.webhook_config_log` replayed, seeded
    /// from `webhook_configs` on the very first start. Webhooks run only with state = source,
    /// so one connection serves both.
    static func load(from db: PostgresConnection, logger: Logger) throws -> WebhookConfigCache {
        try RequiredMigration.webhooks.require(neededBy: "webhooks", on: db)
        try seedIfEmpty(db, logger: logger)
        let log = try db.execute("""
            SELECT operation, config_id, name, url, events, headers, retry_config, is_active, unchanged::text AS unchanged
            FROM changerelay.webhook_config_log ORDER BY commit_lsn, change_index, id
            """)
        let cache = WebhookConfigCache()
        for row in log.rows {
            switch row[0] {
            case "upsert":
                guard let id = row[1] else { continue }
                var fields: [String: String] = ["id": id]
                for (index, name) in ["name", "url", "events", "headers", "retry_config", "is_active"].enumerated() {
                    fields[name] = row[index + 2]
                }
                let unchanged = Set(row[8].map { $0.dropFirst().dropLast().split(separator: ",").map(String.init) } ?? [])
                cache.record(id, fields: fields, unchanged: unchanged)
            case "delete":
                if let id = row[1] { cache.remove(id) }
            case "truncate":
                cache.removeEverything()
            default:
                continue
            }
        }
        // What was loaded is the starting point, not a batch to undo.
        cache.batchEnded(committed: true)
        let problems = cache.unusableActiveConfigs()
        for problem in problems {
            logger.warning("webhook config cannot fire; it is skipped until it is fixed",
                           metadata: ["config": "\(problem.id)", "reason": "\(problem.reason)"])
        }
        logger.info("webhook configs loaded", metadata: ["log_entries": "\(log.rows.count)", "unusable": "\(problems.count)"])
        return cache
    }

    /// The first start has no log: today's table is the starting point (as of now, not of
    /// the slot's position); from then on the log keeps the cache exact.
    private static func seedIfEmpty(_ db: PostgresConnection, logger: Logger) throws {
        guard try db.execute("SELECT EXISTS (SELECT FROM changerelay.webhook_config_log) AS seeded").value("seeded") != "t"
        else { return }
        let seeded = try db.execute("""
            WITH baseline AS (
                INSERT INTO changerelay.webhook_config_log (commit_lsn, change_index, operation) VALUES ('0/0', -1, 'baseline')),
            configs AS (
                INSERT INTO changerelay.webhook_config_log
                    (commit_lsn, change_index, operation, config_id, name, url, events, headers, retry_config, is_active)
                SELECT '0/0', (row_number() OVER (ORDER BY id))::int - 1, 'upsert', id::text, name, url, events::text,
                       headers::text, retry_config::text, CASE WHEN is_active THEN 't' ELSE 'f' END
                FROM public.webhook_configs
                RETURNING 1)
            SELECT count(*) AS n FROM configs
            """)
        logger.info("webhook config log seeded from webhook_configs (first start)", metadata: ["configs": "\(seeded.value("n") ?? "0")"])
    }
}
