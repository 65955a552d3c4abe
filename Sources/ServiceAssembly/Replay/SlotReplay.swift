import RelayConfiguration
import Core
import Handlers
import Logging
import Pipeline
import Replication
import Schema
import StateStore

/// `changerelay replay`: drives a slot other than the service's own (a retained copy of the
/// stream, created before a migration) through today's handlers, with the keys the live
/// service gives each change, leaving out what is planned already.
///
/// Everything that can be refused is refused by `prepare`, before anything is read: the
/// slot (the service's own, absent, physical, of another database or plugin, lost, active)
/// and the handlers (unknown, not configured, refused in replay). `run` then reads the slot
/// from where it stands (its confirmed position, or its checkpoint when later) to the end:
/// consuming it, with each batch's effects and the slot's checkpoint in one state
/// transaction as `run` commits its own; or, for a dry run, peeking, writing nothing.
public struct SlotReplay: Sendable {
    public struct Request: Sendable {
        public var slot: String
        public var toLSN: LSN?
        /// nil: every configured handler replay can run.
        public var handlers: [String]?
        public var dryRun: Bool

        public init(slot: String, toLSN: LSN?, handlers: [String]?, dryRun: Bool) {
            self.slot = slot
            self.toLSN = toLSN
            self.handlers = handlers
            self.dryRun = dryRun
        }
    }

    /// What one handler came to.
    public struct HandlerCount: Sendable, Equatable {
        public var name: String
        public var counts: ReplayTally.Counts
    }

    public struct Outcome: Sendable {
        public var handlers: [HandlerCount]
        /// False when the replay was stopped (SIGTERM) before its end: running it again continues.
        public var reachedEnd: Bool
        /// Where the slot's checkpoint stands now (for a dry run, where it stood).
        public var position: LSN
    }

    public let request: Request
    public let end: ReplayEnd
    /// Where reading starts: transactions ending at or before it were replayed already.
    public let start: LSN
    public let handlers: [ReplayedHandler]
    public let leftOut: [ReplayHandlerSelection.LeftOut]
    private let config: Config
    private let sourceURL: String
    private let stateURL: String

    /// Nothing lies between where the slot stands and the end.
    public var isDone: Bool { start >= end.lsn }

    public static func prepare(_ config: Config, _ request: Request, credentials: [String: String],
                               logger: Logger) throws -> SlotReplay {
        let selection = try ReplayHandlerSelection.decide(requested: request.handlers, config: config)
        let sourceURL = try config.requireSourceURL()
        let stateURL = config.stateDatabaseURL ?? sourceURL
        let source = try PostgresConnection(url: sourceURL)
        let database = try source.execute("SELECT current_database() AS name").value("name") ?? "?"
        let slot = try ReplaySlot.read(request.slot, on: source)
        if let refusal = ReplaySlot.refusal(request.slot, slot: slot, serviceSlot: config.source.slot,
                                            plugin: config.source.plugin, database: database) {
            throw refusal
        }
        // The live service's position only moves forward: read once, it stays a safe end.
        let walEnd = try source.execute("SELECT pg_current_wal_lsn()::text AS lsn").value("lsn").flatMap { LSN($0) } ?? .zero
        let state = try PostgresConnection(url: stateURL)
        try RequiredMigration.checkpointWriters.require(neededBy: "replay", on: state)
        if !request.dryRun { try RequiredMigration.formerOrderingKeys.require(neededBy: "replay", on: state) }
        if try SlotCheckpoint(slot: request.slot).storedWriter(on: state) == .run { throw ReplayError.liveSlot(request.slot) }
        let liveSlot = try ReplaySlot.read(config.source.slot, on: source)
        // A live service reading a slot under another name than this configuration's (a
        // one-off command run without the service's --config) would be passed unseen.
        guard liveSlot != nil || request.toLSN != nil else { throw ReplayError.noLiveSlot(config.source.slot) }
        let live = try liveSlot.map { liveSlot in
            ReplayEnd.LivePosition(slot: config.source.slot, lsn: max(
                liveSlot.confirmedFlush ?? .zero, try SlotCheckpoint(slot: config.source.slot).read(on: state)))
        }
        if selection.names.contains("dual_write"), liveSlot?.isActive == true, !request.dryRun {
            // Past changes written after newer ones the live sync applies meanwhile would take rows back in time.
            logger.warning("""
                the live service is reading \(config.source.slot) while this replay applies past habit_tracker changes: \
                if its dual-write sync is on, a row it changes meanwhile can be overwritten by an older state; \
                stop it for the replay and start it when the replay has ended
                """)
        }
        let start = max(slot?.confirmedFlush ?? .zero, try SlotCheckpoint(slot: request.slot).read(on: state))
        let handlers = try ReplayAssembly.handlers(config, selection: selection, sourceURL: sourceURL, stateURL: stateURL,
                                                   credentials: credentials, logger: logger)
        return SlotReplay(request: request, end: ReplayEnd.decide(requested: request.toLSN, walEnd: walEnd, live: live),
                          start: start, handlers: handlers, leftOut: selection.leftOut, config: config,
                          sourceURL: sourceURL, stateURL: stateURL)
    }

    /// Replays (or, for a dry run, peeks) until the end or until `stop` is asked;
    /// `progress` hears how far it has come and how many transactions it has read.
    public func run(until stop: StopSignal, progress: @escaping (_ reached: LSN, _ transactions: Int) -> Void) throws -> Outcome {
        guard !isDone else { return outcome(reachedEnd: true, position: start) }
        let planner = ReplayPlanner(handlers: handlers, stateURL: stateURL)
        let router = Router(handlers)
        let logger = Logger(label: "changerelay.replay")
        // Two replays of one slot started together both pass the check for an active slot:
        // the second is refused when it asks for the stream, rather than waiting its turn.
        let source = SlotReader.Settings(databaseURL: sourceURL, plugin: config.source.plugin, slot: request.slot,
                                         publication: config.source.publication,
                                         statusInterval: config.source.statusInterval, spill: try config.checkedSpillSettings(),
                                         standsByWhileSlotInUse: false)
        if request.dryRun {
            var transactions = 0
            do {
                try SlotPeek(source, end: end.lsn).run(until: stop) { transaction in
                    guard transaction.endLSN > start else { return }
                    try planner.plan(transaction) { _ in }
                    // Nothing is written: what the transaction came to counts as it is.
                    router.batchEnded(committed: true)
                    transactions += 1
                    progress(transaction.endLSN, transactions)
                }
            } catch let error as PostgresError where error.isSlotInUse {
                throw ReplayError.active(slot: request.slot, pid: nil)
            }
            return outcome(reachedEnd: !stop.isRequested, position: start)
        }
        let committer = try BatchCommitter(
            .init(stateURL: stateURL, slot: request.slot, maxBatchChanges: config.pipeline.batchMaxChanges,
                  maxBatchAge: config.pipeline.batchMaxAge, writer: .replay),
            router: router, planning: planner.plan, logger: logger)
        var sink = ReplaySink(committer: committer, end: end.lsn, progress: progress)
        do {
            try SlotReader(source, logger: logger).run(into: &sink, until: stop)
        } catch let error as PostgresError where error.isSlotInUse {
            throw ReplayError.active(slot: request.slot, pid: nil)
        }
        return outcome(reachedEnd: sink.reachedEnd, position: max(start, sink.durablePosition))
    }

    private func outcome(reachedEnd: Bool, position: LSN) -> Outcome {
        Outcome(handlers: handlers.map { HandlerCount(name: $0.name, counts: $0.tally.counts) }, reachedEnd: reachedEnd,
                position: position)
    }
}
