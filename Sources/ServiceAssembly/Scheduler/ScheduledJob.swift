import Core
import RelayConfiguration
import Replication
import Scheduling
import StateStore

/// A job the scheduler runs: the configured `[[schedules]]` and the service's own
/// clean-ups, which run on the same timers, are claimed and recorded the same way, and
/// are listed together by `schedules list`.
public struct ScheduledJob: Sendable {
    /// Which database a job's work runs against.
    public enum Database: String, Sendable {
        /// The application's database: configured schedules replace its pg_cron jobs.
        case source
        /// Where the service keeps its own tables (the source unless configured otherwise).
        case state
    }

    enum Work: Sendable {
        /// One operator statement, outside any transaction block so `VACUUM` works, with
        /// its `timeout_ms` if it has one.
        case statement(String, timeout: Duration?)
        /// The seed's hourly `cleanup_idempotency_log()`.
        case idempotencyLogCleanup
        /// Succeeded deliveries older than this many days, in bounded batches.
        case deliveryRetention(days: Int)
        /// `buffered_messages.buffer_id` marks kept for rows that were not visible yet (026).
        case bufferMarks
    }

    public let name: String
    public let cron: CronSchedule
    public let database: Database
    let work: Work

    /// The built-in jobs run at minute 0 of every hour, as the seed's clean-up did.
    static let hourly: CronSchedule = {
        do { return try CronSchedule(parsing: "0 * * * *") } catch { preconditionFailure("\(error)") }
    }()

    /// The jobs `config` asks for: the built-in ones first, then `[[schedules]]` in file order.
    public static func all(_ config: Config) -> [ScheduledJob] {
        var jobs: [ScheduledJob] = []
        // idempotency_log is the dual-write sync's: with the sync off it may not be this service's to clean.
        if config.dualWrite.mode != .off, config.dualWrite.cleanupEnabled {
            jobs.append(ScheduledJob(name: BuiltInJobNames.idempotencyLogCleanup, cron: hourly, database: .state,
                                     work: .idempotencyLogCleanup))
        }
        jobs.append(ScheduledJob(name: BuiltInJobNames.deliveryRetention, cron: hourly, database: .state,
                                 work: .deliveryRetention(days: config.delivery.retentionDays)))
        if config.messageBuffer.enabled {
            jobs.append(ScheduledJob(name: BuiltInJobNames.bufferMarks, cron: hourly, database: .state, work: .bufferMarks))
        }
        jobs += config.schedules.map {
            ScheduledJob(name: $0.name, cron: $0.cron, database: .source, work: .statement($0.sql, timeout: $0.timeout))
        }
        return jobs
    }

    /// Does the work once; the rows it affected, when it can tell.
    func run(on db: PostgresConnection) throws(PostgresError) -> Int64? {
        switch work {
        case .statement(let sql, let timeout):
            // The server checks every second that the service is still there: otherwise a
            // statement whose service was killed ran on to its end and committed, and the
            // catch-up at the next start (`ScheduleRuns.forgetInterrupted`) ran it again.
            // Set before each run, as the `DISCARD ALL` after the last one reset it; so is
            // the run's time limit, whose absence leaves the role's or database's own.
            try db.execute("SET client_connection_check_interval = 1000")
            if let timeout { try db.execute("SET statement_timeout = \(timeout.wholeMilliseconds)") }
            let rows = try db.executeCountingRows(sql)
            // The session is shared with the next runs, and with the other jobs on the same
            // database: what a statement leaves in it must not reach them. A transaction left
            // open (`BEGIN; DELETE …` without COMMIT) would hold its locks and take in every
            // later run's work, never committed; it is rolled back and the run fails.
            if db.isInTransaction {
                _ = try? db.execute("ROLLBACK")
                throw PostgresError(.queryFailed(sqlState: nil), """
                    the job's SQL left a transaction open, so it was rolled back: end it with COMMIT, \
                    or leave out BEGIN (the statement runs in autocommit)
                    """, endpoint: db.endpoint)
            }
            // Settings (`SET search_path`), temporary tables and prepared statements go too.
            try db.execute("DISCARD ALL")
            return rows
        case .idempotencyLogCleanup:
            return try db.execute("SELECT public.cleanup_idempotency_log() AS deleted").value("deleted").flatMap { Int64($0) }
        case .deliveryRetention(let days):
            return try DeliveryRetention.sweepSucceeded(olderThanDays: days, on: db)
        case .bufferMarks:
            return try db.execute("SELECT changerelay.apply_kept_buffer_marks() AS applied").value("applied").flatMap { Int64($0) }
        }
    }
}
