import Core
import Decoding
import Handlers
import PlannedEffects
import StateStore
import Testing

/// A planned delivery as the planner copies it into `changerelay.deliveries`.
@Suite struct DeliveryRowsTests {
    @Test func aRowHasOneValueForEachColumnInItsOrder() throws {
        let planned = PositionedDelivery(
            handler: "conversation_checks", position: ChangePosition(commitLSN: LSN(0x1_0000_0200), index: 2),
            delivery: PlannedDelivery(
                target: "check-conversation", url: "http://127.0.0.1:9/check", headers: [.init("Content-Type", "application/json")],
                auth: "service_key", body: "{}", orderingKey: "public.user_conversations:7",
                retryPolicy: .fixed(delay: .seconds(10), maxAttempts: 3),
                report: .triggerAttempts(triggerName: "check_conversations_trigger_attempt", recordID: "7"),
                attemptField: "attempt"))
        var rows = DeliveryRows()
        let values = try rows.values(of: planned)
        #expect(values.count == DeliveryRows.target.columns.count)
        let row = Dictionary(uniqueKeysWithValues: zip(DeliveryRows.target.columns, values))
        #expect(row["idempotency_key"] == "conversation_checks:1/200:2:check-conversation")
        #expect(row["ordering_key"] == "public.user_conversations:7" && row["handler"] == "conversation_checks")
        #expect(row["source_lsn"] == "1/200" && row["target_url"] == "http://127.0.0.1:9/check" && row["method"] == "POST")
        #expect(row["headers"] == #"{"Content-Type":"application/json"}"# && row["auth"] == "service_key")
        #expect(row["body"] == "{}" && row["attempt_field"] == "attempt")
        #expect(row["retry_policy"]??.contains(#""kind":"fixed""#) == true)
        #expect(row["report"] == #"{"trigger_attempts":{"trigger_name":"check_conversations_trigger_attempt","record_id":"7"}}"#)
        // Encoded once and reused: the same text the second time.
        #expect(try rows.values(of: planned) == values)
    }

    @Test func theCopyStatementQuotesEveryName() {
        #expect(DeliveryRows.target.statement.hasPrefix(#"COPY "changerelay"."deliveries" ("idempotency_key", "ordering_key", "#))
        #expect(DeliveryRows.target.statement.hasSuffix(#""report", "attempt_field", "endpoint") FROM STDIN"#))
    }
}
