import Admin
import Core
import Decoding
import Delivery
import Foundation
import Handlers
import Logging
import Pipeline
import RelayConfiguration
import Replication
import Schema
import ServiceLifecycle

/// The whole service, assembled from a configuration the same way for `run` and `dev`:
/// the handlers and their caches, the stream into the batch committer, the dispatcher,
/// the scheduler (configured and built-in jobs) and the admin server, each a lifecycle
/// service of one group.
///
/// Everything that can be refused (a missing key, a handler whose migration is not
/// applied) is refused by `init`, before anything starts. SIGTERM and SIGINT shut the
/// group down in reverse order of start: the stream stops reading, commits its batch and
/// acknowledges it; then the scheduler; then the dispatcher, letting the requests in
/// flight finish within its drain bound; the admin server last, so probes see the drain.
/// A service that fails shuts the others down the same way, and `run` rethrows its error.
public struct ChangeRelayService: Sendable {
    public enum Role: String, Sendable, CaseIterable {
        /// Read the slot, plan, and send.
        case all
        /// Read the slot and plan; send nothing.
        case planner
        /// Only send: more dispatchers scale out delivery.
        case dispatcher
    }

    public let router: Router
    /// The deadlines of the handlers that keep time, each served by a `CommitTicker`.
    private let deadlines: [NextDeadline]
    private let config: Config
    private let sourceURL: String
    private let stateURL: String
    private let credentials: [String: String]
    private let role: Role
    /// Checked once, at construction, for the roles that read the stream.
    private let spill: SpillSettings
    private let admin: AdminSettings?
    private let metrics: MetricsExport

    /// `credentials` are what deliveries' `auth` columns name (`service_key` → the key):
    /// see `credentials(_:)` for where `run` reads them. `metrics` is what `/metrics` emits:
    /// `MetricsExport.process` for `run` and `dev`, touched before the handlers (built here)
    /// make their counters.
    public init(_ config: Config, credentials: [String: String], role: Role = .all,
                metrics: MetricsExport = MetricsExport()) throws {
        let logger = Logger(label: "changerelay.run")
        admin = try AdminSettings.parse(listen: config.adminListen, tokenFile: config.adminTokenFile)
        self.metrics = metrics
        sourceURL = try config.requireSourceURL()
        stateURL = config.stateDatabaseURL ?? sourceURL
        spill = role != .dispatcher ? try config.checkedSpillSettings() : config.spillSettings
        let handlers = try HandlerAssembly.handlers(config, sourceURL: sourceURL, stateURL: stateURL,
                                                    credentials: credentials, logger: logger)
        if handlers.allSatisfy(\.isFollowingOnly) {
            logger.warning("no handler is configured: changes are read and acknowledged, nothing is sent")
        }
        // Backfills' progress is committed with their chunks' effects, whatever handlers there are.
        router = Router(handlers + [BackfillProgressHandler()])
        deadlines = handlers.compactMap { ($0 as? MessageBufferingHandler)?.state.nextDeadline }
        let state = try PostgresConnection(url: stateURL)
        if role != .planner {
            try RequiredMigration.deliveryRequeue.require(neededBy: "the dispatcher", on: state)
            try RequiredMigration.claimIndexes.require(neededBy: "the dispatcher", on: state)
            try RequiredMigration.claimingProcesses.require(neededBy: "the dispatcher", on: state)
        }
        try RequiredMigration.formerOrderingKeys.require(
            neededBy: role == .dispatcher ? "the dispatcher" : "the batch committer", on: state)
        try RequiredMigration.webhooks.require(neededBy: role == .dispatcher ? "the dispatcher" : "the batch committer",
                                               on: state)
        try RequiredMigration.schedules.require(neededBy: "the scheduler", on: state)
        if role != .dispatcher {
            try RequiredMigration.backfills.require(neededBy: "the batch committer", on: state)
            try RequiredMigration.backfillHighKey.require(neededBy: "the backfill runner", on: state)
            try RequiredMigration.backfillSlots.require(neededBy: "the backfill runner", on: state)
            try RequiredMigration.sessionStaging.require(neededBy: "the batch committer", on: state)
            try RequiredMigration.keptStaging.require(neededBy: "the batch committer", on: state)
            try RequiredMigration.checkpointWriters.require(neededBy: "the batch committer", on: state)
        }
        self.config = config
        self.credentials = credentials
        self.role = role
    }

    /// Runs until SIGTERM or SIGINT (then returns) or until a service fails (then throws).
    public func run() async throws {
        let client = try HTTPClient(configuration: .init(maxConcurrentTransfers: config.delivery.concurrency))
        defer { client.close() }
        try await ThreadService.runGroup(try services(client: client))
    }

    /// In start order; the group shuts them down in reverse.
    private func services(client: HTTPClient) throws -> [any Service] {
        let backfills = ChunkExchange()
        let streamFailure = StreamFailure()
        var services: [any Service] = []
        if let admin {
            let adminSettings = AdminServer.Settings(
                admin: admin, stateURL: stateURL, sourceURL: sourceURL, slot: config.source.slot,
                deliveryLogs: BuiltInHandlers.deliveryLogs, handlers: router.handlerNames,
                schedules: ScheduledJob.all(config).map { AdminSchedule(name: $0.name, cron: $0.cron) })
            services.append(AdminServer(adminSettings, metrics: metrics, isStreaming: { backfills.streamState.isStreaming },
                                        streamFailure: { streamFailure.current },
                                        logger: Logger(label: "changerelay.admin")))
        } else {
            Logger(label: "changerelay.admin").notice("admin.listen is off: no admin server, no metrics")
        }
        if role != .planner {
            let endpointLimit = Dispatcher.Settings.endpointLimit(configured: config.webhooks.maxInFlightPerEndpoint,
                                                                  concurrency: config.delivery.concurrency)
            if endpointLimit < config.webhooks.maxInFlightPerEndpoint {
                Logger(label: "changerelay.dispatcher").warning(
                    "webhooks.max_in_flight_per_endpoint is lowered to half of delivery.concurrency, so that one endpoint that hangs leaves the others room",
                    metadata: ["configured": "\(config.webhooks.maxInFlightPerEndpoint)", "used": "\(endpointLimit)",
                               "concurrency": "\(config.delivery.concurrency)"])
            }
            let dispatcher = Dispatcher(
                .init(stateURL: stateURL, concurrency: config.delivery.concurrency, timeout: config.delivery.timeout,
                      credentials: credentials, reports: router.reports,
                      maxInFlightPerEndpoint: config.webhooks.maxInFlightPerEndpoint,
                      allowPrivateTargets: config.webhooks.allowPrivateTargets, handlers: router.handlerNames),
                client: client, logger: Logger(label: "changerelay.dispatcher"))
            services.append(ThreadService("dispatcher") { stop in dispatcher.run(until: stop) })
        }
        // Every role schedules: a tick's claim row makes each run happen once however many instances compute it.
        services.append(ThreadService("scheduler") { [config, sourceURL, stateURL] stop in
            Scheduler(jobs: ScheduledJob.all(config), sourceURL: sourceURL, stateURL: stateURL,
                      logger: Logger(label: "changerelay.scheduler")).run(until: stop)
        })
        guard role != .dispatcher else { return services }
        let settings = BatchCommitter.Settings(stateURL: stateURL, slot: config.source.slot,
                                               maxBatchChanges: config.pipeline.batchMaxChanges,
                                               maxBatchAge: config.pipeline.batchMaxAge, backfills: backfills)
        let source = SlotReader.Settings(databaseURL: sourceURL, plugin: config.source.plugin, slot: config.source.slot,
                                         publication: config.source.publication,
                                         statusInterval: config.source.statusInterval, spill: spill,
                                         heartbeatInterval: config.pipeline.heartbeatInterval)
        for deadline in deadlines {
            services.append(ThreadService("ticker") { [sourceURL] stop in
                CommitTicker(sourceURL: sourceURL, deadline: deadline, isStreaming: { backfills.streamState.isStreaming },
                             logger: Logger(label: "changerelay.ticker")).run(until: stop)
            })
        }
        services.append(ThreadService("backfill") { [sourceURL, stateURL, config] stop in
            BackfillRunner(.init(sourceURL: sourceURL, stateURL: stateURL, publication: config.source.publication,
                                 slot: config.source.slot),
                           exchange: backfills, logger: Logger(label: "changerelay.backfill")).run(until: stop)
        })
        services.append(ThreadService("stream") { [router] stop in
            var committer = try BatchCommitter(settings, router: router, logger: Logger(label: "changerelay.planner"))
            try SlotReader(source, logger: Logger(label: "changerelay.source"))
                .run(into: &committer, until: stop, onStreaming: {
                    streamFailure.set(nil)
                    backfills.streamStarted()
                }, onStreamEnded: backfills.streamEnded, onRetrying: streamFailure.set)
        })
        return services
    }

    /// The service key from `CHANGERELAY_SERVICE_KEY` or `functions.service_key_file`; never from the database.
    /// White space around it is dropped either way (a secret mounted as a variable often ends
    /// in a newline); an empty key, or one with a control character inside, is an error naming
    /// where it came from and never quoting it: it goes into an `Authorization` header.
    public static func credentials(_ config: Config) throws(ConfigError) -> [String: String] {
        let raw: String
        let key: String?, origin: String
        if let variable = Config.processEnvironment()["CHANGERELAY_SERVICE_KEY"], !variable.isEmpty {
            (raw, key, origin) = (variable, nil, "CHANGERELAY_SERVICE_KEY")
        } else if let path = config.functions.serviceKeyFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigError(key: "functions.service_key_file", origin: "configuration",
                                  reason: "cannot read \(path): \(unreadableFileReason(path))")
            }
            (raw, key, origin) = (text, "functions.service_key_file", path)
        } else {
            return [:]
        }
        let serviceKey = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !serviceKey.isEmpty else { throw ConfigError(key: key, origin: origin, reason: "the service key is empty") }
        guard !serviceKey.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ConfigError(key: key, origin: origin, reason: "the service key holds a line break or another control "
                              + "character, which cannot go into an HTTP header")
        }
        return ["service_key": serviceKey]
    }
}

extension Config {
    /// Where and past how much memory large transactions move to files.
    public var spillSettings: SpillSettings {
        SpillSettings(threshold: pipeline.spillThreshold,
                      directory: pipeline.spillDirectory ?? SpillSettings.defaultDirectory)
    }

    /// `spillSettings`, once a file could be made in its directory: a configuration error
    /// naming the key (or TMPDIR, the default's source) at start, not a stopped stream later.
    public func checkedSpillSettings() throws(ConfigError) -> SpillSettings {
        let settings = spillSettings
        do { try settings.checkDirectory() } catch {
            guard pipeline.spillDirectory != nil else {
                throw ConfigError(key: nil, origin: "environment TMPDIR, the default spill directory", reason: error.description)
            }
            let variable = "CHANGERELAY_PIPELINE_SPILL_DIRECTORY"
            throw ConfigError(key: "pipeline.spill_directory",
                              origin: Config.processEnvironment()[variable] != nil ? "environment \(variable)" : "configuration",
                              reason: error.description)
        }
        return settings
    }
}
