-- Undoes 017: 013's and 015's indexes come back, keyed on status; the constraint and the
-- fillfactor go. Stop every `changerelay run` first: a dispatcher of this version claims
-- through the indexes dropped here.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE INDEX IF NOT EXISTS deliveries_endpoint_due ON changerelay.deliveries (endpoint, next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed') AND endpoint IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_unrouted_due ON changerelay.deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed') AND endpoint IS NULL;
CREATE INDEX IF NOT EXISTS deliveries_ordering ON changerelay.deliveries (ordering_key, id)
    WHERE status IN ('pending', 'sending', 'failed');
CREATE INDEX IF NOT EXISTS deliveries_in_flight ON changerelay.deliveries (endpoint, locked_until)
    WHERE status = 'sending';
CREATE INDEX IF NOT EXISTS deliveries_succeeded_completed ON changerelay.deliveries (completed_at)
    WHERE status = 'succeeded';
CREATE INDEX IF NOT EXISTS deliveries_dead_updated ON changerelay.deliveries (updated_at)
    WHERE status = 'dead';

DROP INDEX IF EXISTS changerelay.deliveries_endpoint_open;
DROP INDEX IF EXISTS changerelay.deliveries_unrouted_open;
DROP INDEX IF EXISTS changerelay.deliveries_ordering_open;
DROP INDEX IF EXISTS changerelay.deliveries_completed;
ALTER TABLE changerelay.deliveries DROP CONSTRAINT IF EXISTS deliveries_completed_when_finished;
ALTER TABLE changerelay.deliveries RESET (fillfactor);
