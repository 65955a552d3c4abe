import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// Streamed transactions (proto 2, `streaming`) far larger than memory: held in spill
/// files, planned once at Stream Commit, with memory bounded by the spill threshold.
@Suite struct LargeTransactionTests {
    /// The walsender streams any transaction past this much decoded memory.
    static let streamEverything = ["logical_decoding_work_mem": "64kB"]

    /// Peak resident memory of a running process, from the kernel.
    static func peakResidentBytes(_ pid: pid_t) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw TestFailure("no VmHWM in /proc/\(pid)/status")
        }
        return kilobytes * 1024
    }

    static func streamedTransactions(_ db: PostgresConnection) throws -> Int {
        Int(try db.execute("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'changerelay'")
            .value("stream_txns") ?? "0") ?? 0
    }

    @Test(.tags(.soak), .enabled(if: soaksEnabled)) func fiveMillionRowsArePlannedOnceInBoundedMemory() throws {
        let rows = 5_000_000
        let threshold = 16
        let margin = 64 << 20
        let setup = try RunPipelineTests.prepare(
            extra: ["CHANGERELAY_PIPELINE_SPILL_THRESHOLD_MB": String(threshold)], clusterSettings: Self.streamEverything)
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run", "--only", "planner"], environment: setup.environment)
        try RunPipelineTests.waitFor("the planner to stream") { run.stderr.contains("streaming") }
        // The position is read inside the transaction, before its commit: read after it, it may
        // include WAL of no published transaction (the planner's own rows, an autovacuum's),
        // which no checkpoint ever passes.
        try setup.db.execute("BEGIN")
        try setup.db.execute("INSERT INTO items SELECT g, NULL FROM generate_series(1, \(rows)) g")
        let end = try setup.db.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").value("lsn")!
        try setup.db.execute("COMMIT")
        // The deadline is for a hung planner: in `.ci/run` this soak shares two cores with the
        // rest of the suite, and it once took longer than 900 s there.
        try RunPipelineTests.waitFor("the transaction to be planned", timeout: .seconds(1800)) {
            try setup.db.query("SELECT lsn >= $1::pg_lsn AS done FROM changerelay.checkpoints WHERE slot_name = 'changerelay'",
                               [end]).value("done") == "t"
        }
        let peak = try Self.peakResidentBytes(run.child.pid)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        try RunPipelineTests.expectPlannedOnce(setup.db, changes: rows)
        #expect(try Self.streamedTransactions(setup.db) >= 1)
        #expect(run.stderr.contains("planning a large transaction from its spill file"))
        #expect(peak < (threshold << 20) + margin, "peak RSS \(peak >> 20) MiB, threshold \(threshold) MiB + \(margin >> 20) MiB")
    }

    /// kill -9 while a spilled transaction is being planned: the slot re-sends it whole
    /// and it is planned exactly once.
    @Test(.tags(.soak), .enabled(if: soaksEnabled)) func aKillWhilePlanningASpilledTransactionLosesAndDoublesNothing() throws {
        let rows = 300_000
        let setup = try RunPipelineTests.prepare(
            extra: ["CHANGERELAY_PIPELINE_SPILL_THRESHOLD_MB": "1"], clusterSettings: Self.streamEverything)
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let first = try Background(["run", "--only", "planner"], environment: setup.environment)
        try RunPipelineTests.waitFor("the planner to stream") { first.stderr.contains("streaming") }
        try setup.db.execute("INSERT INTO items SELECT g, 'big' FROM generate_series(1, \(rows)) g")
        try RunPipelineTests.waitFor("planning to start", timeout: .seconds(300)) {
            first.stderr.contains("planning a large transaction from its spill file")
        }
        first.child.signal(SIGKILL)
        _ = first.waitForExit()
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == "0")
        let second = try Background(["run", "--only", "planner"], environment: setup.environment)
        try RunPipelineTests.waitFor("the transaction to be planned after the restart", timeout: .seconds(300)) {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries").value("n") == String(rows)
        }
        second.child.signal(SIGTERM)
        #expect(second.waitForExit() == 0, "\(second.stderr.suffix(2000))")
        try RunPipelineTests.expectPlannedOnce(setup.db, changes: rows)
    }
}
