-- Undoes 029. A service still running needs it: stop the services first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.backfills DROP COLUMN IF EXISTS high_key;
