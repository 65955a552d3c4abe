import Core
import Foundation
import Handlers
import Logging
import PlannedEffects
import Replication
import Schema
import Synchronization

/// Fills the automation handler's cache at start; the stream keeps it current after that.
enum AutomationCacheLoader {
    /// Completion times that microseconds since 1970 in an Int64 can hold: one row written
    /// `infinity` (or past the year 200 000) stopped every start with "cannot convert infinity
    /// to bigint". No time in it can fall in a rate-limit window anyway. Tested before any
    /// cast: the select list is computed only for the rows it lets through.
    static let representable = "isfinite(completed_at) AND completed_at < timestamptz '200000-01-01 00:00:00+00'"

    /// Completions kept in memory (some 250 B each, 2 MiB in all); older ones within the
    /// window are found again in the state database (`CompletionLookUp`). Unbounded, they
    /// were most of what `run` grew by: 9 MiB of heap after 40 000 executions.
    static let completionCapacity = 8192

    /// The workflows as of the checkpoint, replayed from `changerelay.automation_workflow_log`
    /// (seeded from the source's `automation_workflows` on the very first start), and the
    /// executions that completed within the rate-limit window from the state database, where
    /// ChangeRelay writes them: the source's own connection serves unless `separateStateURL`
    /// names another database.
    static func load(sourceURL: String, separateStateURL: String?, slot: String, window: Duration,
                     logger: Logger) throws -> AutomationCache {
        let lookUp = CompletionLookUp(stateURL: separateStateURL ?? sourceURL, window: window)
        let cache = AutomationCache(rateLimitWindow: window, bound: .init(capacity: completionCapacity, lookUp: lookUp.latest))
        let source = try PostgresConnection(url: sourceURL)
        let state = if let separateStateURL { try PostgresConnection(url: separateStateURL) } else { source }
        try RequiredMigration.automationWorkflowLog.require(neededBy: "automations", on: state)
        try seedIfEmpty(state, from: source, logger: logger)
        let log = try state.execute("""
            SELECT operation, workflow_id, user_id, trigger_type, is_active, status, trigger_config, config_unchanged
            FROM changerelay.automation_workflow_log
            ORDER BY commit_lsn, change_index, id
            """)
        for row in log.rows {
            switch row[0] {
            case "upsert":
                guard let id = row[1] else { continue }
                var workflow = Workflow(id: id, userID: row[2], triggerType: row[3], isActive: row[4], status: row[5],
                                        triggerConfig: row[6])
                if row[7] == "t", let known = cache.workflow(id: id) { workflow.conditions = known.conditions }
                cache.upsert(workflow)
            case "delete":
                if let id = row[1] { cache.removeWorkflow(id: id) }
            case "truncate":
                cache.removeEveryWorkflow()
            default:
                continue
            }
        }
        let workflows = cache.allWorkflows()
        var malformed = 0
        for workflow in workflows where workflow.isLive {
            guard case .failure(let problem) = workflow.conditions else { continue }
            malformed += 1
            logger.warning("workflow cannot fire: its configuration is malformed; it is skipped until it is fixed",
                           metadata: ["workflow": "\(workflow.id)", "reason": "\(problem)"])
        }
        // The stream starts again after the checkpoint, whose transactions committed before it
        // was written: from the window back from then, the completions are in memory; a change
        // from before the write looks further back, and the cache asks the database for it
        // (`completionsLoaded(since:)`): the few changes of the last batch in the usual restart.
        let since = try state.query("""
            SELECT (extract(epoch FROM least(now(), coalesce(
                (SELECT updated_at FROM changerelay.checkpoints WHERE slot_name = $1), now()))) * 1000000)::bigint::text AS at
            """, [slot]).value("at")
            .flatMap { Int64($0) }.map { PostgresTimestamp(unixMicroseconds: $0 - window.wholeMicroseconds) }
        let completions = try state.query("""
            SELECT trigger_data->>'job_id', workflow_id::text, trigger_data->>'new_status',
                   (extract(epoch FROM completed_at) * 1000000)::bigint::text
            FROM public.automation_execution_logs
            WHERE status = 'completed' AND \(Self.representable) AND completed_at > to_timestamp($1::bigint / 1e6)
            """, [String(since?.unixMicroseconds ?? 0)])
        for row in completions.rows {
            guard let job = row[0], let workflow = row[1], let status = row[2], let micros = row[3].flatMap({ Int64($0) }) else {
                continue
            }
            cache.recordCompletion(.init(jobID: job, workflowID: workflow, status: status), at: PostgresTimestamp(unixMicroseconds: micros))
        }
        if let since { cache.completionsLoaded(since: since) }
        // What was loaded is the starting point, not a batch to undo.
        cache.batchEnded(committed: true)
        logger.info("automation cache loaded", metadata: [
            "workflows": "\(workflows.count)", "log_entries": "\(log.rows.count)", "malformed": "\(malformed)", "recent_completions": "\(completions.rows.count)",
        ])
        return cache
    }

    /// The first start has no log: today's table is the starting point. It is as of now,
    /// not of the slot's position, so job changes already in the slot when ChangeRelay first
    /// starts see the workflows of now; from then on the log keeps the cache exact.
    private static func seedIfEmpty(_ state: PostgresConnection, from source: PostgresConnection, logger: Logger) throws {
        let seeded = try state.execute("SELECT EXISTS (SELECT FROM changerelay.automation_workflow_log) AS seeded").value("seeded")
        guard seeded != "t" else { return }
        let workflows = try source.execute("""
            SELECT id::text, user_id::text, trigger_type, is_active, status, trigger_config::text
            FROM public.automation_workflows ORDER BY id
            """)
        try state.execute("BEGIN")
        do {
            try state.execute("""
                INSERT INTO changerelay.automation_workflow_log (commit_lsn, change_index, operation)
                VALUES ('0/0', -1, 'baseline')
                """)
            for (index, row) in workflows.rows.enumerated() {
                try state.query("""
                    INSERT INTO changerelay.automation_workflow_log
                        (commit_lsn, change_index, operation, workflow_id, user_id, trigger_type, is_active, status, trigger_config)
                    VALUES ('0/0', $1::int, 'upsert', $2, $3, $4, $5, $6, $7)
                    """, ["\(index)", row[0], row[1], row[2], row[3], row[4], row[5]])
            }
            try state.execute("COMMIT")
        } catch {
            _ = try? state.execute("ROLLBACK")
            throw error
        }
        logger.info("automation workflow log seeded from automation_workflows (first start)", metadata: [
            "workflows": "\(workflows.rows.count)",
        ])
    }
}

/// Where the automation cache finds a completion it evicted: the state database, where the
/// dispatcher recorded it (`completed_at`), as the loader reads completions at start. The
/// connection is made on first use, and again after a failure.
final class CompletionLookUp: Sendable {
    private let stateURL: String
    private let window: Duration
    private let connection = Mutex<PostgresConnection?>(nil)

    init(stateURL: String, window: Duration) {
        self.stateURL = stateURL
        self.window = window
    }

    /// The latest completion of the key at or before `time` and within the window. The
    /// workflow's runs are found through the seed's rate-limit index (workflow_id, created_at)
    /// by its first column only: a run that completed within the window may have been created
    /// long before it, so no bound on created_at is safe, and every run of the workflow is
    /// read. Only keys a Bloom filter may hold get here (once in 40 000 checks in the benchmark).
    @Sendable func latest(_ key: AutomationCache.CompletionKey, before time: PostgresTimestamp) throws -> PostgresTimestamp? {
        try connection.withLock { connection in
            do {
                let db = try connection ?? PostgresConnection(url: stateURL)
                connection = db
                let micros = try db.query(prepared: "changerelay_evicted_completion", """
                    SELECT max(c.at)::text AS completed
                    FROM (SELECT (extract(epoch FROM completed_at) * 1000000)::bigint AS at
                          FROM public.automation_execution_logs
                          WHERE workflow_id = $1::uuid AND status = 'completed' AND \(AutomationCacheLoader.representable)
                            AND trigger_data->>'job_id' = $2 AND trigger_data->>'new_status' = $3) c
                    WHERE c.at <= $4::bigint AND c.at > $4::bigint - $5::bigint
                    """, [key.workflowID, key.jobID, key.status, String(time.unixMicroseconds),
                          String(window.wholeMicroseconds)]).value("completed")
                return micros.flatMap { Int64($0) }.map { PostgresTimestamp(unixMicroseconds: $0) }
            } catch {
                connection = nil
                throw error
            }
        }
    }
}
