-- Undoes 020: insert_staged_webhook_logs() is 018's again, which finds the events logged
-- already by a join over the whole of webhook_log_ids.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- As 018 made it.
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
    -- An event whose webhook-id is mapped already (its batch was committed before) gets no
    -- second row.
    EXECUTE format($sql$
        WITH fresh AS MATERIALIZED (
            SELECT s.*, (%s)::text AS log_id FROM pg_temp.webhook_logs_staged s
            WHERE NOT EXISTS (SELECT FROM changerelay.webhook_log_ids m WHERE m.webhook_id = s.webhook_id)),
        logs AS (
            INSERT INTO public.webhook_logs (id, webhook_config_id, event_type, payload, attempt_count)
            OVERRIDING SYSTEM VALUE
            SELECT r.id, c.id, f.event_type, f.payload::jsonb, 0
            FROM fresh f
            CROSS JOIN LATERAL jsonb_populate_record(NULL::public.webhook_logs,
                jsonb_build_object('id', f.log_id, 'webhook_config_id', f.config_id)) r
            LEFT JOIN public.webhook_configs c ON c.id = r.webhook_config_id)
        INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id) SELECT webhook_id, log_id FROM fresh
        $sql$, new_id);
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END $$;
