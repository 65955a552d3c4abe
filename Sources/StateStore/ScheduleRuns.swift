import Foundation
import Core
import Replication

/// `changerelay.schedule_runs` (015): one row per due run of a scheduled job, unique by
/// (schedule, due_at). Inserting that row is the claim: of all the instances that
/// compute the same tick, the one whose insert lands runs it. A claim also holds a session
/// advisory lock on the job until its run is finished, so no instance starts a run of a job
/// while another still runs it (the one instance's rule, a run that overran skips the ticks
/// it overlapped, holds across instances); a connection lost mid-run releases it.
public enum ScheduleRuns {
    /// A claimed run, to be finished with `finish`.
    public struct Claim: Sendable, Hashable {
        public var schedule: String
        public var id: Int64
        public var startedAt: Date
    }

    /// The last run of one job, as `schedules list` shows it.
    public struct LastRun: Sendable, Hashable {
        public var dueAt: Date
        public var startedAt: Date
        public var finishedAt: Date?
        public var rows: Int64?
        public var error: String?

        public init(dueAt: Date, startedAt: Date, finishedAt: Date?, rows: Int64?, error: String?) {
            self.dueAt = dueAt
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.rows = rows
            self.error = error
        }
    }

    /// Why a tick was not claimed.
    public enum Refusal: Error, Sendable, Hashable {
        /// Another instance claimed this tick already.
        case claimed
        /// A run of the job is still going (another instance's, holding the job's lock).
        case running
    }

    /// Takes the job's lock and inserts the run row of (schedule, dueAt); the refusal when a
    /// run of the job is still going, or another instance has the tick already.
    public static func claim(schedule: String, dueAt: Date, instance: String,
                             on db: PostgresConnection) throws(PostgresError) -> Result<Claim, Refusal> {
        guard try db.query(prepared: "changerelay_schedule_lock", "SELECT pg_try_advisory_lock(\(lockKey)) AS held",
                           [schedule]).value("held") == "t" else {
            // Held by the instance claiming or running this very tick, or by an earlier run
            // still under way: only an unfinished run of an earlier tick says the latter (the
            // instance claiming this one holds the lock a moment before its row is there).
            let earlier = try db.query(prepared: "changerelay_schedule_overrun", """
                SELECT EXISTS (SELECT FROM changerelay.schedule_runs
                               WHERE schedule = $1 AND due_at < to_timestamp($2::float8) AND finished_at IS NULL) AS running
                """, [schedule, seconds(dueAt)]).value("running") == "t"
            return .failure(earlier ? .running : .claimed)
        }
        let result: QueryResult
        do throws(PostgresError) {
            result = try db.query(prepared: "changerelay_schedule_claim", """
                INSERT INTO changerelay.schedule_runs (schedule, due_at, instance) VALUES ($1, to_timestamp($2::float8), $3)
                ON CONFLICT (schedule, due_at) DO NOTHING
                RETURNING id, extract(epoch FROM started_at)::float8 AS started
                """, [schedule, seconds(dueAt), instance])
        } catch {
            _ = try? unlock(schedule, on: db)
            throw error
        }
        guard let id = result.value("id").flatMap(Int64.init), let started = result.value("started").flatMap(Double.init) else {
            try unlock(schedule, on: db)
            return .failure(.claimed)
        }
        return .success(Claim(schedule: schedule, id: id, startedAt: Date(timeIntervalSince1970: started)))
    }

    /// Records how a claimed run ended (its rows affected, or its error) and releases the job.
    public static func finish(_ claim: Claim, rows: Int64?, error: String?, on db: PostgresConnection) throws(PostgresError) {
        try db.query(prepared: "changerelay_schedule_finish", """
            UPDATE changerelay.schedule_runs SET finished_at = clock_timestamp(), rows = $2, error = $3 WHERE id = $1
            """, [String(claim.id), rows.map { String($0) }, error])
        try unlock(claim.schedule, on: db)
    }

    /// The job's advisory lock key: its name hashed into a space of its own.
    private static let lockKey = "hashtextextended('changerelay.schedule:' || $1, 0)"

    private static func unlock(_ schedule: String, on db: PostgresConnection) throws(PostgresError) {
        try db.query(prepared: "changerelay_schedule_unlock", "SELECT pg_advisory_unlock(\(lockKey))", [schedule])
    }

    /// Deletes the rows of runs that were interrupted (claimed, never finished, and nobody
    /// holds their job's lock: the instance or connection running them is gone, and with it
    /// the statement, rolled back) and returns them, so that `lastDue` does not count them and
    /// the catch-up at start runs the job once. A run whose statement committed but whose
    /// `finish` was never recorded (a kill in between, or the state connection lost then and
    /// the service stopped before it came back) runs twice; the statement's own window, its
    /// whole run, is what the catch-up covers. An advisory lock on a bigint key shows in
    /// `pg_locks` as its high half (`classid`) and low half (`objid`) with `objsubid` 1.
    /// Only the runs of `schedules` (the caller's jobs) are forgotten: one of a job the caller
    /// does not have (another instance's configuration) is left for an instance that has it.
    public static func forgetInterrupted(of schedules: [String], on db: PostgresConnection) throws(PostgresError)
        -> [(schedule: String, dueAt: Date)]
    {
        try db.query("""
            WITH interrupted AS (
                DELETE FROM changerelay.schedule_runs r
                WHERE r.finished_at IS NULL AND r.schedule = ANY($1::text[]) AND NOT EXISTS (
                    SELECT FROM pg_locks l, LATERAL (SELECT hashtextextended('changerelay.schedule:' || r.schedule, 0) AS key) k
                    WHERE l.locktype = 'advisory' AND l.objsubid = 1
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295)
                RETURNING schedule, due_at)
            SELECT schedule, extract(epoch FROM due_at)::float8 FROM interrupted ORDER BY due_at, schedule
            """, [postgresArrayLiteral(schedules)]).rows.compactMap { row in
            guard let name = row[0], let due = row[1].flatMap(Double.init) else { return nil }
            return (name, Date(timeIntervalSince1970: due))
        }
    }

    /// `forgetInterrupted` and `lastRuns` in one transaction: read apart, a failure between
    /// them made the next try find no interrupted run, and the job lost its catch-up.
    public static func sweep(of schedules: [String], on db: PostgresConnection) throws(PostgresError)
        -> (interrupted: [(schedule: String, dueAt: Date)], lastRuns: [String: LastRun])
    {
        try db.execute("BEGIN")
        do {
            let state = (try forgetInterrupted(of: schedules, on: db), try lastRuns(on: db))
            try db.execute("COMMIT")
            return state
        } catch {
            _ = try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// The latest run of each job, by name.
    public static func lastRuns(on db: PostgresConnection) throws(PostgresError) -> [String: LastRun] {
        var result: [String: LastRun] = [:]
        for row in try db.query("""
            SELECT DISTINCT ON (schedule) schedule, extract(epoch FROM due_at)::float8, extract(epoch FROM started_at)::float8,
                   extract(epoch FROM finished_at)::float8, rows, error
            FROM changerelay.schedule_runs ORDER BY schedule, due_at DESC
            """, []).rows {
            guard let name = row[0], let due = row[1].flatMap(Double.init), let started = row[2].flatMap(Double.init) else {
                continue
            }
            result[name] = LastRun(dueAt: Date(timeIntervalSince1970: due), startedAt: Date(timeIntervalSince1970: started),
                                   finishedAt: row[3].flatMap(Double.init).map { Date(timeIntervalSince1970: $0) },
                                   rows: row[4].flatMap(Int64.init), error: row[5])
        }
        return result
    }

    /// Whole seconds since 1970 as text: due times are whole minutes.
    private static func seconds(_ date: Date) -> String { String(Int64(date.timeIntervalSince1970.rounded())) }
}
