-- 015: scheduled jobs (what pg_cron did) and delivery retention.
--
-- Every instance of `changerelay run` computes the same due times from the same cron
-- expressions, and each due run must happen once across all of them: an instance runs a
-- tick only if its INSERT ... ON CONFLICT DO NOTHING of (schedule, due_at) inserted the row.
-- The row then records the run (start, end, rows affected, error), which is what
-- `schedules list` shows and how a run missed while nothing was up is found at start.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE TABLE IF NOT EXISTS changerelay.schedule_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule    text        NOT NULL,
    -- The minute the run was due (UTC); started_at - due_at is its lateness.
    due_at      timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    -- The statement's command-tag count, when it has one.
    rows        bigint,
    error       text,
    -- Which process ran it (host and pid), for an operator reading the table.
    instance    text        NOT NULL,
    UNIQUE (schedule, due_at)
);

-- Delivery retention deletes succeeded deliveries by age, a few thousand at a time: this
-- index finds the oldest of them without reading the pending, failed and dead ones, or
-- the whole table.
CREATE INDEX IF NOT EXISTS deliveries_succeeded_completed ON changerelay.deliveries (completed_at)
    WHERE status = 'succeeded';
-- `deliveries purge --dead` finds old dead deliveries the same way.
CREATE INDEX IF NOT EXISTS deliveries_dead_updated ON changerelay.deliveries (updated_at)
    WHERE status = 'dead';
