-- Undoes 030. A service still running needs it: stop the services first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP TABLE IF EXISTS changerelay.automation_completion_log;
