import Handlers
import Logging
import Replication

/// Fills the webhook handler's config cache at start; the stream keeps it current after.
enum WebhookCacheLoader {
    static func load(from source: PostgresConnection, logger: Logger) throws -> WebhookConfigCache {
        let cache = WebhookConfigCache()
        let rows = try source.execute("""
            SELECT id::text AS id, name, url, events::text AS events, headers::text AS headers,
                   retry_config::text AS retry_config, CASE WHEN is_active THEN 't' ELSE 'f' END AS is_active
            FROM public.webhook_configs ORDER BY id
            """)
        var unusable = 0
        for row in rows.rows {
            var fields: [String: String] = [:]
            for (index, name) in rows.columns.enumerated() { fields[name] = row[index] }
            guard let id = fields["id"] else { continue }
            let parsed = WebhookConfig.parse(fields)
            if case .failure(let problem) = parsed {
                unusable += 1
                if fields["is_active"] == "t" {
                    logger.warning("webhook config cannot fire; it is skipped until it is fixed",
                                   metadata: ["config": "\(id)", "reason": "\(problem.reason)"])
                }
            }
            cache.set(id, to: parsed)
        }
        cache.batchEnded(committed: true)
        logger.info("webhook configs loaded", metadata: ["configs": "\(rows.rows.count)", "unusable": "\(unusable)"])
        return cache
    }
}
