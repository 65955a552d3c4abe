-- Undoes 022: the committer's connections can no longer prepare the insert that finds
-- logged events through webhook_log_ids' primary key; binaries from before 022 use 021's
-- prepare_webhook_logs_insert(), which stays.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS changerelay.prepare_webhook_log_rows();
