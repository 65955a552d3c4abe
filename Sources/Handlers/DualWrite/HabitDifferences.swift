/// The set-based comparison of an expected projection with what the new schema holds,
/// shared by the shadow mode (the rows of one batch) and `drift-check` (whole tables), so
/// both name the same differences the same way.
///
/// Each side has the shape of `sql/008`'s `actual_*` views, keyed by habit_tracker id: weeks (user,
/// child name, start date, period), habits by position, records by position and date.
/// A missing or extra week is one difference, not one more per habit and record; a
/// missing or extra habit likewise stands for its records. A week without a source id is
/// an extra week (with a NULL id) whose habits and records are not compared.
public enum HabitDifferences {
    /// The expected side: three relations (a view name or a parenthesised query) with the
    /// columns of the session's `staged_weeks`, `staged_habits` and `staged_records` (`sql/019`).
    public struct Expected: Sendable {
        public var weeks: String
        public var habits: String
        public var records: String
        /// `(id, problem)` rows that cannot be projected: reported as `invalid_source`,
        /// and their weeks are not compared.
        public var invalid: String?

        public init(weeks: String, habits: String, records: String, invalid: String? = nil) {
            self.weeks = weeks
            self.habits = habits
            self.records = records
            self.invalid = invalid
        }
    }

    /// Every kind of difference, in report order.
    public static let kinds = [
        "invalid_source", "missing_week", "extra_week", "week_mismatch", "missing_habit", "extra_habit",
        "habit_mismatch", "missing_record", "extra_record", "record_mismatch",
    ]

    /// Common table expressions (without `WITH`) ending in `differences (habit_tracker_id,
    /// kind, detail, expected, actual)`. `actualScope` restricts the new schema's side to
    /// some habit_tracker ids (a condition on `habit_tracker_id`); nil compares all of it.
    public static func ctes(expected: Expected, actualScope: String?) -> String {
        let invalid = expected.invalid ?? "(SELECT NULL::bigint AS id, NULL::text AS problem WHERE false)"
        let scope = actualScope.map { " AND (\($0))" } ?? ""
        return """
            invalid AS MATERIALIZED (SELECT id, problem FROM \(invalid) AS i),
            week_differences AS MATERIALIZED (
                SELECT coalesce(e.habit_tracker_id, a.habit_tracker_id) AS habit_tracker_id,
                       CASE WHEN a.week_id IS NULL THEN 'missing_week' WHEN e.habit_tracker_id IS NULL THEN 'extra_week'
                            ELSE 'week_mismatch' END AS kind,
                       CASE WHEN e.habit_tracker_id IS NOT NULL THEN jsonb_build_object(
                           'user_id', e.user_id, 'child_name', e.child_name, 'week_start_date', e.week_start_date,
                           'week_period', e.week_period) END AS expected,
                       CASE WHEN a.week_id IS NOT NULL THEN jsonb_build_object(
                           'user_id', a.user_id, 'child_name', a.child_name, 'week_start_date', a.week_start_date,
                           'week_period', a.week_period) END AS actual
                FROM \(expected.weeks) AS e
                FULL JOIN (SELECT * FROM changerelay.actual_weeks x
                           WHERE NOT EXISTS (SELECT FROM invalid i WHERE i.id = x.habit_tracker_id)\(scope)) AS a
                  ON a.habit_tracker_id = e.habit_tracker_id
                WHERE (e.user_id, e.child_name, e.week_start_date, e.week_period)
                      IS DISTINCT FROM (a.user_id, a.child_name, a.week_start_date, a.week_period)),
            habit_differences AS MATERIALIZED (
                SELECT coalesce(e.habit_tracker_id, a.habit_tracker_id) AS habit_tracker_id,
                       coalesce(e.position, a.position) AS position,
                       CASE WHEN a.position IS NULL THEN 'missing_habit' WHEN e.position IS NULL THEN 'extra_habit'
                            ELSE 'habit_mismatch' END AS kind,
                       CASE WHEN e.position IS NOT NULL THEN
                           jsonb_build_object('name', e.name, 'time_period', e.time_period) END AS expected,
                       CASE WHEN a.position IS NOT NULL THEN
                           jsonb_build_object('name', a.name, 'time_period', a.time_period) END AS actual
                FROM \(expected.habits) AS e
                FULL JOIN (SELECT * FROM changerelay.actual_habits x WHERE x.habit_tracker_id IS NOT NULL\(scope)) AS a
                  ON a.habit_tracker_id = e.habit_tracker_id AND a.position = e.position
                WHERE (e.name, e.time_period) IS DISTINCT FROM (a.name, a.time_period)),
            record_differences AS (
                SELECT coalesce(e.habit_tracker_id, a.habit_tracker_id) AS habit_tracker_id,
                       coalesce(e.position, a.position) AS position, coalesce(e.record_date, a.record_date) AS record_date,
                       CASE WHEN a.status IS NULL THEN 'missing_record' WHEN e.status IS NULL THEN 'extra_record'
                            ELSE 'record_mismatch' END AS kind,
                       to_jsonb(e.status) AS expected, to_jsonb(a.status) AS actual
                FROM \(expected.records) AS e
                FULL JOIN (SELECT * FROM changerelay.actual_records x WHERE x.habit_tracker_id IS NOT NULL\(scope)) AS a
                  ON a.habit_tracker_id = e.habit_tracker_id AND a.position = e.position AND a.record_date = e.record_date
                WHERE e.status IS DISTINCT FROM a.status),
            differences AS (
                SELECT id AS habit_tracker_id, 'invalid_source' AS kind, problem AS detail,
                       NULL::jsonb AS expected, NULL::jsonb AS actual
                FROM invalid
                UNION ALL
                SELECT habit_tracker_id, kind, NULL, expected, actual FROM week_differences
                UNION ALL
                SELECT habit_tracker_id, kind, format('habits[%s]', position), expected, actual FROM habit_differences h
                WHERE NOT EXISTS (SELECT FROM week_differences w
                                  WHERE w.habit_tracker_id = h.habit_tracker_id AND w.kind <> 'week_mismatch')
                  AND NOT EXISTS (SELECT FROM invalid i WHERE i.id = h.habit_tracker_id)
                UNION ALL
                SELECT habit_tracker_id, kind, format('habits[%s] %s', position, record_date), expected, actual
                FROM record_differences r
                WHERE NOT EXISTS (SELECT FROM week_differences w
                                  WHERE w.habit_tracker_id = r.habit_tracker_id AND w.kind <> 'week_mismatch')
                  AND NOT EXISTS (SELECT FROM habit_differences h WHERE h.habit_tracker_id = r.habit_tracker_id
                                  AND h.position = r.position AND h.kind <> 'habit_mismatch')
                  AND NOT EXISTS (SELECT FROM invalid i WHERE i.id = r.habit_tracker_id))
            """
    }

    /// `habit_tracker` projected in SQL (`source` holds each row once with its problem),
    /// for a whole-table check independent of the service's own projection.
    public static let habitTrackerCTEs = """
        source AS MATERIALIZED (
            SELECT h.id, h.user_id, h.child_name, h.week_start_date, h.week_period,
                   CASE WHEN jsonb_typeof(h.habits) = 'array' THEN h.habits ELSE '[]' END AS habits,
                   changerelay.habit_tracker_problem(h.user_id, h.child_name, h.week_start_date, h.habits) AS problem
            FROM public.habit_tracker h),
        valid AS (SELECT * FROM source WHERE problem IS NULL),
        expected_weeks AS (
            SELECT id AS habit_tracker_id, user_id, child_name, week_start_date, week_period FROM valid),
        expected_habits AS (
            SELECT v.id AS habit_tracker_id, (e.i - 1)::int AS position, e.v ->> 'name' AS name,
                   e.v ->> 'time_period' AS time_period
            FROM valid v, jsonb_array_elements(v.habits) WITH ORDINALITY AS e (v, i)),
        expected_records AS (
            SELECT v.id AS habit_tracker_id, (e.i - 1)::int AS position, v.week_start_date + (t.d - 1)::int AS record_date,
                   t.v #>> '{}' AS status
            FROM valid v, jsonb_array_elements(v.habits) WITH ORDINALITY AS e (v, i),
                 jsonb_array_elements(CASE WHEN jsonb_typeof(e.v -> 'times') = 'array' THEN e.v -> 'times' ELSE '[]' END)
                     WITH ORDINALITY AS t (v, d)
            WHERE t.v NOT IN ('""', 'null'))
        """

    /// The expected side of `habitTrackerCTEs`.
    public static let habitTracker = Expected(
        weeks: "expected_weeks", habits: "expected_habits", records: "expected_records",
        invalid: "(SELECT id, problem FROM source WHERE problem IS NOT NULL)")

    /// `drift-check`'s one query, for one snapshot: a JSON object with `rows_checked`
    /// (habit_tracker rows, and weeks whose source row is gone), `rows_drifted`,
    /// `differences`, `kinds` (count per kind), `children_without_weeks`, and `sample`, the
    /// first `$1` differences by habit_tracker id.
    public static let report = """
        WITH \(habitTrackerCTEs),
        \(ctes(expected: habitTracker, actualScope: nil)),
        found AS MATERIALIZED (SELECT * FROM differences)
        SELECT jsonb_build_object(
            'rows_checked', (SELECT count(*) FROM source) + (SELECT count(*) FROM found WHERE kind = 'extra_week'),
            'rows_drifted', (SELECT count(DISTINCT habit_tracker_id) FROM found)
                            + (SELECT count(*) FROM found WHERE habit_tracker_id IS NULL),
            'differences', (SELECT count(*) FROM found),
            'kinds', (SELECT coalesce(jsonb_object_agg(kind, n), '{}')
                      FROM (SELECT kind, count(*) AS n FROM found GROUP BY kind) k),
            'children_without_weeks', (SELECT count(*) FROM public.children c
                                        WHERE NOT EXISTS (SELECT FROM public.weeks w WHERE w.child_id = c.id)),
            'sample', (SELECT coalesce(jsonb_agg(to_jsonb(x)), '[]')
                       FROM (SELECT * FROM found ORDER BY habit_tracker_id NULLS LAST, kind, detail LIMIT $1) x)
        )::text AS report
        """

    /// The expected side of a batch: the service's projections, each row's last state.
    public static let staged = Expected(
        weeks: "pg_temp.staged_weeks", habits: "pg_temp.staged_habits", records: "pg_temp.staged_records")
}
