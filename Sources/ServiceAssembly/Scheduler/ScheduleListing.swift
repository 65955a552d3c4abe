import Foundation
import StateStore

/// `schedules list`: one tab-separated line per job, built-in ones included, from the
/// configuration and `schedule_runs` alone, so it works while no instance runs.
public enum ScheduleListing {
    public static let header = ["name", "cron", "last_started", "outcome", "rows", "next_run"].joined(separator: "\t")

    /// `next_run` is the job's next tick after `now`; a run missed while nothing was up
    /// is not shown as due, since only a starting instance decides that.
    public static func lines(jobs: [ScheduledJob], lastRuns: [String: ScheduleRuns.LastRun], now: Date) -> [String] {
        jobs.map { job in
            let last = lastRuns[job.name]
            return [job.name, job.cron.description, last.map { utc($0.startedAt) } ?? "-", last.map(outcome) ?? "never run",
                    last?.rows.map { String($0) } ?? "-", utc(job.cron.next(after: now))].joined(separator: "\t")
        }
    }

    /// `ok`, `error: <its first line>`, or `running` for a run not finished (or whose
    /// instance died before recording it).
    static func outcome(_ run: ScheduleRuns.LastRun) -> String {
        if let error = run.error { return "error: " + (error.split(separator: "\n").first.map(String.init) ?? "") }
        return run.finishedAt == nil ? "running" : "ok"
    }

    /// `2026-12-02T19:00:00Z`.
    static func utc(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
