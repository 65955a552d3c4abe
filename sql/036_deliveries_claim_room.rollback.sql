-- Undoes 036: deliveries' pages filled to 017's mark again.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.deliveries SET (fillfactor = 60);
