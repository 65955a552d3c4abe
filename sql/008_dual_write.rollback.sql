-- Rolls back 008: the dual-write sync's drift table, staging table, views and problem
-- function. The new schema's rows (children, weeks, habits, habit_records) and
-- idempotency_log are application tables and stay. Stop the service, or set
-- dual_write.mode = "off", first.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
END $$;

DROP VIEW IF EXISTS changerelay.staged_records, changerelay.staged_habits, changerelay.staged_weeks,
    changerelay.dual_write_final, changerelay.actual_records, changerelay.actual_habits, changerelay.actual_weeks;
DROP FUNCTION IF EXISTS changerelay.habit_tracker_problem(uuid, text, date, jsonb);
DROP TABLE IF EXISTS changerelay.dual_write_staged;
DROP TABLE IF EXISTS changerelay.dual_write_drift;
