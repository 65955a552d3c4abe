-- 024: the batch committer's staging tables keep their rows at commit; the committer
-- empties the ones a batch used, before its COMMIT.
--
-- 018's and 019's temporary tables were ON COMMIT DELETE ROWS, and Postgres truncates every
-- such table of a session at each commit of a transaction that touched any temporary table:
-- about 0.35 ms a table, used or not (with the dual-write sync's three expansion tables,
-- seven of them: 3 ms of each COMMIT, the largest single cost of a small batch with every
-- handler on, when the batch's whole planning took 8.5 ms). These functions create the same
-- tables and views, ON COMMIT PRESERVE ROWS. After a batch's statements have read its
-- staged rows, the committer deletes them in the same transaction (a rolled-back batch's
-- rows were never visible), and truncates a table instead once it has staged about 256 KiB
-- into it since the last truncation: temporary tables are never vacuumed, and the deleted
-- rows would otherwise pile up for every later batch to walk.
--
-- The functions of 018 and 019 stay, unchanged, for binaries from before this file, which
-- rely on Postgres emptying their tables; a binary from after it refuses a database
-- without it by name.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE OR REPLACE FUNCTION changerelay.create_webhook_logs_staging_kept() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.webhook_logs_staged') IS NULL THEN
        CREATE TEMPORARY TABLE webhook_logs_staged (
            webhook_id text NOT NULL,
            config_id  text NOT NULL,
            event_type text NOT NULL,
            payload    text NOT NULL
        ) ON COMMIT PRESERVE ROWS;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION changerelay.create_dual_write_staging_kept() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.dual_write_staged') IS NOT NULL THEN
        RETURN;
    END IF;
    -- The changes of the batch being committed, in stream order (008 says what each column holds).
    CREATE TEMPORARY TABLE dual_write_staged (
        seq              bigint GENERATED ALWAYS AS IDENTITY,
        habit_tracker_id bigint NOT NULL,
        source_lsn       pg_lsn NOT NULL,
        operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
        mode             text NOT NULL CHECK (mode IN ('log', 'shadow', 'apply')),
        idempotency_key  text NOT NULL,
        request_data     jsonb NOT NULL,
        projection       jsonb,
        problem          text,
        old_child_id     bigint
    ) ON COMMIT PRESERVE ROWS;

    -- Each row's last projectable state in the batch: what the new schema must hold after it.
    CREATE TEMPORARY VIEW dual_write_final AS
        SELECT DISTINCT ON (habit_tracker_id) habit_tracker_id, source_lsn, operation, projection
        FROM pg_temp.dual_write_staged
        WHERE problem IS NULL AND mode <> 'log'
        ORDER BY habit_tracker_id, seq DESC;

    -- The projections staged by the service, in the shape of 008's actual_* views.
    CREATE TEMPORARY VIEW staged_weeks AS
        SELECT habit_tracker_id, (projection ->> 'user_id')::uuid AS user_id, projection ->> 'child_name' AS child_name,
               (projection ->> 'week_start_date')::date AS week_start_date, projection ->> 'week_period' AS week_period
        FROM pg_temp.dual_write_final
        WHERE projection IS NOT NULL;

    CREATE TEMPORARY VIEW staged_habits AS
        SELECT f.habit_tracker_id, (e.i - 1)::int AS position, e.v ->> 'name' AS name, e.v ->> 'time_period' AS time_period
        FROM pg_temp.dual_write_final f
        CROSS JOIN LATERAL jsonb_array_elements(f.projection -> 'habits') WITH ORDINALITY AS e (v, i)
        WHERE f.projection IS NOT NULL;

    CREATE TEMPORARY VIEW staged_records AS
        SELECT f.habit_tracker_id, (e.i - 1)::int AS position, (r.v ->> 'date')::date AS record_date, r.v ->> 'status' AS status
        FROM pg_temp.dual_write_final f
        CROSS JOIN LATERAL jsonb_array_elements(f.projection -> 'habits') WITH ORDINALITY AS e (v, i)
        CROSS JOIN LATERAL jsonb_array_elements(e.v -> 'records') AS r (v)
        WHERE f.projection IS NOT NULL;
END $$;

CREATE OR REPLACE FUNCTION changerelay.create_message_buffer_staging_kept() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.message_buffer_staged') IS NOT NULL THEN
        RETURN;
    END IF;
    -- A batch's steps: a message joined a buffer, a buffer closed, the flag changed.
    CREATE TEMPORARY TABLE message_buffer_staged (
        kind              text    NOT NULL CHECK (kind IN ('buffer', 'flag')),
        event_lsn         pg_lsn  NOT NULL,
        event_index       int     NOT NULL,
        buffer_id         text,
        conversation_id   text,
        status            text,
        message_count     int,
        buffer_start_time timestamptz,
        last_message_at   timestamptz,
        flush_due_at      timestamptz,
        message_id        text,
        message_position  int,
        message_record    text,
        message_content   text,
        buffering         boolean
    ) ON COMMIT PRESERVE ROWS;

    -- Each staged buffer as the batch's last step on it left it.
    CREATE TEMPORARY VIEW message_buffer_latest AS
        SELECT DISTINCT ON (buffer_id) * FROM pg_temp.message_buffer_staged
        WHERE kind = 'buffer' ORDER BY buffer_id, event_lsn DESC, event_index DESC;
END $$;

CREATE OR REPLACE FUNCTION changerelay.create_backfill_progress_staging_kept() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.backfill_progress_staged') IS NOT NULL THEN
        RETURN;
    END IF;
    CREATE TEMPORARY TABLE backfill_progress_staged (
        backfill_id      bigint  NOT NULL,
        chunk            int     NOT NULL,
        cursor           text[],
        rows_read        int     NOT NULL,
        rows_superseded  int     NOT NULL,
        last             boolean NOT NULL
    ) ON COMMIT PRESERVE ROWS;
END $$;
