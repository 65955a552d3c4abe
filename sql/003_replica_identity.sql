-- 003: REPLICA IDENTITY FULL where a handler needs the whole old row
-- (jobs: the old status; user_conversations: the old ElevenLabs id and status;
-- habit_tracker: the old row to project deletes and updates).
-- Guarded so that a second run does not take ACCESS EXCLUSIVE locks again.
DO $$
DECLARE
    t text;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['user_conversations', 'jobs', 'habit_tracker'] LOOP
        IF (SELECT relreplident FROM pg_class WHERE oid = format('public.%I', t)::regclass) <> 'f' THEN
            EXECUTE format('ALTER TABLE public.%I REPLICA IDENTITY FULL', t);
        END IF;
    END LOOP;
END $$;
