-- Undoes 013: the single index over every unfinished delivery comes back. The set-based
-- insert_staged_webhook_logs() stays: it does what 012's did, over the same tables.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE INDEX IF NOT EXISTS deliveries_due ON changerelay.deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed');
DROP INDEX IF EXISTS changerelay.deliveries_endpoint_due;
DROP INDEX IF EXISTS changerelay.deliveries_unrouted_due;
