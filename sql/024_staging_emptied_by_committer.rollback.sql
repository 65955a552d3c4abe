-- Undoes 024: the committer's connections can no longer create staging tables that keep
-- their rows at commit; binaries from before 024 use 018's and 019's functions, which stay.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS changerelay.create_webhook_logs_staging_kept(), changerelay.create_dual_write_staging_kept(),
    changerelay.create_message_buffer_staging_kept(), changerelay.create_backfill_progress_staging_kept();
