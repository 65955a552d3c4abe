-- Undoes 002: DROPS THE APPLICATION TABLES AND EVERY ROW IN THEM.
-- Meant for databases where 002 created them (dev, tests, `changerelay dev`).
-- On a database whose applications own these tables, skip this file: rolling
-- back 005, 004, 003 and 001 removes everything ChangeRelay added.
-- No CASCADE: a view or foreign key of the applications that depends on one of
-- these tables stops the rollback with an error instead of being dropped too.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP FUNCTION IF EXISTS public.cleanup_idempotency_log();

-- One statement, so foreign keys between the listed tables do not matter.
DROP TABLE IF EXISTS
    public.buffer_processing_jobs,
    public.buffered_messages,
    public.message_buffer,
    public.feature_flags,
    public.accommodations,
    public.flights,
    public.chat_messages,
    public.chat_sessions,
    public.trip_collaborators,
    public.trips,
    public.webhook_logs,
    public.webhook_configs,
    public.idempotency_log,
    public.habit_records,
    public.habits,
    public.weeks,
    public.children,
    public.habit_tracker,
    public.communication_logs,
    public.automation_execution_logs,
    public.automation_workflows,
    public.jobs,
    public.trigger_execution_logs,
    public.user_conversations;
