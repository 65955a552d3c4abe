-- Undoes 035: binaries from before it queue webhook deliveries through 025's statement. The
-- deliveries queued since name their log rows' ids in their reports, as 025's do, so
-- nothing needs mapping.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS changerelay.prepare_numbered_webhook_logs();
