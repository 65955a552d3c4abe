import ArgumentParser
import Configuration
import Core
import Delivery
import Foundation
import Handlers
import Logging
import Pipeline
import PlannedEffects
import Replication
import Schema

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The service: stream, handlers, planner commit, dispatcher.")

    enum Role: String, ExpressibleByArgument, CaseIterable {
        case all, planner, dispatcher
    }

    @OptionGroup var options: ConfigOptions

    @Option(help: "all (default); planner: read the slot and plan, send nothing; dispatcher: only send (scale out).")
    var only: Role = .all

    func run() throws {
        bootstrapLogging()
        Signals.install()
        let config = try options.load()
        let logger = Logger(label: "changerelay.run")
        do {
            let sourceURL = try config.requireSourceURL()
            let stateURL = config.stateDatabaseURL ?? sourceURL
            let credentials = try Self.credentials(config)
            let router = Router(try Self.handlers(config, sourceURL: sourceURL, stateURL: stateURL,
                                                  credentials: credentials, logger: logger))
            if router.isEmpty { logger.warning("no handler is configured: changes are read and acknowledged, nothing is sent") }
            if only != .planner {
                try RequiredMigration.deliveryRequeue.require(neededBy: "the dispatcher", on: PostgresConnection(url: stateURL))
            }
            try Self.runService(
                router: router, only: only,
                dispatcher: .init(stateURL: stateURL, concurrency: config.delivery.concurrency,
                                  timeout: config.delivery.timeout, credentials: credentials, reports: router.reports),
                planner: .init(stateURL: stateURL, slot: config.source.slot, maxBatchChanges: config.pipeline.batchMaxChanges,
                               maxBatchAge: config.pipeline.batchMaxAge),
                // idempotency_log is the dual-write sync's: with the sync off it may not be this service's to clean.
                cleanupInterval: config.dualWrite.mode == .off ? nil : config.dualWrite.cleanupInterval,
                source: ChangeStream.Settings(databaseURL: sourceURL, plugin: config.source.plugin,
                                              slot: config.source.slot, publication: config.source.publication,
                                              statusInterval: config.source.statusInterval, spill: config.spillSettings,
                                              heartbeatInterval: config.pipeline.heartbeatInterval))
            logger.info("stopped")
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }

    /// The stream into the planner on this thread, the dispatcher and the `idempotency_log`
    /// clean-up each on their own, until a signal or a source error; `dev` runs the same.
    static func runService(router: Router, only: Role = .all, dispatcher dispatcherSettings: Dispatcher.Settings,
                           planner plannerSettings: Planner.Settings, cleanupInterval: Duration?,
                           source: ChangeStream.Settings) throws {
        let client = try HTTPClient(configuration: .init(maxConcurrentTransfers: dispatcherSettings.concurrency))
        defer { client.close() }
        let dispatcher = try Dispatcher(dispatcherSettings, client: client, logger: Logger(label: "changerelay.dispatcher"))
        if only == .dispatcher {
            dispatcher.run(shouldStop: { Signals.shouldStop })
            return
        }
        let dispatcherDone = DispatchSemaphore(value: 0)
        let dispatcherThread = Thread {
            if only == .all { dispatcher.run(shouldStop: { Signals.shouldStop }) }
            dispatcherDone.signal()
        }
        dispatcherThread.name = "changerelay-dispatcher"
        dispatcherThread.start()
        let cleanupDone = DispatchSemaphore(value: 0)
        if let cleanupInterval {
            let stateURL = plannerSettings.stateURL
            let cleanupThread = Thread {
                IdempotencyLogCleanup(stateURL: stateURL, interval: cleanupInterval, logger: Logger(label: "changerelay.cleanup"))
                    .run(shouldStop: { Signals.shouldStop })
                cleanupDone.signal()
            }
            cleanupThread.name = "changerelay-cleanup"
            cleanupThread.start()
        } else {
            cleanupDone.signal()
        }
        var planner = try Planner(plannerSettings, router: router, logger: Logger(label: "changerelay.planner"))
        var sourceError: (any Error)?
        do {
            try ChangeStream(source, logger: Logger(label: "changerelay.source"))
                .run(into: &planner, shouldStop: { Signals.shouldStop })
        } catch {
            sourceError = error
            Signals.stopRequested.store(true, ordering: .relaxed)
        }
        dispatcherDone.wait()
        cleanupDone.wait()
        if let sourceError { throw sourceError }
    }

    /// The handlers the configuration enables. The edge-function handlers need
    /// `functions.base_url` and a service key: enabled without a base URL they stay off
    /// with a warning; with a base URL but no key, `run` refuses to start, since every
    /// request would be sent without its `Authorization` header.
    static func handlers(_ config: Config, sourceURL: String, stateURL: String, credentials: [String: String],
                         logger: Logger) throws -> [any Handler] {
        var handlers: [any Handler] = []
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
                throw ConfigError(key: "functions.service_key_file", origin: "configuration",
                                  reason: "\(handler) call edge functions, which need a service key: "
                                    + "set CHANGERELAY_SERVICE_KEY or functions.service_key_file")
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
                                                       window: config.automations.rateLimitWindow, logger: handlerLogger)
            handlers.append(AutomationHandler(.init(baseURL: baseURL, maxAttempts: config.automations.maxAttempts),
                                              cache: cache, logger: handlerLogger))
        }
        if let mode = DualWriteHandler.Mode(rawValue: config.dualWrite.mode.rawValue) {
            guard stateIsSource else {
                throw ConfigError(key: "dual_write.mode", origin: "configuration", reason: """
                    \(mode.rawValue) writes idempotency_log (and the new schema) in the checkpoint transaction, \
                    so the state database must be the source: leave state.database_url unset
                    """)
            }
            try RequiredMigration.dualWrite.require(neededBy: "dual_write.mode", on: PostgresConnection(url: stateURL))
            handlers.append(DualWriteHandler(mode: mode, logger: Logger(label: "changerelay.dual_write")))
        }
        if let url = config.echo.url {
            guard !config.echo.tables.isEmpty else {
                throw ConfigError(key: "handlers.echo.tables", origin: "configuration", reason: "is empty while handlers.echo.url is set")
            }
            handlers.append(EchoHandler(url: url, tables: config.echo.tables, retryPolicy: .exponential(
                base: .milliseconds(500), cap: config.echo.retryCap, maxAttempts: config.echo.maxAttempts, jitter: .full)))
        }
        return handlers
    }

    /// The service key from `CHANGERELAY_SERVICE_KEY` or `functions.service_key_file`; never from the database.
    static func credentials(_ config: Config) throws -> [String: String] {
        if let key = Config.processEnvironment()["CHANGERELAY_SERVICE_KEY"], !key.isEmpty { return ["service_key": key] }
        guard let path = config.functions.serviceKeyFile else { return [:] }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(key: "functions.service_key_file", origin: "configuration", reason: "cannot read \(path)")
        }
        return ["service_key": text.trimmingCharacters(in: .whitespacesAndNewlines)]
    }
}
