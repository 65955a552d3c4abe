-- Undoes 031: the column and its index go, and 025's staging table and queueing statement
-- come back as 025 wrote them, where they still exist (run again after 025's rollback, this
-- file must not bring them back). Deliveries of key-changing UPDATEs still unfinished are
-- then ordered by their new key alone, as before 031.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP INDEX IF EXISTS changerelay.deliveries_former_ordering_open;
ALTER TABLE changerelay.deliveries DROP COLUMN IF EXISTS former_ordering_key;

DO $rollback$
BEGIN
    IF to_regprocedure('changerelay.prepare_webhook_deliveries()') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE $restore$
-- ON COMMIT PRESERVE ROWS, as 024's: the committer empties it after each batch's statement.
-- `ordinal` numbers the rows in the order the COPY sent them: the planning order.
CREATE OR REPLACE FUNCTION changerelay.create_webhook_deliveries_staging() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.webhook_deliveries_staged') IS NULL THEN
        CREATE TEMPORARY TABLE webhook_deliveries_staged (
            ordinal         bigint GENERATED ALWAYS AS IDENTITY,
            idempotency_key text   NOT NULL,
            ordering_key    text,
            handler         text   NOT NULL,
            source_lsn      pg_lsn NOT NULL,
            target_url      text   NOT NULL,
            method          text   NOT NULL,
            headers         jsonb  NOT NULL,
            auth            text,
            body            text   NOT NULL,
            retry_policy    jsonb  NOT NULL,
            report          jsonb  NOT NULL,
            attempt_field   text,
            endpoint        text
        ) ON COMMIT PRESERVE ROWS;
    END IF;
END $$;

-- Prepares changerelay_queue_webhook_deliveries on the calling session, once. A config
-- deleted since the event was committed (read again by a replay) leaves the log row without
-- the reference, as the seed's ON DELETE SET NULL would have.
CREATE OR REPLACE FUNCTION changerelay.prepare_webhook_deliveries() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id text;
    id_type text;
    config_type text;
BEGIN
    IF EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'changerelay_queue_webhook_deliveries') THEN
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
    EXECUTE format($sql$
        PREPARE changerelay_queue_webhook_deliveries AS
        WITH staged AS MATERIALIZED (
            SELECT s.*, (%1$s)::%2$s AS log_id FROM pg_temp.webhook_deliveries_staged s),
        queued AS (
            INSERT INTO changerelay.deliveries (idempotency_key, ordering_key, handler, source_lsn, target_url, method,
                                                headers, auth, body, retry_policy, report, attempt_field, endpoint)
            SELECT idempotency_key, ordering_key, handler, source_lsn, target_url, method, headers, auth, body,
                   retry_policy, jsonb_set(report, '{webhook_log,id}', to_jsonb(log_id::text)), attempt_field, endpoint
            FROM staged ORDER BY ordinal
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING report->'webhook_log'->>'id' AS log_id)
        INSERT INTO public.webhook_logs (id, webhook_config_id, event_type, payload, attempt_count)
        OVERRIDING SYSTEM VALUE
        SELECT s.log_id, c.id, e.payload->>'type', e.payload, 0
        FROM staged s JOIN queued q ON q.log_id = s.log_id::text
        CROSS JOIN LATERAL (SELECT s.body::jsonb AS payload) e
        LEFT JOIN public.webhook_configs c ON c.id = (s.report->'webhook_log'->>'config_id')::%3$s
        $sql$, new_id, id_type, config_type);
END $$;
    $restore$;
END $rollback$;
