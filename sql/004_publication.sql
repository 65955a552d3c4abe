-- 004: the publication ChangeRelay streams: every source table of a handler.
-- Created when missing; otherwise only the missing members are added, so a
-- second run changes nothing and members added by hand are left alone.
DO $$
DECLARE
    t text;
    sources text[] := ARRAY[
        'user_conversations', 'jobs', 'automation_workflows', 'habit_tracker',
        'trip_collaborators', 'chat_sessions', 'chat_messages', 'flights',
        'accommodations', 'webhook_configs', 'buffered_messages'];
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'changerelay_pub') THEN
        EXECUTE 'CREATE PUBLICATION changerelay_pub FOR TABLE '
             || (SELECT string_agg(format('public.%I', s), ', ') FROM unnest(sources) AS s);
    ELSE
        FOREACH t IN ARRAY sources LOOP
            -- pg_publication_tables also counts FOR ALL TABLES / TABLES IN SCHEMA members, but
            -- shows a partitioned table published without publish_via_partition_root as its
            -- partitions: pg_publication_rel has the table itself (adding it again fails).
            IF NOT EXISTS (
                SELECT FROM pg_publication_tables
                WHERE pubname = 'changerelay_pub' AND schemaname = 'public' AND tablename = t
            ) AND NOT EXISTS (
                SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                WHERE p.pubname = 'changerelay_pub' AND r.prrelid = to_regclass(format('public.%I', t))
            ) THEN
                EXECUTE format('ALTER PUBLICATION changerelay_pub ADD TABLE public.%I', t);
            END IF;
        END LOOP;
    END IF;
END $$;
