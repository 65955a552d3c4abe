-- Undoes 001. RESTRICT on purpose: anything else left in the schema (a later
-- migration not rolled back, a table the service created) stops the rollback
-- with an error that names it, instead of being dropped silently.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP TABLE IF EXISTS changerelay.checkpoints;
DROP SCHEMA IF EXISTS changerelay RESTRICT;
