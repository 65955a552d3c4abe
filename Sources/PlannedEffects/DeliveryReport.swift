import Core
import Decoding

/// A log row of the seed's own tables that follows a delivery, written by the statement
/// that records each attempt: the seed's verification queries then see what its
/// triggers used to write, and the log can never disagree with the delivery.
public enum DeliveryReport: Sendable, Hashable {
    /// One `trigger_execution_logs` row per try (attempt n, http_status,
    /// `success`/`failed`, error), as the conversation-check trigger wrote them.
    case triggerAttempts(triggerName: String, recordID: String)
    /// The `automation_execution_logs` row of one execution: its attempt count on every
    /// try, `completed` with `completed_at` on success, `failed` with `error_message`
    /// after the last try, and `processing` again when `deliveries retry` re-queues it.
    case automationExecution(id: String)

    /// Which statement fragment a dispatcher needs for it.
    public enum Kind: Sendable, Hashable, CaseIterable {
        case triggerAttempts, automationExecution

        /// The top-level key of the `report` value.
        public var key: String {
            switch self {
            case .triggerAttempts: "trigger_attempts"
            case .automationExecution: "automation_execution"
            }
        }

        /// The seed table its log rows are in.
        public var table: String {
            switch self {
            case .triggerAttempts: "public.trigger_execution_logs"
            case .automationExecution: "public.automation_execution_logs"
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .triggerAttempts: .triggerAttempts
        case .automationExecution: .automationExecution
        }
    }

    /// The `deliveries.report` value.
    public var json: String {
        var writer = JSONWriter(capacity: 96)
        writer.beginObject()
        switch self {
        case .triggerAttempts(let triggerName, let recordID):
            writer.key("trigger_attempts")
            writer.beginObject()
            writer.key("trigger_name")
            writer.string(triggerName)
            writer.key("record_id")
            writer.string(recordID)
            writer.endObject()
        case .automationExecution(let id):
            writer.key("automation_execution")
            writer.string(id)
        }
        writer.endObject()
        return writer.string
    }

    /// A data-modifying CTE over `requeued` (the deliveries `deliveries retry` sends
    /// again, with `report`), run in the statement that re-queues them; nil where the log
    /// has nothing to undo. An execution is being processed again: `processing`, with no
    /// error and no completion, until its next try is recorded. Attempt rows are history,
    /// and the next try adds its own.
    public static func requeueFragment(for kind: Kind) -> String? {
        switch kind {
        case .triggerAttempts:
            nil
        case .automationExecution:
            """
            automation_executions AS (
                UPDATE public.automation_execution_logs a
                SET status = 'processing', error_message = NULL, completed_at = NULL
                FROM requeued r
                WHERE r.report ? 'automation_execution' AND a.id = (r.report->>'automation_execution')::uuid)
            """
        }
    }

    /// A data-modifying CTE over `updated` (the recorded attempts, with `report`), run
    /// in the same statement as the attempt's own record.
    public static func fragment(for kind: Kind) -> String {
        switch kind {
        case .triggerAttempts:
            """
            trigger_attempts AS (
                INSERT INTO public.trigger_execution_logs (trigger_name, record_id, attempt, status, http_status, error, details)
                SELECT u.report->'trigger_attempts'->>'trigger_name', u.report->'trigger_attempts'->>'record_id', u.attempt,
                       CASE WHEN u.status = 'succeeded' THEN 'success' ELSE 'failed' END, u.http_status, u.error,
                       jsonb_build_object('delivery_id', u.id, 'final', u.status IN ('succeeded', 'dead'))
                FROM updated u WHERE u.report ? 'trigger_attempts')
            """
        case .automationExecution:
            """
            automation_executions AS (
                UPDATE public.automation_execution_logs a
                SET attempts = u.attempt,
                    status = CASE u.status WHEN 'succeeded' THEN 'completed' WHEN 'dead' THEN 'failed' ELSE a.status END,
                    completed_at = CASE WHEN u.status = 'succeeded' THEN now() ELSE a.completed_at END,
                    error_message = CASE WHEN u.status = 'dead' THEN u.error ELSE a.error_message END
                FROM updated u
                WHERE u.report ? 'automation_execution' AND a.id = (u.report->>'automation_execution')::uuid)
            """
        }
    }
}
