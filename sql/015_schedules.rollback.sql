-- Undoes 015: the record of scheduled runs and the retention indexes. Stop every
-- `changerelay run` first: a running scheduler needs the table.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP INDEX IF EXISTS changerelay.deliveries_dead_updated;
DROP INDEX IF EXISTS changerelay.deliveries_succeeded_completed;
DROP TABLE IF EXISTS changerelay.schedule_runs;
