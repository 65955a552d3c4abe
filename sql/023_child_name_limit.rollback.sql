-- Undoes 023: habit_tracker_problem() as 008 defined it, without the child_name length rule.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

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
