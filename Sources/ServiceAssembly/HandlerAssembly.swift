import RelayConfiguration
import Core
import Handlers
import Logging
import Replication
import Schema
import StateStore

/// Configuration → handlers, with the caches they start from.
enum HandlerAssembly {
    /// The handlers the configuration enables. The edge-function handlers need
    /// `functions.base_url` and a service key: enabled without a base URL they stay off
    /// with a warning; with a base URL but no key, `run` refuses to start, since every
    /// request would be sent without its `Authorization` header.
    ///
    /// `followingWhatIsOff`: the automations and webhooks, when off, still have their logs
    /// follow the stream (`automationsFollowing`, `webhooksFollowing`); a replay, which must
    /// not write the live service's logs, leaves that out.
    static func handlers(_ config: Config, sourceURL: String, stateURL: String, credentials: [String: String],
                         followingWhatIsOff: Bool = true, logger: Logger) throws -> [any Handler] {
        var handlers: [any Handler] = []
        try warnOfSourceProblems(config, sourceURL: sourceURL, logger: logger)
        // Asked of the servers, not read from the URLs: the same database can be spelled many ways.
        let stateIsSource = try DatabaseIdentity.sameDatabase(sourceURL, stateURL)
        /// The base URL of the edge functions, for a handler that calls them; nil (with a
        /// warning) when it is not set.
        func functionsBaseURL(for handler: String) throws -> String? {
            guard let baseURL = config.functions.baseURL else {
                logger.warning("\(handler) are enabled but functions.base_url is not set: they are off")
                return nil
            }
            guard credentials["service_key"] != nil else {
                // Set but empty (a `${KEY}` a deployment forgot to fill) reads as unset, which
                // a service with no edge functions to call may well be: said so here.
                let empty = Config.processEnvironment()["CHANGERELAY_SERVICE_KEY"]?.isEmpty == true
                throw ConfigError(key: "functions.service_key_file", origin: "configuration",
                                  reason: "\(handler) call edge functions, which need a service key: "
                                    + (empty ? "CHANGERELAY_SERVICE_KEY is set but empty; give it the key, or set "
                                               + "functions.service_key_file" : "set CHANGERELAY_SERVICE_KEY or functions.service_key_file"))
            }
            return baseURL
        }
        if config.conversationChecks.enabled, let baseURL = try functionsBaseURL(for: "conversation checks") {
            handlers.append(ConversationCheckHandler(.init(
                baseURL: baseURL, maxAttempts: config.conversationChecks.maxAttempts,
                retryDelay: config.conversationChecks.retryDelay)))
        }
        if config.automations.enabled, let baseURL = try functionsBaseURL(for: "automations") {
            let handlerLogger = Logger(label: "changerelay.automations")
            if !stateIsSource {
                handlerLogger.warning("""
                    the state database is not the source: completed executions are written where the stream cannot \
                    see them, so the rate limit knows only the completions found at start
                    """)
            }
            let cache = try AutomationCacheLoader.load(sourceURL: sourceURL, separateStateURL: stateIsSource ? nil : stateURL,
                                                       logsCompletions: stateIsSource, slot: config.source.slot,
                                                       window: config.automations.rateLimitWindow, logger: handlerLogger)
            handlers.append(AutomationHandler(.init(baseURL: baseURL, maxAttempts: config.automations.maxAttempts,
                                                    logsCompletions: stateIsSource),
                                              cache: cache, logger: handlerLogger))
        } else if followingWhatIsOff, let following = try automationsFollowing(config, sourceURL: sourceURL, stateURL: stateURL,
                                                                               stateIsSource: stateIsSource) {
            handlers.append(following)
        }
        if let mode = DualWriteHandler.Mode(rawValue: config.dualWrite.mode.rawValue) {
            guard stateIsSource else {
                throw ConfigError(key: "dual_write.mode", origin: "configuration", reason: """
                    \(mode.rawValue) writes idempotency_log (and the new schema) in the checkpoint transaction, \
                    so the state database must be the source: leave state.database_url unset
                    """)
            }
            let state = try PostgresConnection(url: stateURL)
            try RequiredMigration.dualWrite.require(neededBy: "dual_write.mode", on: state)
            try RequiredMigration.sessionStaging.require(neededBy: "dual_write.mode", on: state)
            try RequiredMigration.keptStaging.require(neededBy: "dual_write.mode", on: state)
            handlers.append(DualWriteHandler(mode: mode, logger: Logger(label: "changerelay.dual_write")))
        }
        if config.webhooks.enabled {
            if let handler = try webhooks(config, sourceURL: sourceURL, stateIsSource: stateIsSource,
                                          logger: Logger(label: "changerelay.webhooks")) {
                handlers.append(handler)
            }
        } else if followingWhatIsOff, stateIsSource, let following = try webhooksFollowing(sourceURL: sourceURL) {
            handlers.append(following)
        }
        if config.messageBuffer.enabled, let baseURL = try functionsBaseURL(for: "message buffers"),
           let handler = try messageBuffering(config, baseURL: baseURL, sourceURL: sourceURL, stateIsSource: stateIsSource,
                                              logger: Logger(label: "changerelay.message_buffering")) {
            handlers.append(handler)
        }
        if let url = config.echo.url {
            guard !config.echo.tables.isEmpty else {
                throw ConfigError(key: "handlers.echo.tables", origin: "configuration", reason: "is empty while handlers.echo.url is set")
            }
            let source = try PostgresConnection(url: sourceURL)
            try warnOfUnfollowedEchoTables(config.echo.tables.map(EchoHandler.qualified),
                                           publication: config.source.publication, on: source, logger: logger)
            let keys = try PrimaryKeyLoader.load(tables: config.echo.tables, from: source)
            handlers.append(EchoHandler(url: url, tables: config.echo.tables, retryPolicy: .exponential(
                base: .milliseconds(500), cap: config.echo.retryCap, maxAttempts: config.echo.maxAttempts, jitter: .full),
                primaryKeys: keys))
        } else if !config.echo.tables.isEmpty {
            logger.warning("handlers.echo.tables is set but handlers.echo.url is not: the echo handler is off")
        }
        return handlers
    }

    /// Message buffering, unless the databases cannot carry it: its steps write the seed's
    /// `message_buffer`, `buffered_messages` and `buffer_processing_jobs` in the checkpoint
    /// transaction, so the state database must be the source, with those tables. Either
    /// missing turns it off with a warning saying why (it is on by default).
    static func messageBuffering(_ config: Config, baseURL: String, sourceURL: String, stateIsSource: Bool,
                                 logger: Logger) throws -> MessageBufferingHandler? {
        guard stateIsSource else {
            logger.warning("message buffers are off: they need the state database to be the source (leave state.database_url unset)")
            return nil
        }
        let source = try PostgresConnection(url: sourceURL)
        guard try hasTables(["message_buffer", "buffered_messages", "buffer_processing_jobs", "feature_flags"],
                            on: source) else {
            logger.warning("""
                message buffers are off: the source lacks message_buffer, buffered_messages, buffer_processing_jobs \
                or feature_flags (run setup)
                """)
            return nil
        }
        let windows = BufferBook.Windows(duration: config.messageBuffer.duration, maxAge: config.messageBuffer.maxAge,
                                         maxSize: config.messageBuffer.maxSize)
        let restored = try MessageBufferLoader.load(from: source, windows: windows, logger: logger)
        return MessageBufferingHandler(.init(baseURL: baseURL, windows: windows, retryDelay: config.messageBuffer.retryDelay),
                                       state: MessageBufferState(restored: restored), logger: logger)
    }

    /// The webhook fan-out, unless the databases cannot carry it: its deliveries' claims
    /// and log rows read `webhook_configs` and write `webhook_logs` in the state database,
    /// so that must be the source, which must have the seed's tables. Either missing turns
    /// webhooks off with a warning saying why (they are on by default).
    static func webhooks(_ config: Config, sourceURL: String, stateIsSource: Bool, logger: Logger) throws -> WebhookHandler? {
        guard stateIsSource else {
            logger.warning("webhooks are off: they need the state database to be the source (leave state.database_url unset)")
            return nil
        }
        let source = try PostgresConnection(url: sourceURL)
        guard try hasTables(["webhook_configs", "webhook_logs"], on: source) else {
            logger.warning("webhooks are off: the source has no public.webhook_configs and public.webhook_logs (run setup)")
            return nil
        }
        // The committer numbers the log rows of the deliveries it plans with 035's statements.
        try RequiredMigration.webhookLogNumbering.require(neededBy: "webhooks", on: source)
        let cache = try WebhookCacheLoader.load(from: source, logger: logger)
        let rules = WebhookRule.builtIn + config.webhooks.rules
        // A rule on a table the publication leaves out can never fire: say so now, not never.
        let published = Set(try source.query("""
            SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1
            """, [config.source.publication]).rows.compactMap { $0[0] })
        for rule in config.webhooks.rules where !published.contains(rule.schema + "." + rule.table) {
            let quoted = quoteIdentifier(rule.schema) + "." + quoteIdentifier(rule.table)
            logger.warning("""
                a webhook rule names a table the publication does not include; it cannot fire until the table is \
                added (ALTER PUBLICATION \(quoteIdentifier(config.source.publication)) ADD TABLE \(quoted))
                """, metadata: ["table": "\(rule.schema + "." + rule.table)", "event": "\(rule.eventType)"])
        }
        let keys = try PrimaryKeyLoader.load(tables: rules.map { $0.schema + "." + $0.table }, from: source)
        return WebhookHandler(rules: rules, cache: cache, primaryKeys: keys, logger: logger)
    }

    /// The automations off (or without `functions.base_url`): their workflow log, and their
    /// completion log where the state database is the source, still follow the stream, so that
    /// turning them on again plans with the workflows and the rate limit of the checkpoint.
    /// Otherwise the changes made while they were off were never read, and they fired the
    /// workflows of the last run before. Not where the seed's tables are missing (nothing to
    /// follow); without 011 it is said, since turning them on needs it anyway. Without 030
    /// only the workflows follow: the first start with it reads older completions from the table.
    private static func automationsFollowing(_ config: Config, sourceURL: String, stateURL: String,
                                             stateIsSource: Bool) throws -> AutomationHandler? {
        let source = try PostgresConnection(url: sourceURL)
        let state = stateIsSource ? source : try PostgresConnection(url: stateURL)
        guard try hasTables(["automation_workflows", "automation_execution_logs"], on: source) else { return nil }
        let logger = Logger(label: "changerelay.automations")
        guard try RequiredMigration.automationWorkflowLog.isApplied(on: state) else {
            logger.warning("""
                automations are off and their workflow changes are not followed: sql/011 is not applied (run setup);                 turned on, they would plan with the workflows of their last run
                """)
            return nil
        }
        let logsCompletions = try stateIsSource && RequiredMigration.automationCompletionLog.isApplied(on: state)
        let cache = try AutomationCacheLoader.load(sourceURL: sourceURL, separateStateURL: stateIsSource ? nil : stateURL,
                                                   logsCompletions: logsCompletions, slot: config.source.slot,
                                                   window: config.automations.rateLimitWindow, logger: logger)
        logger.info("automations are off: only their workflow and completion logs follow the stream")
        return AutomationHandler(.init(baseURL: "", logsCompletions: logsCompletions), cache: cache, logger: logger,
                                 followingOnly: true)
    }

    /// Webhooks off: their config log still follows the stream, as the automations' does
    /// (`automationsFollowing`), where the seed's tables are; without 012 it is said. It plans
    /// no delivery, so it needs none of the later webhook migrations.
    private static func webhooksFollowing(sourceURL: String) throws -> WebhookHandler? {
        let source = try PostgresConnection(url: sourceURL)
        guard try hasTables(["webhook_configs", "webhook_logs"], on: source) else { return nil }
        let logger = Logger(label: "changerelay.webhooks")
        guard try RequiredMigration.webhooks.isApplied(on: source) else {
            logger.warning("""
                webhooks are off and their config changes are not followed: sql/012 is not applied (run setup); \
                turned on, they would send with the configs of their last run
                """)
            return nil
        }
        let following = WebhookHandler.followingOnly(cache: try WebhookCacheLoader.load(from: source, logger: logger), logger: logger)
        logger.info("webhooks are off: only their config log follows the stream")
        return following
    }

    /// An echo table whose changes the stream never brings under the name it is listed by is
    /// said at start, with the fix: echo follows changes by the name they arrive under, and
    /// would otherwise pass over it in silence. A table the source lacks; one out of the
    /// publication; a partitioned table published as its partitions (without
    /// `publish_via_partition_root`), or a partition published as its root (with it).
    static func warnOfUnfollowedEchoTables(_ tables: [String], publication: String, on source: PostgresConnection,
                                            logger: Logger) throws(PostgresError) {
        let found = try source.query("""
            SELECT t.name, c.relkind::text AS kind, c.relispartition AS partition,
                   EXISTS (SELECT FROM pg_publication_tables p
                           WHERE p.pubname = $2 AND p.schemaname = n.nspname AND p.tablename = c.relname) AS published,
                   coalesce((SELECT pubviaroot FROM pg_publication WHERE pubname = $2), false) AS via_root
            FROM unnest($1::text[]) t (name)
            LEFT JOIN pg_namespace n ON n.nspname = split_part(t.name, '.', 1)
            LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = substr(t.name, length(split_part(t.name, '.', 1)) + 2)
                                  AND c.relkind IN ('r', 'p')
            """, [postgresArrayLiteral(tables), publication])
        for row in found.rows {
            guard let name = row[0], row[3] != "t" else { continue }
            let reason: String
            let fix: String
            let alter = "ALTER PUBLICATION \(quoteIdentifier(publication))"
            if row[1] == nil {
                reason = "the source has no such table"
                fix = "create it, or take it out of handlers.echo.tables"
            } else if row[1] == "p", row[4] != "t" {
                reason = "it is partitioned, and the publication sends its changes under its partitions' names"
                fix = "\(alter) SET (publish_via_partition_root = true), or list the partitions in handlers.echo.tables"
            } else if row[2] == "t", row[4] == "t" {
                reason = "it is a partition, and the publication sends its changes under its root's name"
                fix = "list the root in handlers.echo.tables"
            } else {
                reason = "it is not in the publication"
                let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
                fix = "\(alter) ADD TABLE " + parts.map(quoteIdentifier).joined(separator: ".")
            }
            logger.warning("an echo table's changes never reach the echo handler: \(reason)", metadata: [
                "table": "\(name)", "fix": "\(fix)",
            ])
        }
    }

    /// Says at start what `doctor` would: a seed table out of the publication, one reported
    /// under its partitions' names, one without the old rows its handler compares. The
    /// service runs on (an operator may mean it), but each is a reason its effects do not come.
    private static func warnOfSourceProblems(_ config: Config, sourceURL: String, logger: Logger) throws {
        let doctor = Doctor(slot: config.source.slot, plugin: config.source.plugin, publication: config.source.publication)
        let source = try PostgresConnection(url: sourceURL)
        for finding in try doctor.handlerPrerequisites(on: source) {
            logger.warning("the source is not as the handlers need it: \(finding.problem ?? "")", metadata: [
                "check": "\(finding.check)", "fix": "\(finding.fix ?? "")",
            ])
        }
    }

    /// Whether the database has every one of these `public` tables (the seed's, which a
    /// handler writes in the checkpoint transaction).
    static func hasTables(_ names: [String], on db: PostgresConnection) throws(PostgresError) -> Bool {
        try db.query("SELECT bool_and(to_regclass('public.' || quote_ident(t)) IS NOT NULL) AS present FROM unnest($1::text[]) t",
                     [postgresArrayLiteral(names)]).value("present") == "t"
    }
}
