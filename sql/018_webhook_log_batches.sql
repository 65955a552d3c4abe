-- 018: a batch's webhook_logs rows at a cost that does not grow with webhook_log_ids.
--
-- 013's insert_staged_webhook_logs() found the events already mapped with NOT EXISTS
-- against webhook_log_ids, which the planner joined by whatever the table's statistics
-- said. Until autovacuum first analyzed it (a new install, or right after a TRUNCATE)
-- they said empty, and every batch scanned the whole table once per staged row: 114 ms
-- of a 4 000-row batch at 80 000 mapped events, growing with each batch. Here the
-- mapping is inserted first, ON CONFLICT DO NOTHING, which always probes the primary
-- key, and only the rows it returns (the events not logged before) get a webhook_logs
-- row. An event planned again (its batch rolled back and replayed) leaves a gap in the
-- id sequence, as any rolled-back insert does.
--
-- The staging table becomes UNLOGGED like the other staging tables: it is filled and
-- emptied inside one checkpoint transaction, so after a crash there is nothing in it to
-- keep, and its rows no longer pass through the WAL that the service itself decodes.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.webhook_logs_staged SET UNLOGGED;

CREATE OR REPLACE FUNCTION changerelay.insert_staged_webhook_logs() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    new_id text;
    inserted integer;
BEGIN
    SELECT coalesce('nextval(' || quote_literal(pg_get_serial_sequence('public.webhook_logs', 'id')) || ')',
                    pg_get_expr(d.adbin, d.adrelid))
    INTO new_id
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = 'public.webhook_logs'::regclass AND a.attname = 'id' AND NOT a.attisdropped;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'public.webhook_logs.id has no identity, sequence or default: ChangeRelay cannot number its rows';
    END IF;
    -- A config deleted since the event was committed (read again after a restart) keeps its
    -- log row, without the reference, as the seed's ON DELETE SET NULL would have left it.
    EXECUTE format($sql$
        WITH staged AS (DELETE FROM changerelay.webhook_logs_staged RETURNING *),
        mapped AS (
            INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id)
            SELECT webhook_id, (%s)::text FROM staged
            ON CONFLICT (webhook_id) DO NOTHING
            RETURNING webhook_id, log_id)
        INSERT INTO public.webhook_logs (id, webhook_config_id, event_type, payload, attempt_count)
        OVERRIDING SYSTEM VALUE
        SELECT r.id, c.id, s.event_type, s.payload::jsonb, 0
        FROM mapped m
        JOIN staged s ON s.webhook_id = m.webhook_id
        CROSS JOIN LATERAL jsonb_populate_record(NULL::public.webhook_logs,
            jsonb_build_object('id', m.log_id, 'webhook_config_id', s.config_id)) r
        LEFT JOIN public.webhook_configs c ON c.id = r.webhook_config_id
        $sql$, new_id);
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END $$;
