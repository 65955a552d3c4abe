import Core
import Decoding
import Metrics
import PlannedEffects

/// Moves a backfill's cursor with the effects of its chunk. The chunk's rows reach the
/// handlers in the transaction of its high watermark; this handler stages the chunk's
/// progress from the same transaction, and `apply_staged_backfill_progress()` applies it in
/// the checkpoint transaction. So after a crash the cursor is exactly as far as the committed
/// effects: the next chunk is read, and a finished one never again.
public final class BackfillProgressHandler: Handler, Sendable {
    /// The committer session's own (024): `changerelay.create_backfill_progress_staging_kept()` makes it.
    public static let stagingTable = TableName(schema: "pg_temp", name: "backfill_progress_staged")
    public static let rowsMetric = "changerelay_backfill_rows_total"

    public let name = "backfill"
    public let tables: Set<String> = []
    public let followsCommitTime = true
    public let staging: Staging? = Staging(table: stagingTable,
                                           statements: "SELECT * FROM changerelay.apply_staged_backfill_progress()",
                                           sessionSetup: "SELECT changerelay.create_backfill_progress_staging_kept()")
    private let metrics: any MetricsFactory

    public init(metrics: any MetricsFactory = MetricsSystem.factory) {
        self.metrics = metrics
    }

    /// It reads no table: chunks reach it through `committed(_:)`.
    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects { .none }

    public func committed(_ transaction: Transaction) throws(HandlerError) -> Effects {
        guard let chunk = transaction.backfill else { return .none }
        return Effects(rows: [PlannedRow(table: Self.stagingTable, [
            "backfill_id": String(chunk.backfill), "chunk": String(chunk.number),
            "cursor": chunk.cursor.isEmpty ? nil : postgresArrayLiteral(chunk.cursor),
            "rows_read": String(chunk.rowsRead), "rows_superseded": String(chunk.rowsSuperseded),
            "last": chunk.isLast ? "t" : "f",
        ])])
    }

    /// `changerelay_backfill_rows_total{table}`, counted once the chunk's effects are committed.
    public func stagedBatchCommitted(_ result: QueryResult) {
        for index in result.rows.indices {
            guard let table = result.value("table_name", row: index),
                  let rows = result.value("rows_read", row: index).flatMap(Int64.init) else { continue }
            Counter(label: Self.rowsMetric, dimensions: [("table", table)], factory: metrics).increment(by: rows)
        }
    }
}
