-- 021: the batch committer prepares the insert of its staged webhook_logs rows once a
-- session, instead of having it planned anew in every batch.
--
-- insert_staged_webhook_logs() builds its statement with EXECUTE, since the id column's
-- default (the seed's identity, or a uuid default on older installs) is known only at run
-- time, and Postgres plans an EXECUTE every time: most of a small batch's cost (pgbench,
-- 2 000 batches of two staged rows: 0.75-0.96 ms a batch through the function, 0.30-0.34 ms
-- for the same statement prepared). prepare_webhook_logs_insert(), which the committer calls
-- on each connection after create_webhook_logs_staging(), reads the id column's default and
-- the two columns' types once and PREPAREs the statement as
-- changerelay_insert_staged_webhook_logs; each batch EXECUTEs it. The id and the config
-- reference are cast to their columns' types directly rather than through
-- jsonb_populate_record row by row. The statement has no parameters, so its plan is made
-- once and kept; Postgres makes it again when a table it reads changes. A new default for
-- webhook_logs.id while the service runs fails the next batch: the committer drops the
-- connection, and the new one prepares the statement again.
-- insert_staged_webhook_logs() stays, for binaries from before this file.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE OR REPLACE FUNCTION changerelay.prepare_webhook_logs_insert() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id text;
    id_type text;
    config_type text;
BEGIN
    IF EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'changerelay_insert_staged_webhook_logs') THEN
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
    -- As 020's: a config deleted since the event was committed (read again after a restart)
    -- keeps its log row without the reference, as the seed's ON DELETE SET NULL would have
    -- left it, and an event whose webhook-id is mapped already gets no second row.
    EXECUTE format($sql$
        PREPARE changerelay_insert_staged_webhook_logs AS
        WITH known AS MATERIALIZED (
            SELECT m.webhook_id FROM changerelay.webhook_log_ids m
            WHERE m.webhook_id = ANY (ARRAY(SELECT webhook_id FROM pg_temp.webhook_logs_staged))),
        fresh AS MATERIALIZED (
            SELECT s.webhook_id, s.config_id::%3$s AS config_id, s.event_type, s.payload, (%1$s)::%2$s AS log_id
            FROM pg_temp.webhook_logs_staged s
            WHERE NOT EXISTS (SELECT FROM known k WHERE k.webhook_id = s.webhook_id)),
        logs AS (
            INSERT INTO public.webhook_logs (id, webhook_config_id, event_type, payload, attempt_count)
            OVERRIDING SYSTEM VALUE
            SELECT f.log_id, c.id, f.event_type, f.payload::jsonb, 0
            FROM fresh f LEFT JOIN public.webhook_configs c ON c.id = f.config_id)
        INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id) SELECT webhook_id, log_id::text FROM fresh
        $sql$, new_id, id_type, config_type);
END $$;
