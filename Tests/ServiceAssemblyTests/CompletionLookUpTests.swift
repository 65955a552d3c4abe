import Core
import EmbeddedPostgres
import Foundation
import Handlers
import Replication
@testable import ServiceAssembly
import Testing

/// Where the automation cache finds completions after a restart and those it evicted: with
/// the state database separate, `automation_execution_logs` there; otherwise the completion
/// log the checkpoints wrote, and the table only for completions before the log's baseline.
@Suite struct CompletionLookUpTests {
    static let job = "10000000-0000-0000-0000-000000000001"
    static let workflow = "20000000-0000-0000-0000-000000000002"
    static let key = AutomationCache.CompletionKey(jobID: job, workflowID: workflow, status: "done")
    static let base = 1_700_000_000_000_000 as Int64

    static func database(_ cluster: LocalPostgres) throws -> PostgresConnection {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let db = try cluster.connect()
        for file in ["001_changerelay_schema", "002_application_tables", "030_automation_completion_log"] {
            try db.execute(try String(contentsOfFile: root.path + "/sql/\(file).sql", encoding: .utf8))
        }
        return db
    }

    static func insertExecution(_ db: PostgresConnection, status: String = "completed", newStatus: String = "done",
                                at micros: Int64) throws {
        try db.query("""
            INSERT INTO automation_execution_logs (workflow_id, trigger_type, status, trigger_data, completed_at)
            VALUES ($1::uuid, 'job_status_changed', $2, jsonb_build_object('job_id', $3::text, 'new_status', $4::text),
                    'epoch'::timestamptz + $5::bigint * interval '1 microsecond')
            """, [workflow, status, job, newStatus, String(micros)])
    }

    /// The baseline row the handler writes with the first change it plans; its time.
    @discardableResult
    static func insertBaseline(_ db: PostgresConnection) throws -> Int64 {
        Int64(try db.execute("""
            INSERT INTO changerelay.automation_completion_log (commit_lsn, completed_at) VALUES ('0/8', now())
            RETURNING (extract(epoch FROM completed_at) * 1000000)::bigint::text AS at
            """).value("at") ?? "") ?? -1
    }

    static func insertLogged(_ db: PostgresConnection, status: String = "done", at micros: Int64) throws {
        try db.query("""
            INSERT INTO changerelay.automation_completion_log (commit_lsn, job_id, workflow_id, new_status, completed_at)
            VALUES ('0/10', $1, $2, $3, 'epoch'::timestamptz + $4::bigint * interval '1 microsecond')
            """, [job, workflow, status, String(micros)])
    }

    @Test(arguments: [false, true])
    func theLatestCompletionAtOrBeforeTheTimeAndWithinTheWindowIsFound(logged: Bool) throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try Self.database(cluster)
        let base = Self.base
        // Two completions of the key 10 s apart, one of another status, one that failed: all
        // before the log's baseline (now), so the table answers in both cases.
        for (micros, status, newStatus) in [(base, "completed", "done"), (base + 10_000_000, "completed", "done"),
                                            (base + 5_000_000, "completed", "other"), (base + 20_000_000, "failed", "done")] {
            try Self.insertExecution(db, status: status, newStatus: newStatus, at: micros)
        }
        let lookUp = CompletionLookUp(stateURL: cluster.url,
                                      completions: try Completions(on: db, logged: logged, window: .seconds(60)))
        func latest(before micros: Int64, _ key: AutomationCache.CompletionKey = Self.key) throws -> Int64? {
            try lookUp.latest(key, before: PostgresTimestamp(unixMicroseconds: micros))?.unixMicroseconds
        }
        #expect(try latest(before: base + 30_000_000) == base + 10_000_000)
        #expect(try latest(before: base + 10_000_000) == base + 10_000_000, "at the time itself counts")
        #expect(try latest(before: base + 9_999_999) == base, "a later completion does not count")
        #expect(try latest(before: base - 1) == nil)
        #expect(try latest(before: base + 70_000_000) == nil, "out of the window")
        #expect(try latest(before: base + 69_999_999) == base + 10_000_000)
        #expect(try latest(before: base + 30_000_000, .init(jobID: Self.job, workflowID: Self.workflow, status: "gone")) == nil)
    }

    /// After the baseline, a completion counts only once the stream has brought it (the log):
    /// one in the table alone committed after the checkpoint, and comes again through the
    /// stream after the job changes that committed before it.
    @Test func afterTheBaselineOnlyTheLogCounts() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try Self.database(cluster)
        let baseline = try Self.insertBaseline(db)
        let completions = try Completions(on: db, logged: true, window: .seconds(3600))
        #expect(completions.baseline?.unixMicroseconds == baseline)
        let tableOnly = baseline + 1_000_000
        let logged = baseline + 2_000_000
        try Self.insertExecution(db, at: tableOnly)
        try Self.insertExecution(db, at: logged)
        try Self.insertLogged(db, at: logged)
        let lookUp = CompletionLookUp(stateURL: cluster.url, completions: completions)
        #expect(try lookUp.latest(Self.key, before: PostgresTimestamp(unixMicroseconds: logged - 1)) == nil)
        #expect(try lookUp.latest(Self.key, before: PostgresTimestamp(unixMicroseconds: logged + 1))?.unixMicroseconds == logged)
        let loaded = try completions.all(after: PostgresTimestamp(unixMicroseconds: baseline - 1), on: db)
        #expect(loaded.map(\.time.unixMicroseconds) == [logged])
        #expect(loaded.map(\.key) == [Self.key])
    }

    /// Until the handler has planned its first change there is no baseline, and the table
    /// answers for every time: a start writes none, since one that never streams (a standby,
    /// a dispatcher) would mark a time after which completions were in neither place.
    @Test func withoutABaselineTheTableAnswersForEveryTime() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try Self.database(cluster)
        let completions = try Completions(on: db, logged: true, window: .seconds(3600))
        #expect(completions.baseline == nil)
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.automation_completion_log").value("n") == "0")
        let recent = Int64(Date().timeIntervalSince1970 * 1_000_000) + 1_000_000
        try Self.insertExecution(db, at: recent)
        let lookUp = CompletionLookUp(stateURL: cluster.url, completions: completions)
        #expect(try lookUp.latest(Self.key, before: PostgresTimestamp(unixMicroseconds: recent + 1))?.unixMicroseconds == recent)
    }

    /// The log forgets what no job change still to come can be limited by: completions a
    /// window and a minute older than the newest one. The baseline stays.
    @Test func aStartForgetsCompletionsNoLaterJobChangeCanMeet() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try Self.database(cluster)
        try Self.insertBaseline(db)
        let first = try Completions(on: db, logged: true, window: .seconds(60))
        let newest = Self.base + 600_000_000
        for micros in [newest, newest - 60_000_000, newest - 119_000_000, newest - 121_000_000, Self.base] {
            try Self.insertLogged(db, at: micros)
        }
        let second = try Completions(on: db, logged: true, window: .seconds(60))
        #expect(second.baseline == first.baseline)
        let kept = try db.execute("""
            SELECT (extract(epoch FROM completed_at) * 1000000)::bigint::text AS at FROM changerelay.automation_completion_log
            WHERE job_id IS NOT NULL ORDER BY completed_at DESC
            """).rows.compactMap { $0[0].flatMap { Int64($0) } }
        #expect(kept == [newest, newest - 60_000_000, newest - 119_000_000])
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.automation_completion_log WHERE job_id IS NULL")
            .value("n") == "1")
    }
}
