-- Undoes 003: back to the default identity (the primary key).
DO $$
DECLARE
    t text;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['user_conversations', 'jobs', 'habit_tracker'] LOOP
        IF (SELECT relreplident FROM pg_class WHERE oid = to_regclass(format('public.%I', t))) = 'f' THEN
            EXECUTE format('ALTER TABLE public.%I REPLICA IDENTITY DEFAULT', t);
        END IF;
    END LOOP;
END $$;
