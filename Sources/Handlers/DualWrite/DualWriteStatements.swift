import Decoding

/// The SQL that takes a batch's staged `habit_tracker` changes into effect, in the
/// checkpoint transaction (`Staging.statements`), and returns `(kind, count)` of the
/// drift it recorded. The committer empties the session's staging tables after them.
enum DualWriteStatements {
    /// Run on each connection of the batch committer (`Staging.sessionSetup`): the staging
    /// table and its views (`sql/024`), in `apply` the tables the staged JSON is expanded
    /// into once per batch (`scratchTables`), and the batch's statements, prepared. All are
    /// the session's own; the committer empties the tables after each batch, so no batch
    /// reads another's rows. Run again on a session that has them, it changes nothing.
    ///
    /// A staged row (the change's request and its projection, about 3 KB for a week of five
    /// habits) is longer than the 2 KB past which Postgres compresses a row's values, and it
    /// lives for one batch: compressing it, and decompressing it for each statement that reads
    /// it, took 4 % of the backend's time applying a backlog (`perf`: 2.6 % and 1.3 %). Up to a
    /// page's length, the staged rows stay as they came (`toast_tuple_target`).
    static func sessionSetup(in mode: DualWriteHandler.Mode) -> String {
        let prepared = steps(in: mode).enumerated().map { index, step in
            let name = statementName(mode, index)
            return """
                IF NOT EXISTS (SELECT FROM pg_prepared_statements WHERE name = '\(name)') THEN
                    EXECUTE $statement$PREPARE \(name) AS
                \(step)$statement$;
                END IF;
                """
        }
        return "SELECT changerelay.create_dual_write_staging_kept();\n"
            + "ALTER TABLE pg_temp.dual_write_staged SET (toast_tuple_target = 8160);\n"
            + (mode == .apply ? expansionTables : "")
            + "DO $prepare$ BEGIN\n" + prepared.joined(separator: "\n") + "\nEND $prepare$;"
    }

    /// The tables `apply` fills from the staged rows.
    static func scratchTables(in mode: DualWriteHandler.Mode) -> [TableName] {
        guard mode == .apply else { return [] }
        return ["dual_write_prior", "dual_write_rows", "dual_write_habits"].map { TableName(schema: "pg_temp", name: $0) }
    }

    private static let expansionTables = """
        CREATE TEMPORARY TABLE IF NOT EXISTS dual_write_prior (habit_tracker_id bigint, week_id bigint, child_id bigint)
            ON COMMIT PRESERVE ROWS;
        CREATE TEMPORARY TABLE IF NOT EXISTS dual_write_rows (habit_tracker_id bigint, user_id uuid, child_name text,
            week_start_date date, week_period text, habits jsonb, deleted boolean) ON COMMIT PRESERVE ROWS;
        CREATE TEMPORARY TABLE IF NOT EXISTS dual_write_habits (habit_tracker_id bigint, position int, name text,
            time_period text, records jsonb) ON COMMIT PRESERVE ROWS;

        """

    /// The statements of one batch in `mode`: the session's prepared ones, in order.
    ///
    /// Each is planned once a session, not once a batch: with every handler on, a batch of a
    /// few rows spent 3.7 ms in them planned each time and 2.8 ms prepared (most of the rest
    /// is the insert of new weeks, habits and records). They have no parameters, so Postgres keeps the plan it
    /// made at the first batch, and makes it again when a table they read changes, as the
    /// committer's periodic truncation of the staging tables does, and before a batch much
    /// larger than the ones the plans were made for (`StagingSweep`). They
    /// are written to be planned on guesses: the temporary tables have no statistics, and
    /// guessed high, their costs would have JIT compile statements that run in milliseconds
    /// (it took longer than running them), so JIT is off for the rest of the checkpoint
    /// transaction, which only runs statements of that kind.
    static func forBatch(in mode: DualWriteHandler.Mode) -> String {
        "SET LOCAL jit = off;\n" + steps(in: mode).indices.map { "EXECUTE " + statementName(mode, $0) }.joined(separator: ";\n")
    }

    /// The texts the session prepares; the last one's result is the drift recorded.
    static func steps(in mode: DualWriteHandler.Mode) -> [String] {
        (mode == .apply ? apply : []) + [finish(comparing: mode == .shadow)]
    }

    private static func statementName(_ mode: DualWriteHandler.Mode, _ index: Int) -> String {
        "changerelay_dual_write_\(mode.rawValue)_\(index)"
    }

    /// Takes the new schema to each row's last projectable state in the batch, keeping
    /// the ids of what stays: habits are matched by position, records by habit and date.
    /// A week moves when its child's user or name changes; a child left without weeks goes.
    ///
    /// The staged JSON is expanded once, into temporary tables emptied after the batch, and the
    /// work is split by what the batch found: a row without a week before the batch (all of
    /// a backlog) gets its week, habits and records by plain inserts chained through
    /// RETURNING, with nothing to compare or delete; only rows whose week existed are diffed
    /// against it (the statements that do that find nothing to read in a batch without such
    /// rows, from `dual_write_prior`'s empty id list). The new schema's tables are reached
    /// through their indexes from the batch's ids (`= ANY (ARRAY(...))`), never scanned: the
    /// temporary tables have no statistics, and a plan guessed from them must not cost the
    /// size of the new schema.
    ///
    /// The checkpoint transaction is the only writer of these weeks: one missing when the
    /// batch starts is inserted plainly, so a concurrent inserter of the same week makes the
    /// batch fail rather than be applied twice. The weeks it finds are locked as they are
    /// read: a writer deleting or changing one (a hand edit, a trigger left from the seed) is
    /// waited for and its commit seen, where a snapshot read before it committed had the
    /// batch write habits for a week that was gone, and `run` stopped on the foreign key.
    static let apply = [
        """
        INSERT INTO pg_temp.dual_write_prior (habit_tracker_id, week_id, child_id)
        SELECT source_habit_tracker_id, id, child_id FROM public.weeks
        WHERE source_habit_tracker_id = ANY (ARRAY(SELECT habit_tracker_id FROM pg_temp.dual_write_staged))
        FOR UPDATE
        """,
        """
        INSERT INTO pg_temp.dual_write_rows
            (habit_tracker_id, user_id, child_name, week_start_date, week_period, habits, deleted)
        SELECT habit_tracker_id, (projection ->> 'user_id')::uuid, projection ->> 'child_name',
               (projection ->> 'week_start_date')::date, projection ->> 'week_period', projection -> 'habits',
               projection IS NULL
        FROM pg_temp.dual_write_final
        """,
        """
        INSERT INTO pg_temp.dual_write_habits (habit_tracker_id, position, name, time_period, records)
        SELECT f.habit_tracker_id, (e.i - 1)::int, e.v ->> 'name', e.v ->> 'time_period', e.v -> 'records'
        FROM pg_temp.dual_write_rows f CROSS JOIN LATERAL jsonb_array_elements(f.habits) WITH ORDINALITY AS e (v, i)
        WHERE NOT f.deleted
        """,
        """
        INSERT INTO public.children (user_id, name)
        SELECT DISTINCT user_id, child_name FROM pg_temp.dual_write_rows WHERE NOT deleted
        ON CONFLICT (user_id, name) DO NOTHING
        """,
        """
        DELETE FROM public.weeks
        WHERE source_habit_tracker_id = ANY (ARRAY(SELECT habit_tracker_id FROM pg_temp.dual_write_rows WHERE deleted))
        """,
        """
        UPDATE public.weeks w SET child_id = c.id, week_start_date = f.week_start_date, week_period = f.week_period
        FROM pg_temp.dual_write_rows f JOIN public.children c ON c.user_id = f.user_id AND c.name = f.child_name
        WHERE w.id = ANY (ARRAY(SELECT week_id FROM pg_temp.dual_write_prior))
          AND w.source_habit_tracker_id = f.habit_tracker_id
          AND (w.child_id, w.week_start_date, w.week_period) IS DISTINCT FROM (c.id, f.week_start_date, f.week_period)
        """,
        """
        DELETE FROM public.habits h USING pg_temp.dual_write_prior p JOIN pg_temp.dual_write_rows f USING (habit_tracker_id)
        WHERE h.week_id = ANY (ARRAY(SELECT week_id FROM pg_temp.dual_write_prior))
          AND h.week_id = p.week_id AND NOT f.deleted
          AND NOT EXISTS (SELECT FROM pg_temp.dual_write_habits e
                          WHERE e.habit_tracker_id = p.habit_tracker_id AND e.position = h.position)
        """,
        """
        INSERT INTO public.habits (week_id, name, time_period, position)
        SELECT p.week_id, e.name, e.time_period, e.position
        FROM pg_temp.dual_write_habits e JOIN pg_temp.dual_write_prior p USING (habit_tracker_id)
        ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name, time_period = EXCLUDED.time_period
            WHERE (habits.name, habits.time_period) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.time_period)
        """,
        """
        DELETE FROM public.habit_records r USING public.habits h, pg_temp.dual_write_prior p, pg_temp.dual_write_habits e
        WHERE r.habit_id = ANY (ARRAY(SELECT id FROM public.habits
                                      WHERE week_id = ANY (ARRAY(SELECT week_id FROM pg_temp.dual_write_prior))))
          AND r.habit_id = h.id AND h.week_id = p.week_id
          AND e.habit_tracker_id = p.habit_tracker_id AND e.position = h.position
          AND NOT EXISTS (SELECT FROM jsonb_array_elements(e.records) AS x (v)
                          WHERE (x.v ->> 'date')::date = r.record_date)
        """,
        """
        INSERT INTO public.habit_records (habit_id, record_date, status)
        SELECT h.id, (x.v ->> 'date')::date, x.v ->> 'status'
        FROM pg_temp.dual_write_habits e JOIN pg_temp.dual_write_prior p USING (habit_tracker_id)
        JOIN public.habits h ON h.week_id = p.week_id AND h.position = e.position
        CROSS JOIN LATERAL jsonb_array_elements(e.records) AS x (v)
        WHERE h.week_id = ANY (ARRAY(SELECT week_id FROM pg_temp.dual_write_prior))
        ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status
            WHERE habit_records.status IS DISTINCT FROM EXCLUDED.status
        """,
        """
        WITH new_weeks AS (
            INSERT INTO public.weeks (child_id, week_start_date, week_period, source_habit_tracker_id)
            SELECT c.id, f.week_start_date, f.week_period, f.habit_tracker_id
            FROM pg_temp.dual_write_rows f JOIN public.children c ON c.user_id = f.user_id AND c.name = f.child_name
            WHERE NOT f.deleted
              AND NOT EXISTS (SELECT FROM pg_temp.dual_write_prior p WHERE p.habit_tracker_id = f.habit_tracker_id)
            RETURNING id, source_habit_tracker_id),
        new_habits AS (
            INSERT INTO public.habits (week_id, name, time_period, position)
            SELECT w.id, e.name, e.time_period, e.position
            FROM new_weeks w JOIN pg_temp.dual_write_habits e ON e.habit_tracker_id = w.source_habit_tracker_id
            RETURNING id, week_id, position)
        INSERT INTO public.habit_records (habit_id, record_date, status)
        SELECT h.id, (x.v ->> 'date')::date, x.v ->> 'status'
        FROM new_habits h JOIN new_weeks w ON w.id = h.week_id
        JOIN pg_temp.dual_write_habits e ON e.habit_tracker_id = w.source_habit_tracker_id AND e.position = h.position
        CROSS JOIN LATERAL jsonb_array_elements(e.records) AS x (v)
        """,
        """
        DELETE FROM public.children c
        WHERE c.id = ANY (ARRAY(SELECT child_id FROM pg_temp.dual_write_prior))
          AND NOT EXISTS (SELECT FROM public.weeks w WHERE w.child_id = c.id)
        """,
    ]

    /// Shadow mode compares a row only while the batch's last change of it is the row as it
    /// is now: the other writer (the application, or the seed's trigger) has already written
    /// any later state of it into the new schema, and the stream is behind it after a backlog
    /// or a restart, so an older state compared with that would be drift that is not there.
    /// Such a row is compared when the stream reaches its latest change, and not at all while
    /// that change cannot be projected (it is `invalid_source` only). The live row is read
    /// as `to_jsonb`, so a column renamed or dropped since makes the row not current rather
    /// than the statement fail; its dates print as the stream's do (ISO), except BC dates,
    /// which no projection accepts.
    private static let currentRows = """
        current_rows AS MATERIALIZED (
            SELECT l.habit_tracker_id
            FROM (SELECT DISTINCT ON (habit_tracker_id) habit_tracker_id, operation, request_data, problem
                  FROM pg_temp.dual_write_staged ORDER BY habit_tracker_id, seq DESC) l
            LEFT JOIN LATERAL (SELECT to_jsonb(h) AS row FROM public.habit_tracker h WHERE h.id = l.habit_tracker_id) h ON true
            WHERE l.problem IS NULL
              AND CASE WHEN l.operation = 'DELETE' THEN h.row IS NULL
                       ELSE h.row IS NOT NULL
                        AND (h.row ->> 'user_id') IS NOT DISTINCT FROM (l.request_data ->> 'user_id')
                        AND (h.row ->> 'child_name') IS NOT DISTINCT FROM (l.request_data ->> 'child_name')
                        AND (h.row ->> 'week_start_date') IS NOT DISTINCT FROM (l.request_data ->> 'week_start_date')
                        AND (h.row ->> 'week_period') IS NOT DISTINCT FROM (l.request_data ->> 'week_period')
                        AND (h.row -> 'habits') IS NOT DISTINCT FROM (l.request_data -> 'habits') END),

        """

    /// One `idempotency_log` row per change (the seed's operation names), drift for the
    /// rows that cannot be projected and, in shadow mode, for every difference between the
    /// batch's projections and the new schema, from one read of the staged rows. A week's id
    /// is looked up by its index for each change, not by joining (and so scanning) every week.
    static func finish(comparing: Bool) -> String {
        let current = "habit_tracker_id IN (SELECT habit_tracker_id FROM current_rows)"
        let differences = comparing
            ? currentRows + HabitDifferences.ctes(
                expected: HabitDifferences.Expected(
                    weeks: "(SELECT * FROM pg_temp.staged_weeks WHERE \(current))",
                    habits: "(SELECT * FROM pg_temp.staged_habits WHERE \(current))",
                    records: "(SELECT * FROM pg_temp.staged_records WHERE \(current))"),
                actualScope: current) + ",\n"
            : ""
        let compared = comparing
            ? """

                UNION ALL
                SELECT d.habit_tracker_id, f.source_lsn, d.kind, d.detail, d.expected, d.actual
                FROM differences d LEFT JOIN pg_temp.dual_write_final f USING (habit_tracker_id)
                """
            : ""
        return """
            WITH \(differences)staged AS MATERIALIZED (SELECT * FROM pg_temp.dual_write_staged),
            logged AS (
                INSERT INTO public.idempotency_log (key, operation, request_data, response_data, status, created_at, expires_at)
                SELECT s.idempotency_key,
                       CASE s.operation WHEN 'INSERT' THEN 'create_week' WHEN 'UPDATE' THEN 'update_habit_record'
                            ELSE 'delete_week' END,
                       s.request_data,
                       CASE WHEN s.problem IS NOT NULL THEN jsonb_build_object('error', s.problem)
                            WHEN s.mode = 'apply' AND s.operation = 'DELETE' THEN jsonb_build_object('deleted', true)
                            WHEN s.mode = 'apply' THEN jsonb_build_object('week_id', (
                                SELECT w.id FROM public.weeks w WHERE w.source_habit_tracker_id = s.habit_tracker_id)) END,
                       CASE WHEN s.problem IS NOT NULL THEN 'failed' WHEN s.mode = 'log' THEN 'not_implemented'
                            WHEN s.mode = 'shadow' THEN 'shadow' ELSE 'success' END,
                       now(), now() + interval '24 hours'
                FROM staged s
                ORDER BY s.seq
                ON CONFLICT (key) DO UPDATE
                SET response_data = EXCLUDED.response_data, status = EXCLUDED.status, expires_at = EXCLUDED.expires_at
                WHERE idempotency_log.status IN ('not_implemented', 'shadow') AND EXCLUDED.status IN ('success', 'failed')),
            drift AS (
                INSERT INTO changerelay.dual_write_drift (habit_tracker_id, source_lsn, kind, detail, expected, actual)
                SELECT habit_tracker_id, source_lsn, 'invalid_source', problem, NULL, NULL
                FROM staged WHERE problem IS NOT NULL\(compared)
                RETURNING kind)
            SELECT kind, count(*)::text AS count FROM drift GROUP BY kind
            """
    }
}
