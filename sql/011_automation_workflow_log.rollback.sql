-- Rolls back 011. The automation handler then refuses to start; stop it first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP TABLE IF EXISTS changerelay.automation_workflow_log;
