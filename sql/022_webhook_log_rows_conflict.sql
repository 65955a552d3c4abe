-- 022: the committer's insert of its staged webhook_logs rows finds the events logged
-- already through webhook_log_ids' unique index, whatever that table's size was when the
-- statement was planned.
--
-- 021's prepared statement looked them up with a query (= ANY over webhook_log_ids). It has
-- no parameters, so Postgres plans it once, on the session's first batch, and keeps that
-- plan until an ANALYZE of a table it reads: planned against the small table of a new
-- install, or of one after a retention sweep, it scanned the whole of webhook_log_ids in every
-- batch, and each batch cost more than the last. Profiled with perf over
-- scripts/bench-webhooks.sh, that scan was a quarter of the machine's CPU at 100 000
-- messages. Here the rows are inserted into webhook_log_ids first, ON CONFLICT DO NOTHING:
-- the conflict check always goes through the primary key, so no plan can turn it into a
-- scan, and only the events it inserted get a webhook_logs row. An event staged again (its
-- batch read again after a restart) still gets no second row; it does take a number from
-- webhook_logs' sequence, which then has a gap, as a rolled-back insert would leave.
--
-- prepare_webhook_log_rows() prepares it, as changerelay_insert_webhook_log_rows, on each
-- of the committer's connections. 021's prepare_webhook_logs_insert() and 020's
-- insert_staged_webhook_logs() stay, for binaries from before this file.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE OR REPLACE FUNCTION changerelay.prepare_webhook_log_rows() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id text;
    id_type text;
    config_type text;
BEGIN
    IF EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'changerelay_insert_webhook_log_rows') THEN
        RETURN;
    END IF;
    SELECT coalesce('nextval(' || quote_literal(pg_get_serial_sequence('public.webhook_logs', 'id')) || ')',
                    pg_get_expr(d.adbin, d.adrelid)),
           format_type(a.atttypid, a.atttypmod)
    INTO new_id, id_type
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = 'public.webhook_logs'::regclass AND a.attname = 'id' AND NOT a.attisdropped;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'public.webhook_logs.id has no identity, sequence or default: ChangeRelay cannot number its rows';
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO config_type
    FROM pg_attribute a
    WHERE a.attrelid = 'public.webhook_logs'::regclass AND a.attname = 'webhook_config_id' AND NOT a.attisdropped;
    IF config_type IS NULL THEN
        RAISE EXCEPTION 'public.webhook_logs has no webhook_config_id column: ChangeRelay cannot log webhook deliveries';
    END IF;
    -- One row per webhook-id even if a batch staged one twice: the join below would
    -- otherwise give the second copy a row of its own. A config deleted since the event was
    -- committed (read again after a restart) leaves the row without the reference, as the
    -- seed's ON DELETE SET NULL would have.
    EXECUTE format($sql$
        PREPARE changerelay_insert_webhook_log_rows AS
        WITH staged AS MATERIALIZED (
            SELECT DISTINCT ON (s.webhook_id)
                   s.webhook_id, s.config_id::%3$s AS config_id, s.event_type, s.payload, (%1$s)::%2$s AS log_id
            FROM pg_temp.webhook_logs_staged s),
        mapped AS (
            INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id)
            SELECT webhook_id, log_id::text FROM staged
            ON CONFLICT (webhook_id) DO NOTHING
            RETURNING webhook_id)
        INSERT INTO public.webhook_logs (id, webhook_config_id, event_type, payload, attempt_count)
        OVERRIDING SYSTEM VALUE
        SELECT s.log_id, c.id, s.event_type, s.payload::jsonb, 0
        FROM staged s JOIN mapped m ON m.webhook_id = s.webhook_id
        LEFT JOIN public.webhook_configs c ON c.id = s.config_id
        $sql$, new_id, id_type, config_type);
END $$;
