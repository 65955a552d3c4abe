import Decoding
import PlannedEffects

extension DeliveryLog {
    /// The `automation_execution_logs` row of one execution, kept current by its delivery:
    /// its attempt count on every try, `completed` with `completed_at` on success, `failed`
    /// with `error_message` after the last try; `deliveries retry` puts it back to
    /// `processing`, with no error and no completion, until its next try is recorded.
    public static let automationExecution = DeliveryLog(
        key: "automation_execution", table: AutomationHandler.logTable,
        recordFragment: """
            automation_executions AS (
                UPDATE public.automation_execution_logs a
                SET attempts = u.attempt,
                    status = CASE u.status WHEN 'succeeded' THEN 'completed' WHEN 'dead' THEN 'failed' ELSE a.status END,
                    completed_at = CASE WHEN u.status = 'succeeded' THEN now() ELSE a.completed_at END,
                    error_message = CASE WHEN u.status = 'dead' THEN u.error ELSE a.error_message END
                FROM updated u
                WHERE u.report ? 'automation_execution' AND a.id = (u.report->>'automation_execution')::uuid)
            """,
        requeueFragment: """
            automation_executions AS (
                UPDATE public.automation_execution_logs a
                SET status = 'processing', error_message = NULL, completed_at = NULL
                FROM requeued r
                WHERE r.report ? 'automation_execution' AND a.id = (r.report->>'automation_execution')::uuid)
            """)
}

extension DeliveryReport {
    /// The execution row `id` (a UUID): `{"automation_execution":"<id>"}`.
    public static func automationExecution(id: String) -> DeliveryReport {
        var payload = JSONWriter(capacity: id.utf8.count + 8)
        payload.string(id)
        return DeliveryReport(log: .automationExecution, payload: payload.string)
    }
}
