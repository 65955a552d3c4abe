-- Undoes 021: the seed log tables fill their pages again (the default fillfactor, 100).
-- Rows written since 021 keep the room it left until the table is rewritten. A fillfactor
-- other than 021's (an operator's) is left alone, as 021 left it.
DO $$
DECLARE
    t text;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['webhook_logs', 'automation_execution_logs', 'buffer_processing_jobs'] LOOP
        IF to_regclass(format('public.%I', t)) IS NOT NULL
           AND EXISTS (SELECT FROM pg_class c, unnest(c.reloptions) AS o(option)
                       WHERE c.oid = format('public.%I', t)::regclass AND o.option = 'fillfactor=50') THEN
            EXECUTE format('ALTER TABLE public.%I RESET (fillfactor)', t);
        END IF;
    END LOOP;
END $$;
