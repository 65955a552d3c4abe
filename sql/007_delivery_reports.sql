-- 007: what the seed handlers log about their requests. A delivery can name a log row
-- that the dispatcher keeps current in the statement that records each attempt (so the
-- log and the delivery never disagree), and a body field it sets to the attempt number.
-- The automation handler learns of completed executions through the stream, which is
-- what its rate limit needs: only completed runs are published.
DO $$
DECLARE
    part regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    -- {"trigger_attempts": {"trigger_name", "record_id"}}: one trigger_execution_logs row per try;
    -- {"automation_execution": "<uuid>"}: that automation_execution_logs row follows the delivery.
    ALTER TABLE changerelay.deliveries ADD COLUMN IF NOT EXISTS report jsonb;
    -- A top-level field of the JSON body set to the attempt number at send time.
    ALTER TABLE changerelay.deliveries ADD COLUMN IF NOT EXISTS attempt_field text;

    -- A row filter on UPDATE may only use replica-identity columns; a partitioned table's
    -- partitions each need it too (see 003).
    FOR part IN SELECT c.oid FROM pg_class c
                WHERE c.oid IN (SELECT 'public.automation_execution_logs'::regclass UNION SELECT relid FROM pg_partition_tree('public.automation_execution_logs'::regclass))
                  AND c.relkind IN ('r', 'p') AND c.relreplident <> 'f' LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', part);
    END LOOP;
    IF NOT EXISTS (
        SELECT FROM pg_publication_tables
        WHERE pubname = 'changerelay_pub' AND schemaname = 'public' AND tablename = 'automation_execution_logs'
    ) AND NOT EXISTS (  -- a partitioned table published as its partitions (see 004)
        SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
        WHERE p.pubname = 'changerelay_pub' AND r.prrelid = 'public.automation_execution_logs'::regclass
    ) THEN
        ALTER PUBLICATION changerelay_pub ADD TABLE public.automation_execution_logs WHERE (status = 'completed');
    END IF;
END $$;
