import RelayConfiguration
import Core
import Decoding
import Handlers
import Logging
import PlannedEffects
import Testing

/// The logs the built-in handlers keep current. `deliveries.report` values are stored in
/// deployed databases and read by the SQL below, so their text is part of the contract.
@Suite struct DeliveryLogTests {
    @Test func reportsAreStoredAsDeployedRowsHaveThem() {
        #expect(DeliveryReport.triggerAttempts(triggerName: "check_conversations_trigger_attempt", recordID: "12").json
                    == #"{"trigger_attempts":{"trigger_name":"check_conversations_trigger_attempt","record_id":"12"}}"#)
        #expect(DeliveryReport.automationExecution(id: "6f1d4c1e-5b7a-5d0c-9a57-3f0c2b9e8d11").json
                    == #"{"automation_execution":"6f1d4c1e-5b7a-5d0c-9a57-3f0c2b9e8d11"}"#)
        #expect(DeliveryReport.bufferProcessingJob(bufferID: "41").json == #"{"buffer_processing_job":{"buffer_id":"41"}}"#)
        let webhook = DeliveryReport.webhookLog(webhookID: "msg_1", configID: "7", eventType: "x.created", body: "{}")
        #expect(webhook.json == #"{"webhook_log":{"webhook_id":"msg_1","config_id":"7"}}"#)
        #expect(webhook.numbered("41").report.json == #"{"webhook_log":{"id":"41","webhook_id":"msg_1","config_id":"7"}}"#)
        #expect(DeliveryReport.triggerAttempts(triggerName: #"a "b"\"#, recordID: "\n").json
                    == #"{"trigger_attempts":{"trigger_name":"a \"b\"\\","record_id":"\n"}}"#)
    }

    @Test func eachLogReadsOnlyTheReportsUnderItsOwnKey() {
        for log in BuiltInHandlers.deliveryLogs {
            #expect(log.recordFragment.contains("u.report ? '\(log.key)'"), "\(log.key)")
            if let requeue = log.requeueFragment { #expect(requeue.contains("r.report ? '\(log.key)'"), "\(log.key)") }
        }
        #expect(BuiltInHandlers.deliveryLogs.map(\.table.description).sorted()
                    == ["public.automation_execution_logs", "public.buffer_processing_jobs", "public.trigger_execution_logs",
                        "public.webhook_logs"])
    }

    @Test func deliveriesRetryKnowsEveryLogABuiltInHandlerWrites() {
        let handlers: [any Handler] = [
            ConversationCheckHandler(.init(baseURL: "http://127.0.0.1:9")),
            AutomationHandler(.init(baseURL: "http://127.0.0.1:9"), cache: AutomationCache(rateLimitWindow: .seconds(3600)),
                              logger: Logger(label: "test")),
            DualWriteHandler(mode: .apply, logger: Logger(label: "test")),
            EchoHandler(url: "http://127.0.0.1:9/echo", tables: ["items"]),
            WebhookHandler(rules: WebhookRule.builtIn, cache: WebhookConfigCache(), logger: Logger(label: "test")),
            MessageBufferingHandler(
                .init(baseURL: "http://127.0.0.1:9", windows: .init(duration: .seconds(30), maxAge: .seconds(300), maxSize: 50)),
                state: MessageBufferState(restored: .init(
                    book: BufferBook(windows: .init(duration: .seconds(30), maxAge: .seconds(300), maxSize: 50)),
                    buffering: true))),
        ]
        let router = Router(handlers)
        #expect(router.reports == BuiltInHandlers.deliveryLogs)
        #expect(handlers.allSatisfy { $0.reports.isSubset(of: BuiltInHandlers.deliveryLogs) })
    }

    /// Only a webhook's log numbers its rows, with its handler's prepared reservation; its row
    /// is staged where the handler's statement inserts it (sql/035), with the id first and
    /// the report naming the same id, escaped as any JSON string is. Every other report
    /// carries no row and goes into `deliveries` as it was planned.
    @Test func onlyWebhookLogRowsAreNumberedAndTheReportNamesTheRowsID() throws {
        let webhooks = WebhookHandler(rules: WebhookRule.builtIn, cache: WebhookConfigCache(), logger: Logger(label: "test"))
        #expect(BuiltInHandlers.deliveryLogs.compactMap(\.numberedRows)
                    == [NumberedLogRows(reservation: "changerelay_reserve_webhook_log_ids", table: WebhookHandler.logTable)])
        #expect(webhooks.staging?.table == WebhookHandler.stagingTable)
        #expect(DeliveryReport.triggerAttempts(triggerName: "t", recordID: "1").row == nil)

        let report = DeliveryReport.webhookLog(webhookID: "msg_1", configID: "7", eventType: "chat.message.created",
                                               body: #"{"type":"chat.message.created"}"#)
        #expect(report.numbering == DeliveryLog.webhookLog.numberedRows)
        let numbered = report.numbered(#"9"\"#)
        #expect(numbered.report.payload == #"{"id":"9\"\\","webhook_id":"msg_1","config_id":"7"}"#)
        #expect(numbered.report.numbering == nil && numbered.report.row == nil)
        #expect(numbered.row.table == WebhookHandler.stagingTable)
        #expect(numbered.row.columns == ["id", "webhook_config_id", "event_type", "payload"])
        #expect(numbered.row.values == [#"9"\"#, "7", "chat.message.created", #"{"type":"chat.message.created"}"#])

        let empty = DeliveryLog(key: "empty", table: WebhookHandler.logTable, recordFragment: "",
                                numberedRows: NumberedLogRows(reservation: "r", table: WebhookHandler.logTable))
        let row = PlannedRow(table: WebhookHandler.stagingTable, ["a": "1"])
        #expect(DeliveryReport(log: empty, payload: "{}", row: row).numbered("5").report.payload == #"{"id":"5"}"#)
    }
}
