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
    /// executions that completed within the rate-limit window (`Completions`). The source's
    /// own connection serves as the state database unless `separateStateURL` names another.
    /// `logsCompletions`: the handler keeps the completion log (`AutomationHandler.Settings`).
    static func load(sourceURL: String, separateStateURL: String?, logsCompletions: Bool, slot: String, window: Duration,
                     logger: Logger) throws -> AutomationCache {
        let source = try PostgresConnection(url: sourceURL)
        let state = if let separateStateURL { try PostgresConnection(url: separateStateURL) } else { source }
        try RequiredMigration.automationWorkflowLog.require(neededBy: "automations", on: state)
        let completions = try Completions(on: state, logged: logsCompletions, window: window)
        let lookUp = CompletionLookUp(stateURL: separateStateURL ?? sourceURL, completions: completions)
        let cache = AutomationCache(rateLimitWindow: window, bound: .init(capacity: completionCapacity, lookUp: lookUp.latest))
        if logsCompletions, completions.baseline == nil { cache.completionLogNeedsBaseline() }
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
        let loaded = try completions.all(after: since ?? PostgresTimestamp(unixMicroseconds: 0), on: state)
        for completion in loaded { cache.recordCompletion(completion.key, at: completion.time) }
        if let since { cache.completionsLoaded(since: since) }
        // What was loaded is the starting point, not a batch to undo.
        cache.batchEnded(committed: true)
        logger.info("automation cache loaded", metadata: [
            "workflows": "\(workflows.count)", "log_entries": "\(log.rows.count)", "malformed": "\(malformed)", "recent_completions": "\(loaded.count)",
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

/// Where the automation cache finds a completion it evicted: the state database, as the
/// loader reads completions at start (`Completions`). The connection is made on first use,
/// and again after a failure.
final class CompletionLookUp: Sendable {
    private let stateURL: String
    private let completions: Completions
    private let connection = Mutex<PostgresConnection?>(nil)

    init(stateURL: String, completions: Completions) {
        self.stateURL = stateURL
        self.completions = completions
    }

    /// The latest completion of the key at or before `time` and within the window. Only keys
    /// a Bloom filter may hold get here (once in 40 000 checks in the benchmark).
    @Sendable func latest(_ key: AutomationCache.CompletionKey, before time: PostgresTimestamp) throws -> PostgresTimestamp? {
        try connection.withLock { connection in
            do {
                let db = try connection ?? PostgresConnection(url: stateURL)
                connection = db
                return try completions.latest(key, before: time, on: db)
            } catch {
                connection = nil
                throw error
            }
        }
    }
}

/// Where the completions that limit a job change are read from after a restart: those
/// committed before it, as the stream brought them to the live service.
///
/// Where the state database is the source, the handler appends each completion the stream
/// brings to `changerelay.automation_completion_log` with the checkpoint, so the log holds
/// exactly the completions committed up to the checkpoint: one committed after it comes
/// again through the stream, after the job changes that committed before it. Reading
/// `automation_execution_logs` by `completed_at` instead also found those, and a job change
/// read again after a crash skipped the run it had planned the first time. Completions from
/// before the log's baseline row are read from that table, as before: the handler writes it
/// with the first change it plans (`AutomationCache.planBaseline`), at that change's commit
/// time, so until then the table answers for everything.
///
/// With a separate state database the dispatcher's completions are written where the
/// stream cannot see them: the table there is all there is.
struct Completions: Sendable {
    /// The handler keeps the completion log.
    let logged: Bool
    /// Where the log begins: completions before it are only in `automation_execution_logs`.
    /// Nil without the log, or before the handler first planned a change.
    let baseline: PostgresTimestamp?
    let window: Duration

    /// Reads the log's baseline, and forgets the log's completions that no job change still
    /// to come can be limited by: those a window (and a minute, for commit times a little
    /// out of order) older than the newest one the stream brought, since every job change
    /// still to come commits after it.
    init(on state: PostgresConnection, logged: Bool, window: Duration) throws {
        self.window = window
        self.logged = logged
        guard logged else {
            baseline = nil
            return
        }
        try RequiredMigration.automationCompletionLog.require(neededBy: "automations", on: state)
        try state.query("""
            DELETE FROM changerelay.automation_completion_log
            WHERE job_id IS NOT NULL AND completed_at < (SELECT max(completed_at) FROM changerelay.automation_completion_log
                                                         WHERE job_id IS NOT NULL) - $1::bigint * interval '1 microsecond' - interval '1 minute'
            """, [String(window.wholeMicroseconds)])
        baseline = try state.execute("""
            SELECT (extract(epoch FROM min(completed_at)) * 1000000)::bigint::text AS at
            FROM changerelay.automation_completion_log WHERE job_id IS NULL
            """).value("at").flatMap { Int64($0) }.map { PostgresTimestamp(unixMicroseconds: $0) }
    }

    /// Every completion after `time`.
    func all(after time: PostgresTimestamp, on db: PostgresConnection) throws(PostgresError)
        -> [(key: AutomationCache.CompletionKey, time: PostgresTimestamp)]
    {
        let rows = try db.query(sources(where: "completed_at > \(Self.instant("$1"))", table: true),
                                [String(time.unixMicroseconds)]).rows
        return rows.compactMap { row in
            guard let job = row[0], let workflow = row[1], let status = row[2], let micros = row[3].flatMap({ Int64($0) }) else {
                return nil
            }
            return (.init(jobID: job, workflowID: workflow, status: status), PostgresTimestamp(unixMicroseconds: micros))
        }
    }

    /// The latest completion of `key` at or before `time` and within the window. The table is
    /// read only when the window reaches back before the baseline. There the workflow's runs
    /// are found through the seed's rate-limit index (workflow_id, created_at) by its first
    /// column only: a run that completed within the window may have been created long before
    /// it, so no bound on created_at is safe, and every run of the workflow is read.
    func latest(_ key: AutomationCache.CompletionKey, before time: PostgresTimestamp,
                on db: PostgresConnection) throws(PostgresError) -> PostgresTimestamp? {
        let horizon = time.unixMicroseconds - window.wholeMicroseconds
        let table = !logged || baseline.map { horizon < $0.unixMicroseconds } ?? true
        let matching = """
            job_id = $1::text AND workflow_id = $2::text AND new_status = $3::text
            AND completed_at > \(Self.instant("$4")) AND completed_at <= \(Self.instant("$5"))
            """
        let statement = sources(where: matching, table: table, tableIndexed: " AND workflow_id = $2::text::uuid")
        let micros = try db.query(prepared: "changerelay_evicted_completion_\(logged)_\(table)", """
            SELECT max(c.at::bigint)::text AS completed FROM (\(statement)) c (j, w, s, at)
            """, [key.jobID, key.workflowID, key.status, String(horizon), String(time.unixMicroseconds)]).value("completed")
        return micros.flatMap { Int64($0) }.map { PostgresTimestamp(unixMicroseconds: $0) }
    }

    /// Job, workflow, status and completion time (microseconds since 1970) of the completions
    /// that `condition` selects, from the log (when kept) and, when `table`, from the table
    /// before the baseline; a condition names `job_id`, `workflow_id`, `new_status` and
    /// `completed_at`; `tableIndexed` is the same condition as the table's own columns can
    /// answer it through an index. `table` is false only with the log, so a source is read.
    private func sources(where condition: String, table: Bool, tableIndexed: String = "") -> String {
        var parts: [String] = []
        if logged {
            parts.append("""
                SELECT job_id, workflow_id, new_status, (extract(epoch FROM completed_at) * 1000000)::bigint::text
                FROM changerelay.automation_completion_log WHERE job_id IS NOT NULL AND \(condition)
                """)
        }
        if table {
            let before = logged ? baseline.map { " AND completed_at < \(Self.instant(String($0.unixMicroseconds)))" } ?? "" : ""
            parts.append("""
                SELECT job_id, workflow_id, new_status, (extract(epoch FROM completed_at) * 1000000)::bigint::text
                FROM (SELECT trigger_data->>'job_id' AS job_id, workflow_id::text AS workflow_id,
                             trigger_data->>'new_status' AS new_status, completed_at
                      FROM public.automation_execution_logs
                      WHERE status = 'completed' AND \(AutomationCacheLoader.representable)\(before)\(tableIndexed)) e
                WHERE \(condition)
                """)
        }
        return parts.joined(separator: "\nUNION ALL\n")
    }

    /// The instant `micros` microseconds after 1970, exactly (`to_timestamp` goes through a
    /// double), as an expression an index on a timestamptz can use.
    private static func instant(_ micros: String) -> String {
        "(timestamptz 'epoch' + \(micros)::bigint * interval '1 microsecond')"
    }
}
