import RelayConfiguration
import Handlers
import Logging
import Pipeline
import Replication
import Schema

/// Configuration → the handlers a replay runs, each wrapped for replay (`ReplayedHandler`).
/// Those that plan from the change and the configuration alone are built by the live
/// service's own assembly, so a replay plans exactly what `run` would; the webhook fan-out
/// is built here, with the configs as `webhook_configs` holds them now.
enum ReplayAssembly {
    static func handlers(_ config: Config, selection: ReplayHandlerSelection, sourceURL: String, stateURL: String,
                         credentials: [String: String], logger: Logger) throws -> [ReplayedHandler] {
        let wanted = Set(selection.names)
        var replayed = config
        if !wanted.contains("echo") { replayed.echo.url = nil }
        if !wanted.contains("conversation_checks") { replayed.conversationChecks.enabled = false }
        if !wanted.contains("dual_write") { replayed.dualWrite.mode = .off }
        // Never run by replay (`ReplayHandlerSelection`); their loaders would also seed the live service's logs.
        replayed.automations.enabled = false
        replayed.messageBuffer.enabled = false
        // Built below: the live assembly starts from the config log as of its checkpoint, and seeds it when empty.
        replayed.webhooks.enabled = false
        var handlers: [ReplayedHandler] = []
        for handler in try HandlerAssembly.handlers(replayed, sourceURL: sourceURL, stateURL: stateURL,
                                                    credentials: credentials, followingWhatIsOff: false, logger: logger) {
            // Only the handlers whose effects replay knows how to keep once (`ReplayHandlerSelection.known`).
            guard wanted.contains(handler.name) else {
                logger.info("replay leaves out a handler it does not know", metadata: ["handler": "\(handler.name)"])
                continue
            }
            handlers.append(ReplayedHandler(handler))
        }
        if wanted.contains("webhooks"), let webhooks = try webhooks(config, sourceURL: sourceURL, stateURL: stateURL,
                                                                    logger: Logger(label: "changerelay.webhooks")) {
            // The configs are today's: the config changes of the replayed range must not take them back in time.
            handlers.append(ReplayedHandler(webhooks, ignoring: [WebhookHandler.configsTable]))
        }
        if selection.isNamed {
            for name in selection.names where !handlers.contains(where: { $0.name == name }) {
                throw ReplayError.handlerNotConfigured(name, hint: "it stays off at start (see the warning above)")
            }
        }
        guard !handlers.isEmpty else { throw ReplayError.noHandlers }
        return handlers
    }

    /// The webhook fan-out with today's configs, or nil (with a warning) where the live
    /// service would not run it either: its staged log rows and deliveries' claims need the
    /// state database to be the source, with the seed's tables.
    private static func webhooks(_ config: Config, sourceURL: String, stateURL: String, logger: Logger) throws -> WebhookHandler? {
        guard try DatabaseIdentity.sameDatabase(sourceURL, stateURL) else {
            logger.warning("webhooks are off: they need the state database to be the source (leave state.database_url unset)")
            return nil
        }
        let source = try PostgresConnection(url: sourceURL)
        guard try HandlerAssembly.hasTables(["webhook_configs", "webhook_logs"], on: source) else {
            logger.warning("webhooks are off: the source has no public.webhook_configs and public.webhook_logs (run setup)")
            return nil
        }
        try RequiredMigration.webhooks.require(neededBy: "webhooks", on: source)
        try RequiredMigration.webhookLogNumbering.require(neededBy: "webhooks", on: source)
        return WebhookHandler(rules: WebhookRule.builtIn + config.webhooks.rules, cache: try todaysConfigs(source, logger: logger),
                              logger: logger)
    }

    /// Every `webhook_configs` row as it is now, read and written nowhere else: the live
    /// service's `webhook_config_log` is its record of its own position, not replay's.
    private static func todaysConfigs(_ db: PostgresConnection, logger: Logger) throws(PostgresError) -> WebhookConfigCache {
        let rows = try db.execute("""
            SELECT id::text AS id, name, url, events::text AS events, headers::text AS headers,
                   retry_config::text AS retry_config, CASE WHEN is_active THEN 't' ELSE 'f' END AS is_active
            FROM public.webhook_configs ORDER BY id
            """)
        let cache = WebhookConfigCache()
        for row in rows.rows {
            let fields = Dictionary(uniqueKeysWithValues: zip(rows.columns, row).compactMap { column, value in
                value.map { (column, $0) }
            })
            guard let id = fields["id"] else { continue }
            cache.record(id, fields: fields)
        }
        // What was read is the starting point, not a batch to undo.
        cache.batchEnded(committed: true)
        for problem in cache.unusableActiveConfigs() {
            logger.warning("webhook config cannot fire; it is skipped until it is fixed",
                           metadata: ["config": "\(problem.id)", "reason": "\(problem.reason)"])
        }
        return cache
    }
}
