import Core
import Foundation
import Logging
import Replication
import Scheduling
import StateStore

/// Runs scheduled jobs as `ScheduleRules` decides: sleeps until the next due time of any
/// job (its `StopSignal` wakes it at once on shutdown), claims each due tick in
/// `changerelay.schedule_runs`, runs the job on a connection of its own, and records the
/// outcome. A job that fails is logged and waits for its next tick. A database that
/// cannot be reached is retried with backoff, logged, and never stops the service.
///
/// Jobs run one at a time: a long job (a `VACUUM`) delays the ticks due while it runs,
/// and their lateness (started_at − due_at) shows it.
public final class Scheduler {
    private let jobs: [String: ScheduledJob]
    private let order: [ScheduleRules.Job]
    private let urls: [ScheduledJob.Database: String]
    private let instance: String
    private let logger: Logger
    private var connections: [ScheduledJob.Database: PostgresConnection] = [:]
    /// The service's own connection for claims and records, apart from the jobs' sessions.
    private var records: PostgresConnection?

    public init(jobs: [ScheduledJob], sourceURL: String, stateURL: String, logger: Logger) {
        self.jobs = Dictionary(uniqueKeysWithValues: jobs.map { ($0.name, $0) })
        order = jobs.map { ScheduleRules.Job(name: $0.name, cron: $0.cron) }
        urls = [.source: sourceURL, .state: stateURL]
        instance = "\(ProcessInfo.processInfo.hostName):\(getpid())"
        self.logger = logger
    }

    /// How often a running scheduler looks for runs another instance claimed and never
    /// finished (`catchUpInterrupted`), at most: it wakes for that even when no job is due.
    static let interruptedSweep: TimeInterval = 10

    /// Runs until `stop` is asked.
    public func run(until stop: StopSignal) {
        guard let (interrupted, recorded) = retrying("read the last scheduled runs", until: stop, { () throws(PostgresError) in
            try ScheduleRuns.sweep(of: order.map(\.name), on: try recordConnection())
        }) else { return }
        var lastDue = recorded.mapValues(\.dueAt)
        for run in interrupted {
            // A job whose only run was interrupted has still missed it.
            if lastDue[run.schedule] == nil { lastDue[run.schedule] = run.dueAt.addingTimeInterval(-1) }
            logCaughtUp(run)
        }
        let spans = recorded.mapValues { run in run.startedAt...max(run.startedAt, run.finishedAt ?? .distantFuture) }
        var rules = ScheduleRules(jobs: order, lastDue: lastDue, lastRunSpans: spans, now: Date())
        var lastSweep = Date()
        while !stop.isRequested {
            if Date().timeIntervalSince(lastSweep) >= Self.interruptedSweep {
                catchUpInterrupted(&rules)
                lastSweep = Date()
            }
            let due = rules.due(at: Date())
            guard !due.isEmpty else {
                connectAhead()
                guard let wake = rules.nextWake,
                      !sleep(until: min(wake, lastSweep.addingTimeInterval(Self.interruptedSweep)), stop) else { return }
                continue
            }
            for tick in due {
                let started = Date()
                guard run(tick, until: stop) else { return }
                rules.handled(tick, started: started, finished: Date())
            }
        }
    }

    /// Runs that another instance claimed and never finished, because it died running them
    /// (its statement rolled back with its session), are caught up here as well as at the next
    /// start: this instance saw their ticks claimed and passed over them, and until some
    /// instance started again the runs were lost. One is caught up only when its job has no
    /// later run recorded; a sweep that fails is logged and tried again at the next.
    private func catchUpInterrupted(_ rules: inout ScheduleRules) {
        do {
            let found = try ScheduleRuns.sweep(of: order.map(\.name), on: try recordConnection())
            for run in found.interrupted where (found.lastRuns[run.schedule]?.dueAt ?? .distantPast) < run.dueAt {
                logCaughtUp(run)
                rules.catchUp(ScheduleTick(job: run.schedule, dueAt: run.dueAt))
            }
        } catch {
            records = nil
            logger.warning("scheduler cannot look for interrupted runs; it looks again shortly", metadata: ["error": "\(error)"])
        }
    }

    private func logCaughtUp(_ run: (schedule: String, dueAt: Date)) {
        logger.warning("a scheduled run was interrupted (the instance running it stopped); it is caught up now",
                       metadata: ["schedule": "\(run.schedule)", "due_at": "\(run.dueAt)"])
    }

    /// Claims and runs one tick; false when stop was asked before it could be recorded.
    private func run(_ tick: ScheduleTick, until stop: StopSignal) -> Bool {
        guard let job = jobs[tick.job] else { return true }
        let jobMetadata: Logger.Metadata = ["job": "\(job.name)", "due_at": "\(tick.dueAt)"]
        // Reach the job's database before claiming: a tick claimed while it is down would be
        // recorded as failed although waiting for it would have let the job run.
        // A session kept open between ticks may have been cut meanwhile (a restart, a failover,
        // an idle timeout on the way): it is asked first, and opened again if it does not answer.
        guard let target = retrying("connect for \(job.name)", until: stop, { () throws(PostgresError) in
            let target = try connection(job.database)
            try target.execute("SELECT 1")
            return target
        }), let claimed = retrying("claim a run of \(job.name)", until: stop, { () throws(PostgresError) in
            try ScheduleRuns.claim(schedule: job.name, dueAt: tick.dueAt, instance: instance, on: try recordConnection())
        }) else { return false }
        let claim: ScheduleRuns.Claim
        switch claimed {
        case .success(let won):
            claim = won
        case .failure(.claimed):
            logger.debug("scheduled run claimed by another instance", metadata: jobMetadata)
            return true
        case .failure(.running):
            logger.info("scheduled run skipped: the job's previous run is still going on another instance",
                        metadata: jobMetadata)
            return true
        }
        logger.debug("scheduled run started", metadata: jobMetadata.merging([
            "lateness_ms": "\(Int((claim.startedAt.timeIntervalSince(tick.dueAt) * 1000).rounded()))",
        ]) { $1 })
        var rows: Int64?
        var failure: String?
        do {
            rows = try job.run(on: target)
        } catch {
            var reported = error
            reported.statement = nil
            failure = reported.description
            connections[job.database] = nil
            logger.error("scheduled job failed; it runs again at its next tick",
                         metadata: jobMetadata.merging(["error": "\(reported)"]) { $1 })
        }
        // A stop asked while the job ran does not keep its outcome from being recorded: the
        // run happened, and its row would otherwise read `running` until the next one.
        let recorded: Void? = retrying("record a run of \(job.name)", until: stop, evenIfStopped: true, { () throws(PostgresError) in
            try ScheduleRuns.finish(claim, rows: rows, error: failure, on: try recordConnection())
        })
        if failure == nil {
            logger.debug("scheduled run finished", metadata: jobMetadata.merging(["rows": "\(rows.map(String.init) ?? "-")"]) { $1 })
        }
        return recorded != nil
    }

    /// Sleeps until `date`; true when stop was asked. Linux lets a `poll` timeout end up to
    /// 0.1 % late (60 ms on a minute's wait), so each wait stops that much short and the rest
    /// is waited again: every round's error is a thousandth of the one before, and a tick
    /// starts within a millisecond or two of its due time.
    private func sleep(until date: Date, _ stop: StopSignal) -> Bool {
        while true {
            let left = date.timeIntervalSinceNow
            guard left > 0 else { return false }
            if stop.sleep(for: .seconds(left - left / 500)) { return true }
        }
    }

    /// Opens the connections the jobs use before sleeping, so a tick pays no connection set-up
    /// in its lateness. One that cannot be opened now is left to the tick, which retries it.
    private func connectAhead() {
        _ = try? recordConnection()
        for database in Set(jobs.values.map(\.database)) { _ = try? connection(database) }
    }

    private func recordConnection() throws(PostgresError) -> PostgresConnection {
        if let records { return records }
        let connection = try PostgresConnection(url: urls[.state]!)
        records = connection
        return connection
    }

    private func connection(_ database: ScheduledJob.Database) throws(PostgresError) -> PostgresConnection {
        if let connection = connections[database] { return connection }
        let connection = try PostgresConnection(url: urls[database]!)
        connections[database] = connection
        return connection
    }

    /// Runs `body` until it succeeds, waiting with backoff between tries and logging each
    /// failure; nil when stop was asked first (`evenIfStopped`: after its first try). A
    /// failed try drops the connections it may have used, so the next one starts on fresh ones.
    private func retrying<T>(_ what: String, until stop: StopSignal, evenIfStopped: Bool = false,
                             _ body: () throws(PostgresError) -> T) -> T? {
        var backoff = Backoff()
        var tried = false
        while !stop.isRequested || (evenIfStopped && !tried) {
            tried = true
            do {
                return try body()
            } catch {
                records = nil
                connections = [:]
                let delay = backoff.nextDelay()
                logger.warning("scheduler cannot \(what); trying again", metadata: [
                    "error": "\(error)", "retry_in_ms": "\(delay.wholeMilliseconds)",
                ])
                if stop.sleep(for: delay) { return nil }
            }
        }
        return nil
    }
}
