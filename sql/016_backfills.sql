-- 016: backfills (incremental snapshots). `changerelay backfill` records a request; the
-- service that holds the slot reads the table in primary-key chunks between watermarks and
-- hands the rows to the handlers as `read` changes. A chunk's progress is staged with its
-- effects and applied by apply_staged_backfill_progress() in the checkpoint transaction, so
-- the cursor is exactly as far as the effects that are committed.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE TABLE IF NOT EXISTS changerelay.backfills (
    id               bigserial   PRIMARY KEY,
    table_schema     text        NOT NULL,
    table_name       text        NOT NULL,
    where_clause     text,
    chunk_size       int         NOT NULL CHECK (chunk_size BETWEEN 1 AND 1000000),
    key_columns      text[]      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'running', 'done', 'cancelled', 'failed')),
    -- The last primary key read (text values, key order); NULL before the first chunk.
    cursor           text[],
    chunks_done      int         NOT NULL DEFAULT 0,
    rows_done        bigint      NOT NULL DEFAULT 0,
    -- Rows a live change made stale between a chunk's watermarks: the stream handled them.
    rows_superseded  bigint      NOT NULL DEFAULT 0,
    -- The planner's estimate when the request was recorded (pg_class.reltuples, narrowed by the WHERE).
    rows_estimated   bigint,
    rows_per_second  double precision,
    eta_seconds      double precision,
    error            text,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    updated_at       timestamptz,
    finished_at      timestamptz
);

CREATE INDEX IF NOT EXISTS backfills_unfinished ON changerelay.backfills (id)
    WHERE status IN ('pending', 'running');

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
