-- 011: the automation handler's workflow cache, as of the checkpoint.
--
-- The handler learns workflow changes from the stream. After a crash the stream sends
-- again every transaction past the checkpoint, so those job changes must be planned
-- against the workflows that were current at THEIR commit, not against the table as it
-- is when the service restarts. Each workflow change the handler follows is appended
-- here in the checkpoint transaction; at start the cache is this log replayed, which is
-- exactly the cache as of the checkpoint. A first start, with an empty log, seeds it from
-- automation_workflows (operation 'baseline' marks that the seed happened).
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE TABLE IF NOT EXISTS changerelay.automation_workflow_log (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commit_lsn       pg_lsn      NOT NULL,
    change_index     int         NOT NULL,
    operation        text        NOT NULL CHECK (operation IN ('baseline', 'upsert', 'delete', 'truncate')),
    workflow_id      text,
    user_id          text,
    trigger_type     text,
    is_active        text,
    status           text,
    trigger_config   text,
    -- An UPDATE that left a TOASTed trigger_config alone does not carry it: keep the last one.
    config_unchanged boolean     NOT NULL DEFAULT false,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS automation_workflow_log_order ON changerelay.automation_workflow_log (commit_lsn, change_index, id);
