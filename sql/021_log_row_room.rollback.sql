-- Undoes 021: the seed log tables fill their pages again (the default fillfactor, 100).
-- Rows written since 021 keep the room it left until the table is rewritten. A fillfactor
-- other than 021's (an operator's) is left alone, as 021 left it, and so is a table the
-- role running this does not own (021 could not have set it either).
DO $$
DECLARE
    t text;
    relation regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['webhook_logs', 'automation_execution_logs', 'buffer_processing_jobs'] LOOP
        relation := to_regclass(format('public.%I', t));
        CONTINUE WHEN relation IS NULL
            OR NOT EXISTS (SELECT FROM pg_class c, unnest(c.reloptions) AS o(option)
                           WHERE c.oid = relation AND o.option = 'fillfactor=50')
            OR NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = relation), 'USAGE');
        EXECUTE format('ALTER TABLE %s RESET (fillfactor)', relation);
    END LOOP;
END $$;
