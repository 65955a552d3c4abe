import Decoding
import PlannedEffects

extension DeliveryLog {
    /// One `trigger_execution_logs` row per try of a conversation check (attempt n,
    /// `http_status`, `success`/`failed`, error, `details.final` on the last), as the
    /// `check_conversations` trigger wrote them. Attempt rows are history: a re-queue has
    /// nothing to undo, and the next try adds its own row.
    public static let triggerAttempts = DeliveryLog(
        key: "trigger_attempts", table: ConversationCheckHandler.logTable,
        recordFragment: """
            trigger_attempts AS (
                INSERT INTO public.trigger_execution_logs (trigger_name, record_id, attempt, status, http_status, error, details)
                SELECT u.report->'trigger_attempts'->>'trigger_name', u.report->'trigger_attempts'->>'record_id', u.attempt,
                       CASE WHEN u.status = 'succeeded' THEN 'success' ELSE 'failed' END, u.http_status, u.error,
                       jsonb_build_object('delivery_id', u.id, 'final', u.status IN ('succeeded', 'dead'))
                FROM updated u WHERE u.report ? 'trigger_attempts')
            """)
}

extension DeliveryReport {
    /// The attempt rows of `triggerName` for the record `recordID`:
    /// `{"trigger_attempts":{"trigger_name":…,"record_id":…}}`.
    public static func triggerAttempts(triggerName: String, recordID: String) -> DeliveryReport {
        var payload = JSONWriter(capacity: 64 + triggerName.utf8.count + recordID.utf8.count)
        payload.beginObject()
        payload.key("trigger_name")
        payload.string(triggerName)
        payload.key("record_id")
        payload.string(recordID)
        payload.endObject()
        return DeliveryReport(log: .triggerAttempts, payload: payload.string)
    }
}
