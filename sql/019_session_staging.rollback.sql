-- Undoes 019: the dual-write sync, message buffering and backfills stage their rows in
-- 008's, 014's and 016's shared unlogged tables again, read (and emptied) by those files'
-- views and functions, restored here as they were. Stop every `changerelay run` first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- The changes of the batch being committed, in stream order. Rows live only inside the
-- checkpoint transaction (the planner deletes them before COMMIT), so the table is
-- unlogged: it is empty whenever no batch is in flight, crash or not.
CREATE UNLOGGED TABLE IF NOT EXISTS changerelay.dual_write_staged (
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    habit_tracker_id bigint NOT NULL,
    source_lsn       pg_lsn NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    mode             text NOT NULL CHECK (mode IN ('log', 'shadow', 'apply')),
    idempotency_key  text NOT NULL,
    request_data     jsonb NOT NULL,
    -- {"user_id", "child_name", "week_start_date", "week_period",
    --  "habits": [{"name", "time_period", "records": [{"date", "status"}]}]}; NULL when
    -- the row is deleted, or cannot be projected (problem says why), or in log mode.
    projection       jsonb,
    problem          text,
    -- The child the row's week belonged to before the batch: deleted if left without weeks.
    old_child_id     bigint
);

-- Each row's last projectable state in the batch: what the new schema must hold after it.
CREATE OR REPLACE VIEW changerelay.dual_write_final AS
    SELECT DISTINCT ON (habit_tracker_id) habit_tracker_id, source_lsn, operation, projection
    FROM changerelay.dual_write_staged
    WHERE problem IS NULL AND mode <> 'log'
    ORDER BY habit_tracker_id, seq DESC;


-- The projections staged by the service (HabitProjection), last state per row in the batch.
CREATE OR REPLACE VIEW changerelay.staged_weeks AS
    SELECT habit_tracker_id, (projection ->> 'user_id')::uuid AS user_id, projection ->> 'child_name' AS child_name,
           (projection ->> 'week_start_date')::date AS week_start_date, projection ->> 'week_period' AS week_period
    FROM changerelay.dual_write_final
    WHERE projection IS NOT NULL;

CREATE OR REPLACE VIEW changerelay.staged_habits AS
    SELECT f.habit_tracker_id, (e.i - 1)::int AS position, e.v ->> 'name' AS name, e.v ->> 'time_period' AS time_period
    FROM changerelay.dual_write_final f
    CROSS JOIN LATERAL jsonb_array_elements(f.projection -> 'habits') WITH ORDINALITY AS e (v, i)
    WHERE f.projection IS NOT NULL;

CREATE OR REPLACE VIEW changerelay.staged_records AS
    SELECT f.habit_tracker_id, (e.i - 1)::int AS position, (r.v ->> 'date')::date AS record_date, r.v ->> 'status' AS status
    FROM changerelay.dual_write_final f
    CROSS JOIN LATERAL jsonb_array_elements(f.projection -> 'habits') WITH ORDINALITY AS e (v, i)
    CROSS JOIN LATERAL jsonb_array_elements(e.v -> 'records') AS r (v)
    WHERE f.projection IS NOT NULL;


CREATE UNLOGGED TABLE IF NOT EXISTS changerelay.message_buffer_staged (
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
);

-- Each staged buffer as the batch's last step on it left it.
CREATE OR REPLACE VIEW changerelay.message_buffer_latest AS
SELECT DISTINCT ON (buffer_id) * FROM changerelay.message_buffer_staged
WHERE kind = 'buffer' ORDER BY buffer_id, event_lsn DESC, event_index DESC;

-- Applies and empties message_buffer_staged. Each buffer ends the batch as its last step
-- left it; existing rows are updated before new ones are inserted, so a conversation's
-- closed buffer has left 'active' before its next one takes that place in the seed's
-- unique index. Ids reach the seed's columns through jsonb_populate_record, which
-- converts the text to each column's own type.
CREATE OR REPLACE FUNCTION changerelay.apply_staged_message_buffers() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    applied integer;
BEGIN
    INSERT INTO changerelay.message_buffering_state (buffering_enabled, changed_at_lsn)
    SELECT buffering, event_lsn FROM changerelay.message_buffer_staged
    WHERE kind = 'flag' ORDER BY event_lsn DESC, event_index DESC LIMIT 1
    ON CONFLICT (singleton) DO UPDATE
        SET buffering_enabled = EXCLUDED.buffering_enabled, changed_at_lsn = EXCLUDED.changed_at_lsn;

    SELECT count(*) INTO applied FROM changerelay.message_buffer_latest;

    UPDATE public.message_buffer b
    SET status = l.status, message_count = l.message_count, buffer_start_time = l.buffer_start_time,
        last_message_at = l.last_message_at, flush_due_at = l.flush_due_at
    FROM changerelay.message_buffer_latest l
    WHERE b.id = (jsonb_populate_record(NULL::public.message_buffer, jsonb_build_object('id', l.buffer_id))).id;

    INSERT INTO public.message_buffer (id, conversation_id, status, message_count, buffer_start_time,
                                       last_message_at, flush_due_at)
    OVERRIDING SYSTEM VALUE
    SELECT r.id, r.conversation_id, l.status, l.message_count, l.buffer_start_time, l.last_message_at, l.flush_due_at
    FROM changerelay.message_buffer_latest l
    CROSS JOIN LATERAL jsonb_populate_record(NULL::public.message_buffer,
        jsonb_build_object('id', l.buffer_id, 'conversation_id', l.conversation_id)) r
    WHERE NOT EXISTS (SELECT FROM public.message_buffer b WHERE b.id = r.id);

    INSERT INTO changerelay.buffer_messages (buffer_id, position, message_id, record, content)
    SELECT buffer_id, message_position, message_id, message_record, message_content
    FROM changerelay.message_buffer_staged
    WHERE kind = 'buffer' AND message_id IS NOT NULL
    ON CONFLICT DO NOTHING;

    -- With a state database apart from the source, buffered_messages is not here to mark.
    IF to_regclass('public.buffered_messages') IS NOT NULL THEN
        UPDATE public.buffered_messages m
        SET buffer_id = (jsonb_populate_record(NULL::public.buffered_messages,
                                               jsonb_build_object('buffer_id', s.buffer_id))).buffer_id
        FROM changerelay.message_buffer_staged s
        WHERE s.kind = 'buffer' AND s.message_id IS NOT NULL
          AND m.id = (jsonb_populate_record(NULL::public.buffered_messages, jsonb_build_object('id', s.message_id))).id;
    END IF;

    INSERT INTO public.buffer_processing_jobs (buffer_id, status, attempts)
    SELECT r.buffer_id, 'pending', 0
    FROM changerelay.message_buffer_latest l
    CROSS JOIN LATERAL jsonb_populate_record(NULL::public.buffer_processing_jobs,
        jsonb_build_object('buffer_id', l.buffer_id)) r
    WHERE l.status = 'processing'
      AND NOT EXISTS (SELECT FROM public.buffer_processing_jobs j WHERE j.buffer_id = r.buffer_id);

    DELETE FROM changerelay.buffer_messages m
    USING changerelay.message_buffer_latest l
    WHERE l.status = 'processing' AND m.buffer_id = l.buffer_id;

    DELETE FROM changerelay.message_buffer_staged;
    RETURN applied;
END $$;

CREATE UNLOGGED TABLE IF NOT EXISTS changerelay.backfill_progress_staged (
    backfill_id      bigint  NOT NULL,
    chunk            int     NOT NULL,
    cursor           text[],
    rows_read        int     NOT NULL,
    rows_superseded  int     NOT NULL,
    last             boolean NOT NULL
);

-- Applies and empties backfill_progress_staged; returns each backfill's table and the rows
-- the batch read of it (for the rows counter). A chunk at or below chunks_done was counted
-- already and is ignored. The last chunk finishes a running backfill; a cancelled or failed
-- one keeps its status but not a stale count.
CREATE OR REPLACE FUNCTION changerelay.apply_staged_backfill_progress()
RETURNS TABLE (backfill_id bigint, table_name text, rows_read bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH staged AS (
        SELECT s.backfill_id AS id, max(s.chunk) AS last_chunk, min(s.chunk) AS first_chunk,
               sum(s.rows_read)::bigint AS rows_read, sum(s.rows_superseded)::bigint AS rows_superseded,
               (SELECT latest.cursor FROM changerelay.backfill_progress_staged latest
                WHERE latest.backfill_id = s.backfill_id ORDER BY latest.chunk DESC LIMIT 1) AS cursor,
               bool_or(s.last) AS last
        FROM changerelay.backfill_progress_staged s GROUP BY s.backfill_id
    ), applied AS (
        UPDATE changerelay.backfills b
        SET cursor = coalesce(staged.cursor, b.cursor),
            chunks_done = staged.last_chunk,
            rows_done = b.rows_done + staged.rows_read,
            rows_superseded = b.rows_superseded + staged.rows_superseded,
            rows_per_second = (b.rows_done + staged.rows_read)
                / greatest(extract(epoch FROM clock_timestamp() - coalesce(b.started_at, b.requested_at)), 0.001),
            eta_seconds = CASE
                WHEN staged.last THEN 0
                WHEN b.rows_estimated IS NULL OR b.rows_done + staged.rows_read = 0 THEN NULL
                ELSE greatest(b.rows_estimated - b.rows_done - staged.rows_read, 0)
                     * greatest(extract(epoch FROM clock_timestamp() - coalesce(b.started_at, b.requested_at)), 0.001)
                     / (b.rows_done + staged.rows_read)
            END,
            status = CASE WHEN staged.last AND b.status = 'running' THEN 'done' ELSE b.status END,
            finished_at = CASE WHEN staged.last AND b.status = 'running' THEN clock_timestamp() ELSE b.finished_at END,
            updated_at = clock_timestamp()
        FROM staged
        WHERE b.id = staged.id AND staged.first_chunk > b.chunks_done
        RETURNING b.id, b.table_schema || '.' || b.table_name AS table_name, staged.rows_read
    )
    SELECT applied.id, applied.table_name, applied.rows_read FROM applied;
    DELETE FROM changerelay.backfill_progress_staged;
END $$;

DROP FUNCTION IF EXISTS changerelay.create_dual_write_staging(), changerelay.create_message_buffer_staging(),
    changerelay.create_backfill_progress_staging();
