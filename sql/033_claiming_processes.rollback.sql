-- Undoes 033: the claims of a dispatcher that died wait out their leases again.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.deliveries DROP COLUMN IF EXISTS claimed_by;
