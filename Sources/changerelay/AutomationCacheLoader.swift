import Core
import Foundation
import Handlers
import Logging
import Replication

/// Fills the automation handler's cache at start; the stream keeps it current after that.
enum AutomationCacheLoader {
    /// Every workflow from the source database, and the executions that completed within
    /// the rate-limit window from the state database, where ChangeRelay writes them: the
    /// source's own connection serves unless `separateStateURL` names another database.
    static func load(sourceURL: String, separateStateURL: String?, window: Duration, logger: Logger) throws -> AutomationCache {
        let cache = AutomationCache(rateLimitWindow: window)
        let source = try PostgresConnection(url: sourceURL)
        let workflows = try source.execute("""
            SELECT id::text, user_id::text, trigger_type, is_active, status, trigger_config::text
            FROM public.automation_workflows
            """)
        var malformed = 0
        for row in workflows.rows {
            guard let id = row[0] else { continue }
            let workflow = Workflow(id: id, userID: row[1], triggerType: row[2], isActive: row[3],
                                    status: row[4], triggerConfig: row[5])
            if workflow.isLive, case .failure(let problem) = workflow.conditions {
                malformed += 1
                logger.warning("workflow cannot fire: its configuration is malformed; it is skipped until it is fixed",
                               metadata: ["workflow": "\(id)", "reason": "\(problem)"])
            }
            cache.upsert(workflow)
        }
        let state = if let separateStateURL { try PostgresConnection(url: separateStateURL) } else { source }
        let completions = try state.query("""
            SELECT trigger_data->>'job_id', workflow_id::text, trigger_data->>'new_status',
                   (extract(epoch FROM completed_at) * 1000000)::bigint::text
            FROM public.automation_execution_logs
            WHERE status = 'completed' AND completed_at > now() - $1::bigint * interval '1 microsecond'
            """, [String(window.wholeMicroseconds)])
        for row in completions.rows {
            guard let job = row[0], let workflow = row[1], let status = row[2], let micros = row[3].flatMap({ Int64($0) }) else {
                continue
            }
            cache.recordCompletion(.init(jobID: job, workflowID: workflow, status: status), at: PostgresTimestamp(unixMicroseconds: micros))
        }
        // What was loaded is the starting point, not a batch to undo.
        cache.batchEnded(committed: true)
        logger.info("automation cache loaded", metadata: [
            "workflows": "\(workflows.rows.count)", "malformed": "\(malformed)", "recent_completions": "\(completions.rows.count)",
        ])
        return cache
    }
}
