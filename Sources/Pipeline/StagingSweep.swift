import Decoding
import PlannedEffects

/// How the batch committer empties its staging tables once a batch's statements have read
/// them, in the checkpoint transaction (a rolled-back batch's rows were never visible).
///
/// A `DELETE` costs next to nothing, but a temporary table is never vacuumed: its deleted
/// rows stay in its file, and every later statement that reads the table walks them. A
/// `TRUNCATE` gives the table a new, empty file, at about 0.35 ms a table. So a table is
/// truncated once about `truncationBytes` have been staged into it since its last
/// truncation, and deleted from otherwise: a small batch pays a delete, and what later
/// batches walk stays under that size. The size also marks a batch large enough to plan
/// afresh (`replans`).
struct StagingSweep {
    static let truncationBytes = 256 << 10

    /// Bytes staged into each staging table since it was last truncated. A connection
    /// dropped meanwhile took its tables with it, so this can only overstate: a table is
    /// then truncated early, never late.
    private var stagedSinceTruncation: [TableName: Int] = [:]

    /// Whether a batch that staged `staged` (bytes by table) should have its session's plans
    /// made again before its statements run. Handlers prepare their statements once a session
    /// (the dual-write sync's, the insert of numbered webhook log rows), and Postgres keeps the plan it
    /// made for the tables as they were then: one made in a run of small batches (a few rows
    /// in each temporary table) must not serve a backlog's batch of thousands. A batch this
    /// large then ends with a truncation, so the next batch plans afresh too.
    static func replans(_ staged: [TableName: Int]) -> Bool {
        staged.values.contains { $0 >= truncationBytes }
    }

    /// One simple query that empties, for each staging that ran with `bytes` staged, its
    /// staging table and scratch tables; nil when there are none.
    mutating func statement(emptying stagings: [(staging: Staging, bytes: Int)]) -> String? {
        let statements = stagings.map { staging, bytes in
            let total = stagedSinceTruncation[staging.table, default: 0] + bytes
            let truncating = total >= Self.truncationBytes
            stagedSinceTruncation[staging.table] = truncating ? 0 : total
            return staging.emptying(truncating: truncating)
        }
        return statements.isEmpty ? nil : statements.joined(separator: ";\n")
    }
}
