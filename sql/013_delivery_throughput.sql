-- 013: claims and webhook log rows whose cost does not grow with the backlog.
--
-- A claim reads the endpoints' rows endpoint by endpoint (skipping through
-- deliveries_endpoint_due to find them, at most each endpoint's free share from each) and
-- the rows without an endpoint from deliveries_unrouted_due. With one index over every
-- unfinished row, a claim while every endpoint was at its in-flight limit walked all of
-- their due rows to find none: 80 ms with 160 000 webhook deliveries due, repeated after
-- every finished try. deliveries_due is replaced by the two.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE INDEX IF NOT EXISTS deliveries_endpoint_due ON changerelay.deliveries (endpoint, next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed') AND endpoint IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_unrouted_due ON changerelay.deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'sending', 'failed') AND endpoint IS NULL;
DROP INDEX IF EXISTS changerelay.deliveries_due;

-- The rows in flight, routed or not, with their leases: the claim counts an endpoint's
-- share from it and the dispatcher finds the next lease to expire. deliveries_status
-- (status, id) took an entry on every status change of every delivery; what reads
-- deliveries by status has these partial indexes, and listings walk the primary key.
CREATE INDEX IF NOT EXISTS deliveries_in_flight ON changerelay.deliveries (endpoint, locked_until)
    WHERE status = 'sending';
DROP INDEX IF EXISTS changerelay.deliveries_endpoint_in_flight;
DROP INDEX IF EXISTS changerelay.deliveries_status;

-- A batch's webhook_logs rows, inserted by one statement instead of one INSERT per row:
-- each staged row gets its id first (from the id column's own sequence or default, so it
-- works for the seed's bigint identity and for an older uuid column alike), and the ids go
-- into webhook_log_ids from the same rows. Row by row, the duplicate check ran against a
-- plan made while webhook_log_ids was empty and cost 0.9 ms a row at 20 000 rows.
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
        WITH staged AS (DELETE FROM changerelay.webhook_logs_staged RETURNING *),
        fresh AS MATERIALIZED (
            SELECT s.*, (%s)::text AS log_id FROM staged s
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
