-- Undoes 006, with every delivery and attempt in it.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP TABLE IF EXISTS changerelay.delivery_attempts;
DROP TABLE IF EXISTS changerelay.deliveries;
