import Decoding
import Logging
import PlannedEffects
@testable import StateStore
import Testing

/// The dispatcher's statements are built from the logs its handlers write: only those are
/// named, and the claim leaves other deliveries to a dispatcher that can write their logs.
@Suite struct DeliveryStatementTests {
    private static func log(_ key: String, cte: String) -> DeliveryLog {
        DeliveryLog(key: key, table: TableName(schema: "public", name: key + "_table"),
                    recordFragment: "\(cte) AS (SELECT 1 FROM updated u WHERE u.report ? '\(key)')")
    }

    private static func queue(_ logs: Set<DeliveryLog>, limit: Int = 64) -> DeliveryQueue {
        DeliveryQueue(logs: logs, claimLimit: limit, lease: .seconds(45), logger: Logger(label: "test"))
    }

    @Test func withoutLogsOnlyDeliveriesWithoutAReportAreClaimed() {
        let statement = Self.queue([]).claimStatement
        #expect(statement.contains("AND d.report IS NULL\n"))
        #expect(!statement.contains("?|"))
    }

    @Test func theClaimNamesEveryLogKeyInKeyOrderAsLiterals() {
        let statement = Self.queue([Self.log("zeta", cte: "z"), Self.log("alpha", cte: "a"), Self.log("it's", cte: "q")])
            .claimStatement
        #expect(statement.contains("AND (d.report IS NULL OR d.report ?| ARRAY['alpha', 'it''s', 'zeta'])\n"))
    }

    @Test func theLimitIsInTheTextAndTheRowsComeBackInTheOrderTheyAreRead() {
        let statement = Self.queue([], limit: 17).claimStatement
        #expect(statement.contains("LIMIT 17\n"))
        #expect(statement.hasSuffix("RETURNING " + ClaimedDelivery.claimedColumns.joined(separator: ", ")))
    }

    @Test func theRecordCarriesEachLogsFragmentOnceInKeyOrder() {
        let statement = Self.queue([Self.log("zeta", cte: "z"), Self.log("alpha", cte: "a")]).recordStatement
        #expect(statement.contains("""
            RETURNING r.*, d.report, d.target_url),
            a AS (SELECT 1 FROM updated u WHERE u.report ? 'alpha'),
            z AS (SELECT 1 FROM updated u WHERE u.report ? 'zeta')
            INSERT INTO changerelay.delivery_attempts
            """))
    }

    @Test func aRecordWithoutLogsWritesOnlyTheAttempts() {
        #expect(Self.queue([]).recordStatement.contains("RETURNING r.*, d.report, d.target_url)\nINSERT INTO changerelay.delivery_attempts"))
    }
}
