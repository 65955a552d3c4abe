-- 021: room on each page for the next version of the seed log rows a delivery keeps current.
--
-- A webhook_logs, automation_execution_logs or buffer_processing_jobs row is written when
-- its effect is planned and rewritten by the effect's first try (its status, attempt count
-- and response), and again by any later try. None of those columns is indexed, so each
-- rewrite can stay on the row's own page (a heap-only, HOT, update) when the page has room
-- for it. Written densely, as the tables' default fillfactor of 100 writes them, a page has
-- none: every try then wrote a new entry into every index of the table (four for the
-- seed's webhook_logs). The fan-out benchmark measured it: with the default, 87 % of the
-- webhook_logs updates were not HOT and the statement that records a batch of about 30
-- tries took 2.0-2.2 ms; with half of each page left free, all were, and it took 1.5-1.6 ms.
--
-- A storage parameter changes no data and takes a brief lock that does not block reads or
-- writes (SHARE UPDATE EXCLUSIVE); pages already written keep their layout, new pages get
-- the room. It is an optimisation, not a requirement: tables that are absent (an install
-- without that feature's seed tables) are skipped, a fillfactor an operator set is kept,
-- and a table the role running setup does not own (only its owner may set the parameter)
-- is left as it is, with a NOTICE saying what to run as its owner.
DO $$
DECLARE
    t text;
    relation regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['webhook_logs', 'automation_execution_logs', 'buffer_processing_jobs'] LOOP
        relation := to_regclass(format('public.%I', t));
        CONTINUE WHEN relation IS NULL
            OR EXISTS (SELECT FROM pg_class c, unnest(c.reloptions) AS o(option)
                       WHERE c.oid = relation AND o.option LIKE 'fillfactor=%');
        IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = relation), 'USAGE') THEN
            EXECUTE format('ALTER TABLE %s SET (fillfactor = 50)', relation);
        ELSE
            RAISE NOTICE '% is not owned by %: its rows are rewritten with an entry in each of its indexes; as its owner, run ALTER TABLE % SET (fillfactor = 50)',
                relation, current_user, relation;
        END IF;
    END LOOP;
END $$;
