import Core
import Decoding
import Logging
import PlannedEffects

/// What the seed's job-status trigger did: a job whose status changed fires every live
/// workflow of its user whose conditions name the new status. Each firing is an
/// `automation_execution_logs` row (`processing`) written in the checkpoint transaction,
/// and a call to the `automation-executor` edge function that keeps that row current
/// (`completed`, or `failed` after the last try). An execution for the same job,
/// workflow and status that completed within the rate-limit window makes the row
/// `skipped` instead, with no call.
///
/// Workflow changes and completions arrive through the stream and update the cache
/// before the job changes that follow them in commit order are planned.
public struct AutomationHandler: Handler {
    public struct Settings: Sendable, Hashable {
        /// `{functions.base_url}/automation-executor`.
        public var url: String
        public var maxAttempts: Int
        public var retryBase: Duration
        public var retryCap: Duration
        /// Whether each completion the stream brings is appended to `completionLog` with the
        /// checkpoint: where the state database is the source, the rate limit is rebuilt from
        /// it after a restart. Elsewhere the dispatcher's completions never reach the stream,
        /// and the loader reads them from the state database's table instead.
        public var logsCompletions: Bool

        public init(baseURL: String, maxAttempts: Int = 5, retryBase: Duration = .seconds(1), retryCap: Duration = .seconds(60),
                    logsCompletions: Bool = true) {
            url = (baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL) + "/automation-executor"
            self.maxAttempts = maxAttempts
            self.retryBase = retryBase
            self.retryCap = retryCap
            self.logsCompletions = logsCompletions
        }
    }

    public static let jobs = "public.jobs"
    public static let workflowsTable = "public.automation_workflows"
    public static let executionLogs = "public.automation_execution_logs"
    public static let logTable = TableName(schema: "public", name: "automation_execution_logs")
    public static let workflowLog = TableName(schema: "changerelay", name: "automation_workflow_log")
    public static let completionLog = TableName(schema: "changerelay", name: "automation_completion_log")

    public let name = "automations"
    public let tables: Set<String>
    public let reports: Set<DeliveryLog>
    public let settings: Settings
    public let cache: AutomationCache
    public let isFollowingOnly: Bool
    private let logger: Logger
    private let missingColumns: MissingColumns

    /// `followingOnly`: the automations are off, and only their logs follow the stream
    /// (workflow changes, and completions where `settings.logsCompletions`): no job change is
    /// read and nothing is planned or sent, but turning them on again starts from the
    /// workflows and completions of the checkpoint, not from those of the last run before
    /// they went off. Its deliveries already queued are not its to send.
    public init(_ settings: Settings, cache: AutomationCache, logger: Logger, followingOnly: Bool = false) {
        self.settings = settings
        self.cache = cache
        self.logger = logger
        isFollowingOnly = followingOnly
        tables = followingOnly ? [Self.workflowsTable, Self.executionLogs] : [Self.jobs, Self.workflowsTable, Self.executionLogs]
        reports = followingOnly ? [] : [.automationExecution]
        missingColumns = MissingColumns(handler: "automations", logger: logger)
    }

    public func batchEnded(committed: Bool) { cache.batchEnded(committed: committed) }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        // A backfilled row is a state, not a transition: no run is due, and the caches are current already.
        guard change.operation != .read else { return .none }
        var effects = Effects()
        if settings.logsCompletions, cache.planBaseline() {
            // The completion log begins at the first change this streaming handler reads: every
            // completion the stream brings from here on is logged, and those committed before
            // completed before this commit, where the table holds them.
            effects.rows.append(PlannedRow(table: Self.completionLog, [
                "commit_lsn": "\(transaction.commitLSN)", "job_id": nil, "workflow_id": nil, "new_status": nil,
                "completed_at": transaction.commitTime.postgresText,
            ]))
        }
        switch change.schema + "." + change.table {
        case Self.workflowsTable:
            effects.rows += try follow(workflowChange: change, at: index, lsn: transaction.commitLSN)
        case Self.executionLogs:
            guard let completion = try follow(executionChange: change, at: transaction.commitTime),
                  settings.logsCompletions else { break }
            effects.rows.append(PlannedRow(table: Self.completionLog, [
                "commit_lsn": "\(transaction.commitLSN)", "job_id": completion.key.jobID,
                "workflow_id": completion.key.workflowID, "new_status": completion.key.status,
                "completed_at": completion.time.postgresText,
            ]))
        case Self.jobs where !isFollowingOnly:
            let planned = try plan(jobChange: change, at: index, in: transaction)
            effects.rows += planned.rows
            effects.deliveries += planned.deliveries
        default:
            break
        }
        return effects
    }

    // MARK: - The cache, from the stream

    /// Updates the cache and returns what `automation_workflow_log` records of the change:
    /// written with the checkpoint, it is what the cache is rebuilt from after a restart.
    private func follow(workflowChange change: Change, at index: Int, lsn: LSN) throws(HandlerError) -> [PlannedRow] {
        func logRow(_ operation: String, id: String? = nil, _ row: Fields? = nil, configUnchanged: Bool = false) -> PlannedRow {
            PlannedRow(table: Self.workflowLog, [
                "commit_lsn": "\(lsn)", "change_index": "\(index)", "operation": operation, "workflow_id": id,
                "user_id": row?["user_id"], "trigger_type": row?["trigger_type"], "is_active": row?["is_active"],
                "status": row?["status"], "trigger_config": configUnchanged ? nil : row?["trigger_config"],
                "config_unchanged": configUnchanged ? "t" : "f",
            ])
        }
        switch change.operation {
        case .insert, .update:
            // A column the workflow is decided by, renamed or dropped, is said and the change
            // passed over: read as NULL, the workflow stopped firing without a word.
            guard let new = change.new,
                  missingColumns.check(new, needs: ["id", "user_id", "trigger_type", "is_active", "status", "trigger_config"],
                                       change: change).isEmpty else { return [] }
            let row = try Fields(new, handler: name, change: change)
            var rows: [PlannedRow] = []
            guard let id = row["id"] else { throw failure(change, "a workflow without an id") }
            // A large trigger_config that this UPDATE left alone arrives as "unchanged": keep
            // what is known of the row, under its old id when the UPDATE changed that too.
            var known = cache.workflow(id: id)
            if change.operation == .update, let old = change.old, let oldID = try Fields(old, handler: name, change: change)["id"],
               !Fields.sameText(oldID, id) {
                known = cache.workflow(id: oldID)
                cache.removeWorkflow(id: oldID)
                rows.append(logRow("delete", id: oldID))
            }
            var workflow = Workflow(id: id, userID: row["user_id"], triggerType: row["trigger_type"],
                                    isActive: row["is_active"], status: row["status"], triggerConfig: row["trigger_config"])
            var configUnchanged = row.isUnchanged("trigger_config")
            var loggedRow = row
            if configUnchanged, let known {
                workflow.conditions = known.conditions
                // The log must rebuild this without the old id's entry: it keeps the conditions
                // themselves (a malformed config cannot fire either way; its text is lost with the old id).
                if known.id != id {
                    if case .success(let conditions) = known.conditions {
                        loggedRow = row.setting("trigger_config", to: Workflow.triggerConfig(conditions: conditions))
                    }
                    configUnchanged = false
                }
            }
            if workflow.isLive, case .failure(let problem) = workflow.conditions {
                logger.warning("workflow cannot fire: its configuration is malformed; it is skipped until it is fixed", metadata: [
                    "workflow": "\(id)", "lsn": "\(lsn)", "reason": "\(problem)",
                ])
            }
            cache.upsert(workflow)
            rows.append(logRow("upsert", id: id, loggedRow, configUnchanged: configUnchanged))
            return rows
        case .delete:
            guard let old = change.old, let id = try Fields(old, handler: name, change: change)["id"] else { return [] }
            cache.removeWorkflow(id: id)
            return [logRow("delete", id: id)]
        case .truncate:
            cache.removeEveryWorkflow()
            return [logRow("truncate")]
        case .read:
            return []
        }
    }

    /// A completion counts from its `completed_at`, as the loader and the database look-up
    /// read it after a restart, so a run decides the same whether it was live or replayed;
    /// never later than the commit that made it visible (a clock ahead of the server's).
    /// It limits only the job changes after it in commit order, as a restart's loader reads
    /// it (`completionLog`, kept with its commit position): a `completed_at` can precede a
    /// job change that commits first.
    private func follow(executionChange change: Change, at commitTime: PostgresTimestamp) throws(HandlerError)
        -> (key: AutomationCache.CompletionKey, time: PostgresTimestamp)?
    {
        guard change.operation == .insert || change.operation == .update, let new = change.new else { return nil }
        let row = try Fields(change.old.map(new.fillingUnchangedToast) ?? new, handler: name, change: change)
        guard row["status"] == "completed", let workflowID = row["workflow_id"],
              let data = row["trigger_data"].flatMap({ try? JSONParser.parse($0, deepValues: .emptied) }),
              case .string(let jobID)? = data["job_id"], case .string(let status)? = data["new_status"] else { return nil }
        let completed = row["completed_at"].flatMap(PostgresTimestamp.init(timestamptzText:)).map { min($0, commitTime) }
        let key = AutomationCache.CompletionKey(jobID: jobID, workflowID: workflowID, status: status)
        cache.recordCompletion(key, at: completed ?? commitTime)
        return (key, completed ?? commitTime)
    }

    // MARK: - Job changes

    private func plan(jobChange change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        guard change.operation == .update, let new = change.new,
              missingColumns.check(new, needs: ["id", "status", "user_id"], change: change).isEmpty else { return .none }
        guard let oldRow = change.old, oldRow.columns.count == new.columns.count else {
            throw failure(change, "an UPDATE without the whole old row: jobs needs REPLICA IDENTITY FULL, on each partition too if it is partitioned (changerelay doctor names them); "
                           + "updates already in the slot stay without it: to get past them, run once with automations.enabled = false")
        }
        let filled = new.fillingUnchangedToast(from: oldRow)
        let row = try Fields(filled, handler: name, change: change)
        let old = try Fields(oldRow, handler: name, change: change)
        guard let newStatus = row["status"], !old.holdsTheSame("status", as: row) else { return .none }
        guard let jobID = row["id"] else { throw failure(change, "a job without an id") }
        guard let userID = row["user_id"] else {
            logger.warning("job status change skipped: the job has no user_id, so no workflow can match", metadata: [
                "job": "\(jobID)", "lsn": "\(transaction.commitLSN)", "new_status": "\(newStatus)",
            ])
            return .none
        }
        let firing = cache.workflows(ofUser: userID).filter { $0.fires(forStatus: newStatus) }
        guard !firing.isEmpty else { return .none }

        var jobJSON = JSONWriter(capacity: 256, storableAsJSONB: true)
        do { try ChangeRenderer.appendRow(filled, of: change, to: &jobJSON) } catch {
            throw failure(change, error.description)
        }
        let triggerData = Self.triggerData(jobID: jobID, newStatus: newStatus, oldStatus: old["status"],
                                           job: jobJSON.bytes, userID: userID)
        var effects = Effects()
        for workflow in firing {
            let executionID = StableID.forChange(name, commitLSN: transaction.commitLSN, index: index,
                                                 purpose: "execution:" + workflow.id)
            let key = AutomationCache.CompletionKey(jobID: jobID, workflowID: workflow.id, status: newStatus)
            let recent: PostgresTimestamp?
            do { recent = try cache.recentCompletion(key, before: transaction.commitTime) } catch {
                throw failure(change, "the rate limit could not look up an evicted completion: \(error)")
            }
            if let completed = recent {
                effects.rows.append(logRow(executionID, workflow: workflow.id, status: "skipped", triggerData: triggerData,
                                           error: "rate limited: an execution for this job, workflow and status completed at "
                                               + completed.postgresText + ", within the rate-limit window"))
                continue
            }
            effects.rows.append(logRow(executionID, workflow: workflow.id, status: "processing", triggerData: triggerData,
                                       error: nil))
            effects.deliveries.append(PlannedDelivery(
                target: "automation-executor:" + workflow.id, url: settings.url,
                headers: [.init("Content-Type", "application/json")], auth: "service_key",
                body: Self.body(workflowID: workflow.id, executionID: executionID, jobID: jobID, userID: userID,
                                newStatus: newStatus, oldStatus: old["status"]),
                orderingKey: Self.jobs + ":" + jobID,
                retryPolicy: .exponential(base: settings.retryBase, cap: settings.retryCap,
                                          maxAttempts: settings.maxAttempts, jitter: .full),
                report: .automationExecution(id: executionID)))
        }
        return effects
    }

    private func logRow(_ id: String, workflow: String, status: String, triggerData: String, error: String?) -> PlannedRow {
        PlannedRow(table: Self.logTable, [
            "id": id, "workflow_id": workflow, "trigger_type": Workflow.triggerType, "status": status,
            "trigger_data": triggerData, "error_message": error,
        ])
    }

    /// The seed's `trigger_data`: job_id, new_status, old_status, the whole new job row, userId.
    static func triggerData(jobID: String, newStatus: String, oldStatus: String?, job: [UInt8], userID: String) -> String {
        var writer = JSONWriter(capacity: job.count + 160)
        writer.beginObject()
        writer.key("job_id")
        writer.string(jobID)
        writer.key("new_status")
        writer.string(newStatus)
        writer.key("old_status")
        if let oldStatus { writer.string(oldStatus) } else { writer.null() }
        writer.key("job")
        writer.embedded(job)
        writer.key("userId")
        writer.string(userID)
        writer.endObject()
        return writer.string
    }

    /// The seed's executor body.
    static func body(workflowID: String, executionID: String, jobID: String, userID: String,
                     newStatus: String, oldStatus: String?) -> String {
        var writer = JSONWriter(capacity: 320)
        writer.beginObject()
        writer.key("workflowId")
        writer.string(workflowID)
        writer.key("executionId")
        writer.string(executionID)
        writer.key("context")
        writer.beginObject()
        for key in ["job_id", "jobId"] {
            writer.key(key)
            writer.string(jobID)
        }
        writer.key("userId")
        writer.string(userID)
        writer.key("triggerType")
        writer.string(Workflow.triggerType)
        writer.key("new_status")
        writer.string(newStatus)
        writer.key("old_status")
        if let oldStatus { writer.string(oldStatus) } else { writer.null() }
        writer.endObject()
        writer.endObject()
        return writer.string
    }

    private func failure(_ change: Change, _ reason: String) -> HandlerError {
        HandlerError(handler: name, table: change.schema + "." + change.table, key: change.loggedKey, reason: reason)
    }
}
