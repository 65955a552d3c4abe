-- Undoes 021: the committer's connections can no longer prepare the insert of their staged
-- webhook_logs rows; binaries from before 021 call insert_staged_webhook_logs(), which stays.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS changerelay.prepare_webhook_logs_insert();
