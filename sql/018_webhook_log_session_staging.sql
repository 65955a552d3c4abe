-- 018: a batch's webhook_logs rows are staged in a temporary table of the batch
-- committer's own session.
--
-- 012's changerelay.webhook_logs_staged was a shared, logged table: every staged row went
-- through the WAL twice, copied and then deleted (and the service decodes that WAL when
-- the state database is the source), and the deleted rows stayed in the table's file until
-- autovacuum came by, so each batch's DELETE walked every earlier batch's rows again. The
-- committer now calls changerelay.create_webhook_logs_staging() on each connection it
-- opens: a temporary table, ON COMMIT DELETE ROWS, which writes no WAL, holds its own
-- session's rows only and is emptied by Postgres at every commit.
-- insert_staged_webhook_logs() reads it; the shared table is dropped, so a binary from
-- before this file fails at its first staged row instead of staging where no one reads.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE OR REPLACE FUNCTION changerelay.create_webhook_logs_staging() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.webhook_logs_staged') IS NULL THEN
        CREATE TEMPORARY TABLE webhook_logs_staged (
            webhook_id text NOT NULL,
            config_id  text NOT NULL,
            event_type text NOT NULL,
            payload    text NOT NULL
        ) ON COMMIT DELETE ROWS;
    END IF;
END $$;

-- As 013's, reading the session's table; Postgres empties it at commit.
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

DROP TABLE IF EXISTS changerelay.webhook_logs_staged;
