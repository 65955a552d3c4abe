import Foundation
import Scheduling
import Testing

@Suite struct ScheduleRulesTests {
    static func job(_ name: String, _ cron: String) throws -> ScheduleRules.Job {
        ScheduleRules.Job(name: name, cron: try CronSchedule(parsing: cron))
    }

    @Test func aJobThatNeverRanWaitsForItsNextTick() throws {
        let rules = ScheduleRules(jobs: [try Self.job("hourly", "0 * * * *")], lastDue: [:], now: utc("2026-03-01 12:30:10"))
        #expect(rules.due(at: utc("2026-03-01 12:30:10")).isEmpty)
        #expect(rules.nextWake == utc("2026-03-01 13:00"))
    }

    @Test func aMissedRunIsCaughtUpOnceUnderItsLatestDueTime() throws {
        let now = utc("2026-03-01 12:30:10")
        let rules = ScheduleRules(jobs: [try Self.job("minutely", "* * * * *")],
                                  lastDue: ["minutely": utc("2026-02-27 08:00")], now: now)
        // Two days of missed minutes: one run, due at the latest of them.
        #expect(rules.due(at: now) == [ScheduleTick(job: "minutely", dueAt: utc("2026-03-01 12:30"))])
    }

    @Test func aJobRecordedAtItsLatestTickIsNotRunAgain() throws {
        let rules = ScheduleRules(jobs: [try Self.job("hourly", "0 * * * *")],
                                  lastDue: ["hourly": utc("2026-03-01 12:00")], now: utc("2026-03-01 12:30"))
        #expect(rules.due(at: utc("2026-03-01 12:30")).isEmpty)
        #expect(rules.nextWake == utc("2026-03-01 13:00"))
    }

    /// A tick that fell due while the job's last run was still going was skipped by that
    /// run's overrun: a start does not run it, as the instance that ran it did not. One due
    /// after the run ended was missed, and is caught up.
    @Test func aStartDoesNotRunATickTheLastRunsOverrunSkipped() throws {
        let job = try Self.job("minutely", "* * * * *")
        let now = utc("2026-03-01 12:23:28")
        let overran = ScheduleRules(jobs: [job], lastDue: ["minutely": utc("2026-03-01 12:22")],
                                    lastRunSpans: ["minutely": utc("2026-03-01 12:22")...utc("2026-03-01 12:23:15")], now: now)
        #expect(overran.due(at: now).isEmpty)
        #expect(overran.nextWake == utc("2026-03-01 12:24"))
        let stillGoing = ScheduleRules(jobs: [job], lastDue: ["minutely": utc("2026-03-01 12:22")],
                                       lastRunSpans: ["minutely": utc("2026-03-01 12:22")...Date.distantFuture], now: now)
        #expect(stillGoing.due(at: now).isEmpty)
        let ended = ScheduleRules(jobs: [job], lastDue: ["minutely": utc("2026-03-01 12:22")],
                                  lastRunSpans: ["minutely": utc("2026-03-01 12:22")...utc("2026-03-01 12:22:40")], now: now)
        #expect(ended.due(at: now) == [ScheduleTick(job: "minutely", dueAt: utc("2026-03-01 12:23"))])
    }

    /// A tick another instance claimed and never finished is due again under its own time,
    /// at once; a job already due earlier keeps its earlier tick; an unknown job is ignored.
    @Test func anInterruptedTickIsCaughtUp() throws {
        var rules = ScheduleRules(jobs: [try Self.job("hourly", "0 * * * *")], lastDue: [:], now: utc("2026-03-01 12:30"))
        rules.catchUp(ScheduleTick(job: "hourly", dueAt: utc("2026-03-01 12:00")))
        rules.catchUp(ScheduleTick(job: "elsewhere", dueAt: utc("2026-03-01 12:00")))
        #expect(rules.due(at: utc("2026-03-01 12:30")) == [ScheduleTick(job: "hourly", dueAt: utc("2026-03-01 12:00"))])
        rules.handled(ScheduleTick(job: "hourly", dueAt: utc("2026-03-01 12:00")),
                      started: utc("2026-03-01 12:30"), finished: utc("2026-03-01 12:30:01"))
        #expect(rules.nextWake == utc("2026-03-01 13:00"))
    }

    @Test func handledTicksMoveToTheNextTickWhateverTheOutcome() throws {
        var rules = ScheduleRules(jobs: [try Self.job("hourly", "0 * * * *")], lastDue: [:], now: utc("2026-03-01 12:30"))
        let tick = ScheduleTick(job: "hourly", dueAt: utc("2026-03-01 13:00"))
        #expect(rules.due(at: utc("2026-03-01 13:00")) == [tick])
        // A failure is handled like a success: the job waits for 14:00 instead of retrying in a loop.
        rules.handled(tick, started: utc("2026-03-01 13:00"), finished: utc("2026-03-01 13:00:01"))
        #expect(rules.due(at: utc("2026-03-01 13:00:02")).isEmpty)
        #expect(rules.nextWake == utc("2026-03-01 14:00"))
    }

    @Test func aRunThatOverranSkipsTheTicksItOverlapped() throws {
        var rules = ScheduleRules(jobs: [try Self.job("minutely", "* * * * *")], lastDue: [:], now: utc("2026-03-01 12:00:30"))
        let tick = ScheduleTick(job: "minutely", dueAt: utc("2026-03-01 12:01"))
        rules.handled(tick, started: utc("2026-03-01 12:01"), finished: utc("2026-03-01 12:04:10"))
        #expect(rules.nextDue(of: "minutely") == utc("2026-03-01 12:05"))
    }

    /// One scheduler runs its jobs one after another: a job held up by another's long run
    /// starts late, and the ticks it missed before starting run once, at once, as after a
    /// downtime; only its own overrun skips ticks.
    @Test func ticksMissedWhileAnotherJobRanAreCaughtUpOnce() throws {
        var rules = ScheduleRules(jobs: [try Self.job("slow", "* * * * *"), try Self.job("quick", "* * * * *")],
                                  lastDue: [:], now: utc("2026-03-01 12:00:30"))
        let due = rules.due(at: utc("2026-03-01 12:01"))
        #expect(due.map(\.job) == ["slow", "quick"])
        rules.handled(due[0], started: utc("2026-03-01 12:01"), finished: utc("2026-03-01 12:03:10"))
        rules.handled(due[1], started: utc("2026-03-01 12:03:10"), finished: utc("2026-03-01 12:03:11"))
        #expect(rules.nextDue(of: "slow") == utc("2026-03-01 12:04"))
        #expect(rules.due(at: utc("2026-03-01 12:03:11")) == [ScheduleTick(job: "quick", dueAt: utc("2026-03-01 12:03"))])
        rules.handled(ScheduleTick(job: "quick", dueAt: utc("2026-03-01 12:03")),
                      started: utc("2026-03-01 12:03:11"), finished: utc("2026-03-01 12:03:12"))
        #expect(rules.nextDue(of: "quick") == utc("2026-03-01 12:04"))
    }

    /// A job longer than its period, started late once behind another: its catch-up run
    /// overruns the next tick in turn, which is its own overrun and skipped, not caught up.
    @Test func aLateJobThatOverrunsItsPeriodDoesNotRunBackToBack() throws {
        var rules = ScheduleRules(jobs: [try Self.job("daily", "0 3 * * *"), try Self.job("vacuum", "0 * * * *")],
                                  lastDue: [:], now: utc("2026-03-01 02:30"))
        let due = rules.due(at: utc("2026-03-01 03:00"))
        #expect(due.map(\.job) == ["daily", "vacuum"])
        rules.handled(due[0], started: utc("2026-03-01 03:00"), finished: utc("2026-03-01 04:05"))
        rules.handled(due[1], started: utc("2026-03-01 04:05"), finished: utc("2026-03-01 05:15"))
        // 04:00 was missed behind the daily job: caught up once, at once.
        #expect(rules.nextDue(of: "vacuum") == utc("2026-03-01 04:00"))
        rules.handled(ScheduleTick(job: "vacuum", dueAt: utc("2026-03-01 04:00")),
                      started: utc("2026-03-01 05:15"), finished: utc("2026-03-01 06:25"))
        // 05:00 and 06:00 fell inside its own runs: skipped.
        #expect(rules.nextDue(of: "vacuum") == utc("2026-03-01 07:00"))
    }

    @Test func dueTicksComeEarliestFirstAndTheWakeIsTheEarliest() throws {
        let now = utc("2026-03-01 12:30:10")
        let rules = ScheduleRules(
            jobs: [try Self.job("daily", "0 6 * * *"), try Self.job("hourly", "0 * * * *"), try Self.job("weekly", "0 3 * * 0")],
            lastDue: ["daily": utc("2026-02-27 06:00"), "hourly": utc("2026-03-01 09:00"), "weekly": utc("2026-03-01 03:00")],
            now: now)
        #expect(rules.due(at: now) == [ScheduleTick(job: "daily", dueAt: utc("2026-03-01 06:00")),
                                       ScheduleTick(job: "hourly", dueAt: utc("2026-03-01 12:00"))])
        var handled = rules
        for tick in rules.due(at: now) { handled.handled(tick, started: now, finished: now) }
        #expect(handled.nextWake == utc("2026-03-01 13:00"))
        #expect(handled.nextDue(of: "daily") == utc("2026-03-02 06:00"))
        #expect(handled.nextDue(of: "weekly") == utc("2026-03-08 03:00"))
    }

    /// Two instances starting at once compute the same catch-up tick, so the claim row
    /// (unique on job and due time) lets only one of them run it.
    @Test func instancesStartingApartComputeTheSameTick() throws {
        let jobs = [try Self.job("minutely", "* * * * *")]
        let last = ["minutely": utc("2026-03-01 11:00")]
        let first = ScheduleRules(jobs: jobs, lastDue: last, now: utc("2026-03-01 12:30:01"))
        let second = ScheduleRules(jobs: jobs, lastDue: last, now: utc("2026-03-01 12:30:59"))
        #expect(first.due(at: utc("2026-03-01 12:30:59")) == second.due(at: utc("2026-03-01 12:30:59")))
    }
}
