import Core
import Decoding
import PlannedEffects

extension DeliveryLog {
    /// A webhook's `webhook_logs` row, one per delivery: planned with it, numbered by the batch
    /// committer, which adds the row's id to the report (`id`), and inserted with it from the
    /// handler's staging (`WebhookHandler.staging`, sql/035); then kept current by each try
    /// (`attempt_count`, `response_status`, `response_body`, `error_message`, `completed_at`
    /// on success and on the final failure). A 410 Gone also sets the config inactive, as Standard Webhooks
    /// asks, unless the config's URL is no longer the one the try went to. The deliveries of
    /// an inactive config are not claimed: they wait, paused, in their order, until it is
    /// active again (or an operator cancels them: the cancel fragment finishes their rows).
    /// Those of a config deleted meanwhile are claimed, and end dead saying the config no
    /// longer exists: waiting, they would wait for ever, unseen.
    ///
    /// Ids reach the seed's tables through `jsonb_populate_record`, which converts the text
    /// to the column's own type (the seed's bigint identity or an older uuid), so the
    /// comparisons can use the tables' primary keys. A delivery queued before sql/025 has no
    /// `id` in its report: its row is found through `webhook_log_ids`, as it was then.
    public static let webhookLog = DeliveryLog(
        key: "webhook_log", table: WebhookHandler.logTable,
        recordFragment: """
            webhook_logs AS (
                UPDATE public.webhook_logs w
                SET attempt_count = u.attempt, response_status = u.http_status, response_body = left(u.body, 4096),
                    error_message = u.error,
                    completed_at = CASE WHEN u.status IN ('succeeded', 'dead') THEN now() ELSE w.completed_at END
                FROM updated u
                WHERE u.report ? 'webhook_log'
                  AND w.id = (jsonb_populate_record(NULL::public.webhook_logs, jsonb_build_object('id', \(logRowID("u"))))).id),
            webhook_gone AS (
                UPDATE public.webhook_configs c SET is_active = false, updated_at = now()
                FROM updated u
                WHERE u.report ? 'webhook_log' AND u.http_status = 410 AND c.url = u.target_url
                  AND c.id = (jsonb_populate_record(NULL::public.webhook_configs,
                                                    jsonb_build_object('id', u.report->'webhook_log'->>'config_id'))).id)
            """,
        requeueFragment: """
            webhook_logs_requeued AS (
                UPDATE public.webhook_logs w SET completed_at = NULL
                FROM requeued r
                WHERE r.report ? 'webhook_log'
                  AND w.id = (jsonb_populate_record(NULL::public.webhook_logs, jsonb_build_object('id', \(logRowID("r"))))).id)
            """,
        cancelFragment: """
            webhook_logs_cancelled AS (
                UPDATE public.webhook_logs w SET error_message = \(quoteLiteral(DeliveryLog.cancelReason)), completed_at = now()
                FROM cancelled c
                WHERE c.report ? 'webhook_log'
                  AND w.id = (jsonb_populate_record(NULL::public.webhook_logs, jsonb_build_object('id', \(logRowID("c"))))).id)
            """,
        endpointCondition: EndpointCondition(prefix: WebhookDeliveryNames.prefix, sql: """
            NOT EXISTS (SELECT FROM public.webhook_configs c
                        WHERE c.id = (jsonb_populate_record(NULL::public.webhook_configs, jsonb_build_object(
                                          'id', substr(e.endpoint, \(WebhookDeliveryNames.prefix.count + 1))))).id
                          AND c.is_active IS NOT TRUE)
            """),
        numberedRows: NumberedLogRows(reservation: "changerelay_reserve_webhook_log_ids", table: WebhookHandler.logTable))

    /// The `webhook_logs` id, as text, of the delivery whose report is `alias.report`. The
    /// mapping is read only when the report lacks the id: COALESCE evaluates its subquery
    /// only then.
    private static func logRowID(_ alias: String) -> String {
        """
        coalesce(\(alias).report->'webhook_log'->>'id',
                 (SELECT m.log_id FROM changerelay.webhook_log_ids m
                  WHERE m.webhook_id = \(alias).report->'webhook_log'->>'webhook_id'))
        """
    }
}

extension DeliveryReport {
    /// The `webhook_logs` row of the event `webhookID` of type `eventType` sent to config
    /// `configID`, whose payload is the delivery's `body`.
    public static func webhookLog(webhookID: String, configID: String, eventType: String, body: String) -> DeliveryReport {
        var payload = JSONWriter(capacity: 96)
        payload.beginObject()
        payload.key("webhook_id")
        payload.string(webhookID)
        payload.key("config_id")
        payload.string(configID)
        payload.endObject()
        return DeliveryReport(log: .webhookLog, payload: payload.string, row: PlannedRow(table: WebhookHandler.stagingTable, [
            "webhook_config_id": configID, "event_type": eventType, "payload": body,
        ]))
    }
}
