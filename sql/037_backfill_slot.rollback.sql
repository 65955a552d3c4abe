-- Undoes 037: backfill requests no longer name a slot; any runner takes any request.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.backfills DROP COLUMN IF EXISTS slot_name;
