-- Undoes 016: backfill requests and their progress. Stop every `changerelay run` first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS changerelay.apply_staged_backfill_progress();
DROP TABLE IF EXISTS changerelay.backfill_progress_staged;
DROP TABLE IF EXISTS changerelay.backfills;
