-- 008: dual-write sync of habit_tracker into the new schema (children, weeks, habits,
-- habit_records). The service stages each change's projection in the checkpoint
-- transaction and applies (or, in shadow mode, compares) the batch with set-based SQL,
-- so the new schema changes exactly once per change. The views below give both sides
-- of the comparison the same shape: drift-check compares them over whole tables, the
-- shadow mode over the rows of one batch.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
END $$;

-- Every difference found between a habit_tracker row and the new schema.
CREATE TABLE IF NOT EXISTS changerelay.dual_write_drift (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    habit_tracker_id bigint,
    -- The commit LSN of the change that was compared.
    source_lsn       pg_lsn,
    -- missing_week, extra_week, week_mismatch, missing_habit, extra_habit, habit_mismatch,
    -- missing_record, extra_record, record_mismatch, invalid_source.
    kind             text NOT NULL,
    -- Where: "habits[2]", "habits[2] 2026-01-07", or why a row cannot be projected.
    detail           text,
    expected         jsonb,
    actual           jsonb,
    checked_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dual_write_drift_habit_tracker_id ON changerelay.dual_write_drift (habit_tracker_id);
CREATE INDEX IF NOT EXISTS dual_write_drift_checked_at ON changerelay.dual_write_drift (checked_at);

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

-- Why a habit_tracker row cannot be projected, or NULL. The same rules, and the same words,
-- as the service's HabitProjection (blank: empty or ASCII whitespace, whatever the locale): NULL or [] habits are none; elements are objects with a non-blank
-- string name, a string or null time_period, and times absent/null or 7 values each
-- done, partial, missed, "" or null.
CREATE OR REPLACE FUNCTION changerelay.habit_tracker_problem(
    user_id uuid, child_name text, week_start_date date, habits jsonb)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE

AS $$
    SELECT CASE
        WHEN user_id IS NULL THEN 'user_id is NULL'
        WHEN child_name IS NULL OR child_name ~ '^[ \t\n\r\v\f]*$' THEN 'child_name is NULL or blank'
        WHEN week_start_date IS NULL OR week_start_date NOT BETWEEN '0001-01-01' AND '9999-12-31'
            THEN 'week_start_date is NULL or not a date'
        WHEN habits IS NULL THEN NULL
        WHEN jsonb_typeof(habits) <> 'array' THEN 'habits is not a JSON array'
        ELSE (
            SELECT CASE
                WHEN jsonb_typeof(e.v) <> 'object' THEN format('habits[%s] is not an object', e.i - 1)
                WHEN jsonb_typeof(e.v -> 'name') IS DISTINCT FROM 'string' OR e.v ->> 'name' ~ '^[ \t\n\r\v\f]*$'
                    THEN format('habits[%s] has no non-blank string "name"', e.i - 1)
                WHEN coalesce(jsonb_typeof(e.v -> 'time_period'), 'null') NOT IN ('string', 'null')
                    THEN format('habits[%s].time_period is not a string', e.i - 1)
                WHEN coalesce(jsonb_typeof(e.v -> 'times'), 'null') NOT IN ('array', 'null')
                    THEN format('habits[%s].times is not an array', e.i - 1)
                WHEN jsonb_array_length(e.v -> 'times') <> 7
                    THEN format('habits[%s].times has %s values, not 7', e.i - 1, jsonb_array_length(e.v -> 'times'))
                ELSE format('habits[%s].times[%s] is not "done", "partial", "missed", "" or null', e.i - 1,
                            (SELECT min(t.d) - 1 FROM jsonb_array_elements(e.v -> 'times') WITH ORDINALITY AS t (v, d)
                             WHERE t.v NOT IN ('"done"', '"partial"', '"missed"', '""', 'null')))
            END
            FROM jsonb_array_elements(habits) WITH ORDINALITY AS e (v, i)
            WHERE jsonb_typeof(e.v) <> 'object'
               OR jsonb_typeof(e.v -> 'name') IS DISTINCT FROM 'string' OR e.v ->> 'name' ~ '^[ \t\n\r\v\f]*$'
               OR coalesce(jsonb_typeof(e.v -> 'time_period'), 'null') NOT IN ('string', 'null')
               OR coalesce(jsonb_typeof(e.v -> 'times'), 'null') NOT IN ('array', 'null')
               OR (jsonb_typeof(e.v -> 'times') = 'array' AND (
                       jsonb_array_length(e.v -> 'times') <> 7
                    OR EXISTS (SELECT FROM jsonb_array_elements(e.v -> 'times') AS t (v)
                               WHERE t.v NOT IN ('"done"', '"partial"', '"missed"', '""', 'null'))))
            ORDER BY e.i
            LIMIT 1)
    END
$$;

-- Both sides of a comparison in one shape, keyed by habit_tracker id: the week (its
-- child's user and name, start date, period), the habits by position, the records by
-- position and date. drift-check projects habit_tracker itself, in SQL, as an
-- independent check of what the service writes.

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

-- What the new schema holds.
CREATE OR REPLACE VIEW changerelay.actual_weeks AS
    SELECT w.source_habit_tracker_id AS habit_tracker_id, c.user_id, c.name AS child_name, w.week_start_date,
           w.week_period, w.id AS week_id
    FROM public.weeks w
    JOIN public.children c ON c.id = w.child_id;

CREATE OR REPLACE VIEW changerelay.actual_habits AS
    SELECT w.source_habit_tracker_id AS habit_tracker_id, h.position, h.name, h.time_period, h.id AS habit_id
    FROM public.habits h
    JOIN public.weeks w ON w.id = h.week_id;

CREATE OR REPLACE VIEW changerelay.actual_records AS
    SELECT w.source_habit_tracker_id AS habit_tracker_id, h.position, r.record_date, r.status
    FROM public.habit_records r
    JOIN public.habits h ON h.id = r.habit_id
    JOIN public.weeks w ON w.id = h.week_id;
