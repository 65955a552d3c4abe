-- 035: the batch committer numbers a webhook delivery's webhook_logs row as it plans the
-- delivery, so the delivery is copied straight into deliveries, as every other handler's
-- is, and only its log row is staged.
--
-- Under 025 the committer staged each webhook delivery in deliveries' own columns, and one
-- statement in the checkpoint transaction gave each its log row's id, inserted the
-- deliveries, then paired every inserted delivery with its staged row again (a sort and a
-- join) to insert the log rows. In the fan-out benchmark that statement and its staging
-- COPY cost more than the rest of the committing backend's work on a delivery; a COPY
-- straight into deliveries and the log rows staged alone took about half the time
-- (README, "Webhook fan-out").
--
-- Here the committer reserves ids in the batch's transaction, a block at a time, with the
-- prepared statement changerelay_reserve_webhook_log_ids(n): n values of webhook_logs.id's
-- default, or else its identity's sequence, as text. It locks webhook_logs first (ROW
-- EXCLUSIVE, as the insert would), so a TRUNCATE webhook_logs RESTART IDENTITY cannot
-- restart the ids between a reservation and the insert, and it never keeps ids for a later
-- batch. The default comes first: a serial column whose default an operator pointed at
-- another sequence still owns its first one, which nothing else draws from any more. A value taken
-- from a sequence is never handed out again, so an id reserved and not used (a batch
-- rolled back, or one that numbered fewer rows than it reserved) is only a gap, as an
-- aborted insert leaves one. Each delivery's report names its row's id ("id", as under
-- 025: the tries find their rows the same way), and the row is staged in a temporary
-- table of the committer's session whose ids have webhook_logs' own types.
--
-- changerelay_insert_numbered_webhook_logs inserts the staged rows. It locks the configs
-- they reference (FOR KEY SHARE, as the foreign key's own check does) before inserting: a
-- config deleted since the event was committed, or while the statement runs, leaves the
-- row without the reference, as the seed's ON DELETE SET NULL would have. Joined without
-- the lock, a config deleted after the statement's snapshot was taken failed the foreign
-- key's check, and with it the batch.
--
-- 025's functions stay, for binaries from before this file.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- Creates pg_temp.webhook_logs_numbered (ON COMMIT PRESERVE ROWS, as 024's: the committer
-- empties it after each batch's statement) and prepares both statements, on the calling
-- session, once.
CREATE OR REPLACE FUNCTION changerelay.prepare_numbered_webhook_logs() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id text;
    id_type text;
    config_type text;
BEGIN
    SELECT coalesce(pg_get_expr(d.adbin, d.adrelid),
                    'nextval(' || quote_literal(pg_get_serial_sequence('public.webhook_logs', 'id')) || ')'),
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
    IF to_regclass('pg_temp.webhook_logs_numbered') IS NULL THEN
        EXECUTE format($sql$
            CREATE TEMPORARY TABLE webhook_logs_numbered (
                id                %1$s NOT NULL,
                webhook_config_id %2$s,
                event_type        text  NOT NULL,
                payload           jsonb NOT NULL
            ) ON COMMIT PRESERVE ROWS
            $sql$, id_type, config_type);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'changerelay_reserve_webhook_log_ids') THEN
        EXECUTE format($sql$
            PREPARE changerelay_reserve_webhook_log_ids(integer) AS
            SELECT (%1$s)::text FROM generate_series(1, $1)
            $sql$, new_id);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'changerelay_insert_numbered_webhook_logs') THEN
        EXECUTE $sql$
            PREPARE changerelay_insert_numbered_webhook_logs AS
            WITH referenced AS MATERIALIZED (
                SELECT c.id FROM public.webhook_configs c
                WHERE c.id IN (SELECT s.webhook_config_id FROM pg_temp.webhook_logs_numbered s)
                FOR KEY SHARE)
            INSERT INTO public.webhook_logs (id, webhook_config_id, event_type, payload, attempt_count)
            OVERRIDING SYSTEM VALUE
            SELECT s.id, r.id, s.event_type, s.payload, 0
            FROM pg_temp.webhook_logs_numbered s
            LEFT JOIN referenced r ON r.id = s.webhook_config_id
            $sql$;
    END IF;
END $$;
