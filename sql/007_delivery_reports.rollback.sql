-- Undoes 007. Deliveries keep their attempts in changerelay.delivery_attempts.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF EXISTS (
        SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
        WHERE p.pubname = 'changerelay_pub' AND r.prrelid = to_regclass('public.automation_execution_logs')
    ) THEN
        ALTER PUBLICATION changerelay_pub DROP TABLE public.automation_execution_logs;
    END IF;
    IF (SELECT relreplident FROM pg_class WHERE oid = to_regclass('public.automation_execution_logs')) = 'f' THEN
        ALTER TABLE public.automation_execution_logs REPLICA IDENTITY DEFAULT;
    END IF;
    IF to_regclass('changerelay.deliveries') IS NOT NULL THEN
        ALTER TABLE changerelay.deliveries DROP COLUMN IF EXISTS report, DROP COLUMN IF EXISTS attempt_field;
    END IF;
END $$;
