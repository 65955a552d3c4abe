import Core
import Replication

/// A migration whose objects running code names. A database without it is refused at
/// start, naming the file to apply, rather than failing at the first statement that
/// names them, mid-stream and far from the cause.
public enum RequiredMigration: Sendable, CaseIterable {
    /// 008's drift table and the new schema's views, written and read by the dual-write sync.
    case dualWrite
    /// 009's `deliveries.requeued_at_attempt`, read by every claim and set by `deliveries retry`.
    case deliveryRequeue
    /// 011's workflow log, the automation cache as of the checkpoint.
    case automationWorkflowLog
    /// 012's `deliveries.endpoint`, written with every planned delivery and read by every
    /// claim, and `webhook_log_ids`, where the tries of deliveries queued before 025 find
    /// their `webhook_logs` rows.
    case webhooks
    /// 035's numbering of `webhook_logs` rows ahead and the staging of them, which the batch
    /// committer sets up on each connection.
    case webhookLogNumbering
    /// 017's claim indexes (keyed on `completed_at`, which replaced 013's): without them
    /// every claim walks every due row.
    case claimIndexes
    /// 014's buffer state and the copy of open buffers' messages.
    case messageBuffering
    /// 015's `changerelay.schedule_runs`: every scheduled run (built-in or configured) is
    /// claimed and recorded there.
    case schedules
    /// 016's `changerelay.backfills`, whose progress every checkpoint transaction that
    /// handled a chunk applies.
    case backfills
    /// 019's temporary staging of the dual-write sync's changes, message buffering's steps
    /// and backfills' progress, which the batch committer creates on each connection.
    case sessionStaging
    /// 024's staging tables that keep their rows at commit, which the batch committer
    /// creates on each connection and empties after each batch's statements.
    case keptStaging
    /// 026's kept `buffered_messages.buffer_id` marks, applied by the hourly built-in job.
    case bufferMarks
    /// 027's release of a finished buffer's id that a new buffer takes, run by the committer.
    case bufferIDsReused
    /// 029's `backfills.high_key`, which the backfill runner reads and writes.
    case backfillHighKey
    /// 037's `backfills.slot_name`: a request names the slot whose service works on it.
    case backfillSlots
    /// 030's completion log, the automations' rate limit as of the checkpoint.
    case automationCompletionLog
    /// 031's former ordering key, which the claim and the committer's rows name.
    case formerOrderingKeys
    /// 032's checkpoint writer, which the committer writes and replay reads.
    case checkpointWriters
    /// 033's claiming process, which every claim writes and a connecting dispatcher reads.
    case claimingProcesses

    var file: String {
        switch self {
        case .dualWrite: "008_dual_write.sql"
        case .deliveryRequeue: "009_delivery_requeue.sql"
        case .automationWorkflowLog: "011_automation_workflow_log.sql"
        case .webhooks: "012_webhooks.sql"
        case .claimIndexes: "017_hot_claims.sql"
        case .webhookLogNumbering: "035_webhook_log_ids_reserved.sql"
        case .messageBuffering: "014_message_buffering.sql"
        case .schedules: "015_schedules.sql"
        case .backfills: "016_backfills.sql"
        case .sessionStaging: "019_session_staging.sql"
        case .keptStaging: "024_staging_emptied_by_committer.sql"
        case .bufferMarks: "026_buffer_marks_kept.sql"
        case .bufferIDsReused: "027_buffer_ids_reused.sql"
        case .backfillHighKey: "029_backfill_high_key.sql"
        case .backfillSlots: "037_backfill_slot.sql"
        case .automationCompletionLog: "030_automation_completion_log.sql"
        case .formerOrderingKeys: "031_ordering_across_key_changes.sql"
        case .checkpointWriters: "032_checkpoint_writers.sql"
        case .claimingProcesses: "033_claiming_processes.sql"
        }
    }

    /// A boolean expression, true once the migration has been applied.
    var probe: String {
        switch self {
        case .dualWrite:
            "to_regclass('changerelay.dual_write_drift') IS NOT NULL"
        case .automationWorkflowLog:
            "to_regclass('changerelay.automation_workflow_log') IS NOT NULL"
        case .automationCompletionLog:
            "to_regclass('changerelay.automation_completion_log') IS NOT NULL"
        case .webhooks:
            "to_regclass('changerelay.webhook_log_ids') IS NOT NULL"
        case .claimIndexes:
            "to_regclass('changerelay.deliveries_endpoint_open') IS NOT NULL"
        case .webhookLogNumbering:
            "to_regprocedure('changerelay.prepare_numbered_webhook_logs()') IS NOT NULL"
        case .messageBuffering:
            "to_regclass('changerelay.buffer_messages') IS NOT NULL"
        case .schedules:
            "to_regclass('changerelay.schedule_runs') IS NOT NULL"
        case .backfills:
            "to_regclass('changerelay.backfills') IS NOT NULL"
        case .sessionStaging:
            "to_regprocedure('changerelay.create_backfill_progress_staging()') IS NOT NULL"
        case .keptStaging:
            "to_regprocedure('changerelay.create_backfill_progress_staging_kept()') IS NOT NULL"
        case .bufferMarks:
            "to_regprocedure('changerelay.apply_kept_buffer_marks()') IS NOT NULL"
        case .bufferIDsReused:
            "to_regprocedure('changerelay.release_reused_buffer_ids()') IS NOT NULL"
        case .deliveryRequeue:
            Self.hasColumn("deliveries", "requeued_at_attempt")
        case .backfillHighKey:
            Self.hasColumn("backfills", "high_key")
        case .backfillSlots:
            Self.hasColumn("backfills", "slot_name")
        case .checkpointWriters:
            Self.hasColumn("checkpoints", "written_by")
        case .claimingProcesses:
            Self.hasColumn("deliveries", "claimed_by")
        case .formerOrderingKeys:
            Self.hasColumn("deliveries", "former_ordering_key")
        }
    }

    /// True once `changerelay.table` has `column`: the probe of a migration that adds a
    /// column to a table an earlier one created.
    private static func hasColumn(_ table: String, _ column: String) -> String {
        """
        EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('changerelay.\(table)')
                AND attname = '\(column)' AND NOT attisdropped)
        """
    }

    /// Throws `SetupError.migrationMissing` unless the database has had the migration. The
    /// error also names every other migration the database lacks: an operator who applies
    /// only the one named would otherwise meet the next at the next start, one at a time.
    public func require(neededBy: String, on db: PostgresConnection) throws {
        guard try !isApplied(on: db) else { return }
        let others = Self.allCases.filter { $0 != self }
        // Only to say more: a role that may not read every probe's catalog still gets the refusal.
        let present = (try? db.query("SELECT " + others.map { "(\($0.probe))" }.joined(separator: ", "), []))?.rows.first ?? []
        let missing = zip(others, present).filter { $0.1 != "t" }.map(\.0.file).sorted()
        throw SetupError.migrationMissing(file: file, neededBy: neededBy, alsoMissing: missing)
    }

    public func isApplied(on db: PostgresConnection) throws(PostgresError) -> Bool {
        try db.query("SELECT (\(probe)) AS present", []).value("present") == "t"
    }
}
