-- 030: the automations' rate limit, as of the checkpoint.
--
-- The rate limit counts a completion for the job changes that follow it in commit order,
-- as the seed's trigger saw only committed rows. A completion's completed_at is when its
-- recording transaction began, which can be before a job change that commits first; the
-- live service still plans that change without it, since the stream brings the completion
-- later. After a restart the cache used to load every recent completion from
-- automation_execution_logs by completed_at, including those committed after the
-- checkpoint, and a job change read again skipped a run it had planned. Each completion
-- the handler follows is appended here in the checkpoint transaction instead, with its
-- commit position, and a start loads exactly those the stream will not bring again.
--
-- The handler writes a baseline row (no job; completed_at = the commit time of the first
-- change it plans) with the checkpoint of its first batch, so only an instance that streams
-- marks where the log begins: completions before it are still read from
-- automation_execution_logs, and until it exists the table answers for every time.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE TABLE IF NOT EXISTS changerelay.automation_completion_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commit_lsn   pg_lsn      NOT NULL,
    job_id       text,
    workflow_id  text,
    new_status   text,
    completed_at timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((job_id IS NULL) = (workflow_id IS NULL) AND (job_id IS NULL) = (new_status IS NULL))
);
CREATE INDEX IF NOT EXISTS automation_completion_log_key
    ON changerelay.automation_completion_log (workflow_id, job_id, new_status, completed_at);
CREATE INDEX IF NOT EXISTS automation_completion_log_completed_at
    ON changerelay.automation_completion_log (completed_at);
