-- 003: REPLICA IDENTITY FULL where a handler needs the whole old row
-- (jobs: the old status; user_conversations: the old ElevenLabs id and status;
-- habit_tracker: the old row to project deletes and updates).
-- Guarded so that a second run does not take ACCESS EXCLUSIVE locks again.
DO $$
DECLARE
    t text;
    part regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['user_conversations', 'jobs', 'habit_tracker'] LOOP
        -- A partitioned table's partitions too: each logs its own old rows, and the root's
        -- setting does not reach them.
        FOR part IN SELECT c.oid FROM pg_class c
                    WHERE c.oid IN (SELECT format('public.%I', t)::regclass UNION SELECT relid FROM pg_partition_tree(format('public.%I', t)::regclass))
                      AND c.relkind IN ('r', 'p') AND c.relreplident <> 'f' LOOP
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', part);
        END LOOP;
    END LOOP;
END $$;
