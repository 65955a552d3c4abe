import Core
import EmbeddedPostgres
import Foundation
import Handlers
import Replication
@testable import ServiceAssembly
import Testing

/// Where the automation cache finds the completions it evicted: the same answer, from the
/// state database's `automation_execution_logs`, as it gave while it held them.
@Suite struct CompletionLookUpTests {
    @Test func theLatestCompletionAtOrBeforeTheTimeAndWithinTheWindowIsFound() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let db = try cluster.connect()
        try db.execute(try String(contentsOfFile: root.path + "/sql/002_application_tables.sql", encoding: .utf8))
        let job = "10000000-0000-0000-0000-000000000001"
        let workflow = "20000000-0000-0000-0000-000000000002"
        // Two completions of the key 10 s apart, one of another status, one that failed.
        let base = 1_700_000_000_000_000 as Int64
        for (micros, status, newStatus) in [(base, "completed", "done"), (base + 10_000_000, "completed", "done"),
                                            (base + 5_000_000, "completed", "other"), (base + 20_000_000, "failed", "done")] {
            try db.query("""
                INSERT INTO automation_execution_logs (workflow_id, trigger_type, status, trigger_data, completed_at)
                VALUES ($1::uuid, 'job_status_changed', $2, jsonb_build_object('job_id', $3::text, 'new_status', $4::text),
                        'epoch'::timestamptz + $5::bigint * interval '1 microsecond')
                """, [workflow, status, job, newStatus, String(micros)])
        }
        let lookUp = CompletionLookUp(stateURL: cluster.url, window: .seconds(60))
        let key = AutomationCache.CompletionKey(jobID: job, workflowID: workflow, status: "done")
        func latest(before micros: Int64, _ key: AutomationCache.CompletionKey = key) throws -> Int64? {
            try lookUp.latest(key, before: PostgresTimestamp(unixMicroseconds: micros))?.unixMicroseconds
        }
        #expect(try latest(before: base + 30_000_000) == base + 10_000_000)
        #expect(try latest(before: base + 10_000_000) == base + 10_000_000, "at the time itself counts")
        #expect(try latest(before: base + 9_999_999) == base, "a later completion does not count")
        #expect(try latest(before: base - 1) == nil)
        #expect(try latest(before: base + 70_000_000) == nil, "out of the window")
        #expect(try latest(before: base + 69_999_999) == base + 10_000_000)
        #expect(try latest(before: base + 30_000_000, .init(jobID: job, workflowID: workflow, status: "gone")) == nil)
    }
}
