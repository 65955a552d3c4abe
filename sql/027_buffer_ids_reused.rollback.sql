-- Undoes 027. A service still running needs it: stop the services first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS changerelay.release_reused_buffer_ids();
