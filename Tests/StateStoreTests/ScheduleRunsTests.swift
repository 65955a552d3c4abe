import EmbeddedPostgres
import Foundation
import Replication
import StateStore
import Testing
import TestSupport

/// Claims of scheduled runs by two instances (two sessions) of one state database: a tick is
/// run once, and no run of a job starts while another instance still runs it.
@Suite struct ScheduleRunsTests {
    /// Two instances computing the same tick: the one that lost the race for the job's lock,
    /// while the winner has not yet inserted its run row, is told the tick is claimed, not
    /// that an earlier run is still going (which it logged at almost every tick).
    @Test func aTickBeingClaimedElsewhereIsClaimedNotRunning() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let a = try cluster.connect()
        for migration in try SchemaFiles.migrations() { try a.execute(migration) }
        let b = try cluster.connect()
        let tick = Date(timeIntervalSince1970: 1_772_366_400)
        try a.execute("SELECT pg_advisory_lock(hashtextextended('changerelay.schedule:' || 'job', 0))")
        #expect(try ScheduleRuns.claim(schedule: "job", dueAt: tick, instance: "b", on: b) == .failure(.claimed))
    }

    @Test func aJobsNextTickWaitsForItsRunningOneOnAnotherInstance() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let a = try cluster.connect()
        for migration in try SchemaFiles.migrations() { try a.execute(migration) }
        var b: PostgresConnection! = try cluster.connect()
        func tick(_ minute: Int) -> Date { Date(timeIntervalSince1970: 1_772_366_400 + Double(minute) * 60) }

        guard case .success(let running) = try ScheduleRuns.claim(schedule: "slow", dueAt: tick(1), instance: "a", on: a) else {
            Issue.record("the first claim was refused")
            return
        }
        // The same tick, while a runs it, is a's; the next tick, while a's run goes on, is
        // skipped; another job is free.
        #expect(try ScheduleRuns.claim(schedule: "slow", dueAt: tick(1), instance: "b", on: b) == .failure(.claimed))
        #expect(try ScheduleRuns.claim(schedule: "slow", dueAt: tick(2), instance: "b", on: b) == .failure(.running))
        guard case .success(let other) = try ScheduleRuns.claim(schedule: "quick", dueAt: tick(2), instance: "b", on: b) else {
            Issue.record("another job's claim was refused")
            return
        }
        try ScheduleRuns.finish(other, rows: 1, error: nil, on: b)
        try ScheduleRuns.finish(running, rows: 1, error: nil, on: a)

        // Finished: the job is free again, and a tick already run is not run twice.
        #expect(try ScheduleRuns.claim(schedule: "slow", dueAt: tick(1), instance: "b", on: b) == .failure(.claimed))
        guard case .success(let next) = try ScheduleRuns.claim(schedule: "slow", dueAt: tick(3), instance: "b", on: b) else {
            Issue.record("the job stayed locked after its run")
            return
        }
        // A session that ends mid-run frees the job with it.
        _ = next
        b = nil
        try waitUntil { try a.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'").value("n") == "0" }
        guard case .success = try ScheduleRuns.claim(schedule: "slow", dueAt: tick(4), instance: "a", on: a) else {
            Issue.record("a lost session's lock was kept")
            return
        }
        let runs = try a.execute("SELECT count(*) AS n FROM changerelay.schedule_runs WHERE schedule = 'slow'").value("n")
        #expect(runs == "3")
    }

    private func waitUntil(_ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw PostgresError(.queryFailed(sqlState: nil), "gave up waiting", endpoint: "") }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// A run still held by a live instance (its job's advisory lock taken) is kept; once that
    /// instance's session is gone, the unfinished run is forgotten, and `lastRuns` no longer
    /// counts it, so the next start catches the job up.
    @Test func onlyARunNobodyHoldsIsForgottenAsInterrupted() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let a = try cluster.connect()
        for migration in try SchemaFiles.migrations() { try a.execute(migration) }
        var holder: PostgresConnection! = try cluster.connect()
        let due = Date(timeIntervalSince1970: 1_772_366_400)
        guard case .success = try ScheduleRuns.claim(schedule: "slow", dueAt: due, instance: "holder", on: holder) else {
            Issue.record("the claim was refused")
            return
        }
        guard case .success = try ScheduleRuns.claim(schedule: "other", dueAt: due, instance: "holder", on: holder) else {
            Issue.record("the second claim was refused")
            return
        }
        let held = try ScheduleRuns.sweep(of: ["slow", "other"], on: a)
        #expect(held.interrupted.isEmpty)
        #expect(held.lastRuns["slow"]?.dueAt == due)

        holder = nil
        var state = try ScheduleRuns.sweep(of: ["slow", "other"], on: a)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(10))
        // The server ends the closed session's locks when its backend exits.
        while state.interrupted.isEmpty, clock.now < deadline {
            usleep(20_000)
            state = try ScheduleRuns.sweep(of: ["slow", "other"], on: a)
        }
        #expect(state.interrupted.map(\.schedule).sorted() == ["other", "slow"])
        #expect(state.lastRuns["slow"] == nil)
    }
}
