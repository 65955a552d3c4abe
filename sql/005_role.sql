-- 005: the least-privilege role the service logs in as.
-- Created without a password: the operator sets one (ALTER ROLE changerelay
-- PASSWORD '...') or uses certificate/peer authentication. REPLICATION needs a
-- superuser on PostgreSQL 15; on RDS grant rds_replication to the role instead.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'changerelay') THEN
        CREATE ROLE changerelay LOGIN REPLICATION;
    ELSIF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'changerelay' AND rolcanlogin AND rolreplication) THEN
        ALTER ROLE changerelay LOGIN REPLICATION;
    END IF;
END $$;

GRANT USAGE ON SCHEMA public TO changerelay;

-- Read the sources (backfill, drift-check) and the configuration it caches.
GRANT SELECT ON
    public.user_conversations, public.jobs, public.automation_workflows, public.habit_tracker,
    public.trip_collaborators, public.chat_sessions, public.chat_messages, public.flights,
    public.accommodations, public.webhook_configs, public.buffered_messages,
    public.feature_flags
TO changerelay;

-- Write the effects.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    public.trigger_execution_logs, public.automation_execution_logs, public.communication_logs,
    public.idempotency_log, public.webhook_logs,
    public.children, public.weeks, public.habits, public.habit_records,
    public.message_buffer, public.buffer_processing_jobs
TO changerelay;

-- A buffered message is only ever assigned to its buffer.
GRANT UPDATE (buffer_id) ON public.buffered_messages TO changerelay;

-- A 410 Gone sets its webhook config inactive (Standard Webhooks), in the statement that
-- records every try, whatever its handler: without this no try could be recorded. Only the
-- columns the table has: a table without one still sets up, and doctor names the column.
DO $$
DECLARE
    present text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attname) INTO present
    FROM pg_attribute
    WHERE attrelid = 'public.webhook_configs'::regclass AND attname IN ('is_active', 'updated_at') AND NOT attisdropped;
    IF present IS NOT NULL THEN
        EXECUTE format('GRANT UPDATE (%s) ON public.webhook_configs TO changerelay', present);
    END IF;
END $$;

-- The sequences that number the effect tables' rows, whatever they are called: an identity
-- or serial column's own, and any other sequence its default takes values from (one shared
-- with other tables). The webhook fan-out reserves webhook_logs ids with the default itself.
DO $$
DECLARE
    t text;
    seq regclass;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'trigger_execution_logs', 'automation_execution_logs', 'communication_logs', 'idempotency_log',
        'webhook_logs', 'children', 'weeks', 'habits', 'habit_records', 'message_buffer',
        'buffer_processing_jobs'] LOOP
        -- A table of the seed's own making may be missing, or have no id column.
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(format('public.%I', t))
                                                             AND attname = 'id' AND NOT attisdropped);
        FOR seq IN
            SELECT pg_get_serial_sequence(format('public.%I', t), 'id')::regclass
            UNION
            SELECT d.refobjid::regclass
            FROM pg_attribute a
            JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                            AND d.refclassid = 'pg_class'::regclass
            JOIN pg_class q ON q.oid = d.refobjid AND q.relkind = 'S'
            WHERE a.attrelid = to_regclass(format('public.%I', t)) AND a.attname = 'id' AND NOT a.attisdropped
        LOOP
            CONTINUE WHEN seq IS NULL;
            EXECUTE format('GRANT USAGE ON SEQUENCE %s TO changerelay', seq);
        END LOOP;
    END LOOP;
END $$;

-- `run` calls pg_control_system() to tell whether the state database is the source.
-- PUBLIC may call it by default, so nothing is granted here: a hosted database's admin
-- user could not grant it. Where a host revoked it, a superuser runs
-- GRANT EXECUTE ON FUNCTION pg_control_system() TO changerelay.

-- Its own schema: everything, including tables later migrations create there.
GRANT ALL ON SCHEMA changerelay TO changerelay;
GRANT ALL ON ALL TABLES IN SCHEMA changerelay TO changerelay;
GRANT ALL ON ALL SEQUENCES IN SCHEMA changerelay TO changerelay;
ALTER DEFAULT PRIVILEGES IN SCHEMA changerelay GRANT ALL ON TABLES TO changerelay;
ALTER DEFAULT PRIVILEGES IN SCHEMA changerelay GRANT ALL ON SEQUENCES TO changerelay;
