/// The SQL that takes a batch's staged `habit_tracker` changes into effect, in the
/// checkpoint transaction (`Staging.statements`). It leaves the staging table empty and
/// returns `(kind, count)` of the drift it recorded.
enum DualWriteStatements {
    static func forBatch(in mode: DualWriteHandler.Mode) -> String {
        (mode == .apply ? apply : "") + finish(comparing: mode == .shadow)
    }

    /// Takes the new schema to each row's last projectable state in the batch, keeping
    /// the ids of what stays: habits are matched by position, records by habit and date.
    /// A week moves when its child's user or name changes; a child left without weeks goes.
    static let apply = """
        UPDATE changerelay.dual_write_staged s SET old_child_id = w.child_id
        FROM public.weeks w WHERE w.source_habit_tracker_id = s.habit_tracker_id;

        DELETE FROM public.weeks w USING changerelay.dual_write_final f
        WHERE w.source_habit_tracker_id = f.habit_tracker_id AND f.projection IS NULL;

        INSERT INTO public.children (user_id, name)
        SELECT DISTINCT user_id, child_name FROM changerelay.staged_weeks
        ON CONFLICT (user_id, name) DO NOTHING;

        INSERT INTO public.weeks (child_id, week_start_date, week_period, source_habit_tracker_id)
        SELECT c.id, s.week_start_date, s.week_period, s.habit_tracker_id
        FROM changerelay.staged_weeks s JOIN public.children c ON c.user_id = s.user_id AND c.name = s.child_name
        ON CONFLICT (source_habit_tracker_id) DO UPDATE
            SET child_id = EXCLUDED.child_id, week_start_date = EXCLUDED.week_start_date, week_period = EXCLUDED.week_period
            WHERE (weeks.child_id, weeks.week_start_date, weeks.week_period)
                  IS DISTINCT FROM (EXCLUDED.child_id, EXCLUDED.week_start_date, EXCLUDED.week_period);

        DELETE FROM public.habits h USING public.weeks w, changerelay.staged_weeks s
        WHERE h.week_id = w.id AND w.source_habit_tracker_id = s.habit_tracker_id
          AND NOT EXISTS (SELECT FROM changerelay.staged_habits e
                          WHERE e.habit_tracker_id = s.habit_tracker_id AND e.position = h.position);

        INSERT INTO public.habits (week_id, name, time_period, position)
        SELECT w.id, e.name, e.time_period, e.position
        FROM changerelay.staged_habits e JOIN public.weeks w ON w.source_habit_tracker_id = e.habit_tracker_id
        ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name, time_period = EXCLUDED.time_period
            WHERE (habits.name, habits.time_period) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.time_period);

        DELETE FROM public.habit_records r USING public.habits h, public.weeks w, changerelay.staged_weeks s
        WHERE r.habit_id = h.id AND h.week_id = w.id AND w.source_habit_tracker_id = s.habit_tracker_id
          AND NOT EXISTS (SELECT FROM changerelay.staged_records e WHERE e.habit_tracker_id = s.habit_tracker_id
                          AND e.position = h.position AND e.record_date = r.record_date);

        INSERT INTO public.habit_records (habit_id, record_date, status)
        SELECT h.id, e.record_date, e.status
        FROM changerelay.staged_records e
        JOIN public.weeks w ON w.source_habit_tracker_id = e.habit_tracker_id
        JOIN public.habits h ON h.week_id = w.id AND h.position = e.position
        ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status
            WHERE habit_records.status IS DISTINCT FROM EXCLUDED.status;

        DELETE FROM public.children c
        WHERE c.id IN (SELECT old_child_id FROM changerelay.dual_write_staged)
          AND NOT EXISTS (SELECT FROM public.weeks w WHERE w.child_id = c.id);

        """

    /// One `idempotency_log` row per change (the seed's operation names), drift for the
    /// rows that cannot be projected and, in shadow mode, for every difference between the
    /// batch's projections and the new schema; then the staging table is emptied.
    static func finish(comparing: Bool) -> String {
        let differences = comparing
            ? HabitDifferences.ctes(
                expected: HabitDifferences.staged,
                actualScope: "habit_tracker_id IN (SELECT habit_tracker_id FROM changerelay.dual_write_final)") + ",\n"
            : ""
        let compared = comparing
            ? """

                UNION ALL
                SELECT d.habit_tracker_id, f.source_lsn, d.kind, d.detail, d.expected, d.actual
                FROM differences d LEFT JOIN changerelay.dual_write_final f USING (habit_tracker_id)
                """
            : ""
        return """
            WITH \(differences)logged AS (
                INSERT INTO public.idempotency_log (key, operation, request_data, response_data, status, created_at, expires_at)
                SELECT s.idempotency_key,
                       CASE s.operation WHEN 'INSERT' THEN 'create_week' WHEN 'UPDATE' THEN 'update_habit_record'
                            ELSE 'delete_week' END,
                       s.request_data,
                       CASE WHEN s.problem IS NOT NULL THEN jsonb_build_object('error', s.problem)
                            WHEN s.mode = 'apply' AND s.operation = 'DELETE' THEN jsonb_build_object('deleted', true)
                            WHEN s.mode = 'apply' THEN jsonb_build_object('week_id', w.id) END,
                       CASE WHEN s.problem IS NOT NULL THEN 'failed' WHEN s.mode = 'log' THEN 'not_implemented'
                            WHEN s.mode = 'shadow' THEN 'shadow' ELSE 'success' END,
                       now(), now() + interval '24 hours'
                FROM changerelay.dual_write_staged s
                LEFT JOIN public.weeks w ON w.source_habit_tracker_id = s.habit_tracker_id AND s.mode = 'apply'
                ORDER BY s.seq
                ON CONFLICT (key) DO NOTHING),
            drift AS (
                INSERT INTO changerelay.dual_write_drift (habit_tracker_id, source_lsn, kind, detail, expected, actual)
                SELECT habit_tracker_id, source_lsn, 'invalid_source', problem, NULL, NULL
                FROM changerelay.dual_write_staged WHERE problem IS NOT NULL\(compared)
                RETURNING kind),
            cleared AS (DELETE FROM changerelay.dual_write_staged)
            SELECT kind, count(*)::text AS count FROM drift GROUP BY kind
            """
    }
}
