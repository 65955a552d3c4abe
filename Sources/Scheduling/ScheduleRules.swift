import Foundation

/// One due run of a job: the job's name and the minute it was due. The pair is the
/// unique key of `changerelay.schedule_runs`, so every instance that computes the same
/// tick claims the same row and only one of them runs it.
public struct ScheduleTick: Sendable, Hashable {
    public var job: String
    public var dueAt: Date

    public init(job: String, dueAt: Date) {
        self.job = job
        self.dueAt = dueAt
    }
}

/// What the scheduler runs and when, without a clock or a database: the loop asks it
/// what is due, sleeps until `nextWake`, and tells it each tick it has handled.
///
/// - At start, a job whose latest due time is later than the last run recorded for it
///   (it was due while nothing was up) is due at once, under that latest due time: one
///   catch-up run, however many ticks were missed. A job that has never run waits for
///   its next tick: there is nothing it missed.
/// - A handled tick (run, failed, or claimed by another instance) moves its job to the
///   first tick after both its due time and the moment it was handled: a failure waits
///   for the next tick instead of looping, and a run that overran skips the ticks it
///   overlapped instead of running them back to back.
/// - Ticks that fell due before the run even started, and after the job's own last run had
///   ended (other jobs ran long: one scheduler runs its jobs one after another), are another
///   job's overrun, not this one's: as after a downtime, the latest of them runs once, at once.
///   A tick inside the job's own last run is skipped, so a job longer than its period that
///   started late once does not then run back to back.
public struct ScheduleRules: Sendable {
    public struct Job: Sendable {
        public var name: String
        public var cron: CronSchedule

        public init(name: String, cron: CronSchedule) {
            self.name = name
            self.cron = cron
        }
    }

    private let jobs: [Job]
    /// Each job's next tick, by name.
    private var nextDue: [String: Date] = [:]
    /// When each job's last run handled here finished: ticks before it fell inside that run.
    private var lastFinished: [String: Date] = [:]

    /// `lastDue` is the latest `due_at` recorded for each job that has run; `lastRunSpans`,
    /// when that run started and finished (`.distantFuture` for one still going): a tick
    /// that fell due within it was skipped by its own overrun, not missed while nothing was
    /// up, and a start does not run it.
    public init(jobs: [Job], lastDue: [String: Date], lastRunSpans: [String: ClosedRange<Date>] = [:], now: Date) {
        self.jobs = jobs
        for job in jobs {
            let latest = job.cron.previous(atOrBefore: now)
            if let last = lastDue[job.name], latest > last, !(lastRunSpans[job.name]?.contains(latest) ?? false) {
                nextDue[job.name] = latest
            } else {
                nextDue[job.name] = job.cron.next(after: now)
            }
        }
    }

    /// `tick` was claimed by an instance that died before finishing it (its run was rolled
    /// back): its job is due again under that tick, at once, unless it is due earlier.
    public mutating func catchUp(_ tick: ScheduleTick) {
        guard let due = nextDue[tick.job] else { return }
        nextDue[tick.job] = min(due, tick.dueAt)
    }

    /// The ticks due at `now`, earliest first (jobs due at the same minute in the order given).
    public func due(at now: Date) -> [ScheduleTick] {
        jobs.compactMap { job in
            guard let due = nextDue[job.name], due <= now else { return nil }
            return ScheduleTick(job: job.name, dueAt: due)
        }.sorted { $0.dueAt < $1.dueAt }
    }

    /// When the earliest next tick of any job is due; nil without jobs.
    public var nextWake: Date? { nextDue.values.min() }

    /// The next tick of `job`, for listings and tests.
    public func nextDue(of job: String) -> Date? { nextDue[job] }

    /// Records that `tick` was handled, whatever its outcome: taken up at `started`, done at
    /// `finished`.
    public mutating func handled(_ tick: ScheduleTick, started: Date, finished: Date) {
        guard let job = jobs.first(where: { $0.name == tick.job }) else { return }
        // A tick missed before this run started, and after the job's own last run ended: the
        // wait was another job's. One inside its own last run was that run's overrun.
        let missed = job.cron.previous(atOrBefore: started)
        let caughtUp = missed > tick.dueAt && missed > (lastFinished[job.name] ?? .distantPast)
        nextDue[job.name] = caughtUp ? missed : job.cron.next(after: max(tick.dueAt, finished))
        lastFinished[job.name] = finished
    }
}
