-- Undoes 032: replay then knows the live service's slot only by source.slot again.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.checkpoints DROP COLUMN IF EXISTS written_by;
