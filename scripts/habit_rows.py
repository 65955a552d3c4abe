"""The habit_tracker rows the dual-write and backfill benchmarks use, and the one-shot SQL copy
of their projection both compare against."""

# Row g: 5 habits, 7 days each cycling through the statuses and blanks.
ROWS_SQL = """
INSERT INTO habit_tracker (child_name, week_start_date, week_period, habits, user_id)
SELECT 'child ' || (g %% 3), date '2026-01-05' + 7 * (g / 300), 'week',
       (SELECT jsonb_agg(jsonb_build_object('name', 'habit ' || k, 'time_period', 'am', 'times',
            (SELECT jsonb_agg((ARRAY['done', 'partial', 'missed', '', NULL])[1 + ((g * 7 + k * 3 + d) %% 5)])
             FROM generate_series(0, 6) d)))
        FROM generate_series(0, 4) k),
       ('00000000-0000-0000-0000-' || lpad(to_hex(g %% 1000), 12, '0'))::uuid
FROM generate_series(%d, %d) g"""

# The baseline: the whole projection in four set-based statements, as a one-shot migration would.
ONE_SHOT = """
BEGIN;
INSERT INTO children (user_id, name) SELECT DISTINCT user_id, child_name FROM habit_tracker;
INSERT INTO weeks (child_id, week_start_date, week_period, source_habit_tracker_id)
  SELECT c.id, h.week_start_date, h.week_period, h.id FROM habit_tracker h
  JOIN children c ON c.user_id = h.user_id AND c.name = h.child_name;
INSERT INTO habits (week_id, name, time_period, position)
  SELECT w.id, e.v ->> 'name', e.v ->> 'time_period', e.i - 1 FROM habit_tracker h
  JOIN weeks w ON w.source_habit_tracker_id = h.id, jsonb_array_elements(h.habits) WITH ORDINALITY e (v, i);
INSERT INTO habit_records (habit_id, record_date, status)
  SELECT x.id, h.week_start_date + (t.d - 1)::int, t.v #>> '{}' FROM habit_tracker h
  JOIN weeks w ON w.source_habit_tracker_id = h.id
  CROSS JOIN LATERAL jsonb_array_elements(h.habits) WITH ORDINALITY e (v, i)
  JOIN habits x ON x.week_id = w.id AND x.position = e.i - 1
  CROSS JOIN LATERAL jsonb_array_elements(e.v -> 'times') WITH ORDINALITY t (v, d)
  WHERE t.v NOT IN ('""', 'null');
COMMIT;"""
