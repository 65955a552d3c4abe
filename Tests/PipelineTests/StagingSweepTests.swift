import Decoding
import PlannedEffects
@testable import Pipeline
import Testing

/// A staging table is deleted from after each batch and truncated once enough has been
/// staged into it since its last truncation: what later batches walk stays bounded, and a
/// small batch does not pay for a truncation.
struct StagingSweepTests {
    private let webhooks = Staging(table: TableName(schema: "pg_temp", name: "webhook_logs_staged"), statements: "")
    private let dualWrite = Staging(table: TableName(schema: "pg_temp", name: "dual_write_staged"), statements: "",
                                    scratchTables: [TableName(schema: "pg_temp", name: "dual_write_rows")])

    @Test func smallBatchesDeleteUntilTheirBytesAddUpToATruncation() {
        var sweep = StagingSweep()
        let third = StagingSweep.truncationBytes / 3
        #expect(sweep.statement(emptying: []) == nil)
        #expect(sweep.statement(emptying: [(webhooks, third)]) == #"DELETE FROM "pg_temp"."webhook_logs_staged""#)
        #expect(sweep.statement(emptying: [(webhooks, third)]) == #"DELETE FROM "pg_temp"."webhook_logs_staged""#)
        #expect(sweep.statement(emptying: [(webhooks, third + 1)]) == #"TRUNCATE "pg_temp"."webhook_logs_staged""#)
        // Counting starts again after a truncation.
        #expect(sweep.statement(emptying: [(webhooks, third)]) == #"DELETE FROM "pg_temp"."webhook_logs_staged""#)
    }

    @Test func aLargeBatchTruncatesAtOnceAndEachTableCountsItsOwnBytes() {
        var sweep = StagingSweep()
        let statement = sweep.statement(emptying: [(dualWrite, StagingSweep.truncationBytes), (webhooks, 10)])
        #expect(statement == """
            TRUNCATE "pg_temp"."dual_write_staged", "pg_temp"."dual_write_rows";
            DELETE FROM "pg_temp"."webhook_logs_staged"
            """)
        #expect(sweep.statement(emptying: [(dualWrite, 10)]) == """
            DELETE FROM "pg_temp"."dual_write_staged";
            DELETE FROM "pg_temp"."dual_write_rows"
            """)
    }

    @Test func onlyABatchThatStagedATruncationsWorthInOneTablePlansAfresh() {
        let webhookTable = webhooks.table, dualWriteTable = dualWrite.table
        #expect(!StagingSweep.replans([:]))
        #expect(!StagingSweep.replans([webhookTable: StagingSweep.truncationBytes - 1, dualWriteTable: StagingSweep.truncationBytes - 1]))
        #expect(StagingSweep.replans([webhookTable: 10, dualWriteTable: StagingSweep.truncationBytes]))
    }
}
