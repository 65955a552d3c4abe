-- Undoes 013: the single index over every unfinished delivery, the status index and the
-- in-flight index of routed rows come back. The set-based
-- insert_staged_webhook_logs() stays: it does what 012's did, over the same tables.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE INDEX IF NOT EXISTS deliveries_due ON changerelay.deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed');
CREATE INDEX IF NOT EXISTS deliveries_status ON changerelay.deliveries (status, id);
CREATE INDEX IF NOT EXISTS deliveries_endpoint_in_flight ON changerelay.deliveries (endpoint)
    WHERE status = 'sending' AND endpoint IS NOT NULL;
DROP INDEX IF EXISTS changerelay.deliveries_in_flight;
DROP INDEX IF EXISTS changerelay.deliveries_endpoint_due;
DROP INDEX IF EXISTS changerelay.deliveries_unrouted_due;
