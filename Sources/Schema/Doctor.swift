import RelayConfiguration
import Core
import Replication

/// One thing `doctor` checked: fine, or a problem with the statement that fixes it. A
/// warning is a problem that does not keep ChangeRelay from working (a slot kept on purpose
/// that retains a lot of WAL): printed with its fix, but not a reason to exit non-zero.
public struct Finding: Sendable, CustomStringConvertible {
    public var check: String
    public var problem: String?
    public var fix: String?
    public var detail: String
    public var isWarning = false

    static func ok(_ check: String, _ detail: String) -> Finding {
        Finding(check: check, problem: nil, fix: nil, detail: detail)
    }

    static func problem(_ check: String, _ problem: String, fix: String) -> Finding {
        Finding(check: check, problem: problem, fix: fix, detail: "")
    }

    static func warning(_ check: String, _ problem: String, fix: String) -> Finding {
        Finding(check: check, problem: problem, fix: fix, detail: "", isWarning: true)
    }

    public var isProblem: Bool { problem != nil && !isWarning }

    public var description: String {
        guard let problem else { return "ok       \(check): \(detail)" }
        return (isWarning ? "WARNING  " : "PROBLEM  ") + "\(check): \(problem)\n         fix: \(fix ?? "")"
    }
}

/// The checks behind `changerelay doctor`: what the source database needs for
/// ChangeRelay to read it without losing changes or filling the disk with WAL.
public struct Doctor {
    public var slot: String
    public var plugin: Config.Plugin
    public var publication: String
    /// The service's role; nil: the role doctor connects as (the service's own URL), or
    /// `changerelay`, the role setup creates, when that is a superuser.
    public var role: String?
    /// An inactive slot holding back more WAL than this is a problem.
    public var maxRetainedBytes: Int64

    public init(slot: String, plugin: Config.Plugin, publication: String, role: String? = nil,
                maxRetainedBytes: Int64 = 1 << 30) {
        self.slot = slot
        self.plugin = plugin
        self.publication = publication
        self.role = role
        self.maxRetainedBytes = maxRetainedBytes
    }

    /// `state`: the state database, when it is not the source.
    public func run(on db: PostgresConnection, state: PostgresConnection? = nil) throws(PostgresError) -> [Finding] {
        var findings = try serverSettings(db)
        findings.append(try migrations(state ?? db))
        findings.append(try pluginAvailability(db))
        if plugin == .wal2json { findings += [try schemaHistory(db), try publicationHistory(db)] }
        findings += try publicationMembership(db)
        findings += try replicaIdentity(db)
        findings += try privileges(db)
        findings += try slots(db, state: state ?? db)
        return findings
    }

    /// The problems of what the handlers read: their tables in the publication, reported
    /// under names they follow, with the old rows they compare. `run` warns of each at start:
    /// without them changes are skipped or fire twice, which only `doctor` said before.
    public func handlerPrerequisites(on db: PostgresConnection) throws(PostgresError) -> [Finding] {
        try (publicationMembership(db) + replicaIdentity(db)).filter(\.isProblem)
    }

    func setting(_ name: String, _ db: PostgresConnection) throws(PostgresError) -> String? {
        try db.query("SELECT setting FROM pg_settings WHERE name = $1", [name]).value("setting")
    }

    func serverSettings(_ db: PostgresConnection) throws(PostgresError) -> [Finding] {
        var findings: [Finding] = []
        let walLevel = try setting("wal_level", db) ?? "?"
        findings.append(walLevel == "logical"
            ? .ok("wal_level", "logical")
            : .problem("wal_level", "wal_level is \(walLevel); logical decoding needs logical",
                       fix: "ALTER SYSTEM SET wal_level = logical; -- then restart Postgres"))
        let counts = try db.execute("""
            SELECT (SELECT count(*) FROM pg_replication_slots) AS slots,
                   current_setting('max_replication_slots')::int AS max_slots,
                   (SELECT count(*) FROM pg_stat_replication) AS senders,
                   current_setting('max_wal_senders')::int AS max_senders
            """)
        let slots = Int(counts.value("slots") ?? "") ?? 0, maxSlots = Int(counts.value("max_slots") ?? "") ?? 0
        let senders = Int(counts.value("senders") ?? "") ?? 0, maxSenders = Int(counts.value("max_senders") ?? "") ?? 0
        let slotMissing = try slotRow(db) == nil ? 1 : 0
        findings.append(slots + slotMissing <= maxSlots
            ? .ok("max_replication_slots", "\(slots) of \(maxSlots) used")
            : .problem("max_replication_slots", "\(slots) of \(maxSlots) slots used, no room for '\(slot)'",
                       fix: "ALTER SYSTEM SET max_replication_slots = \(max(10, slots + 4)); -- then restart Postgres"))
        findings.append(senders < maxSenders
            ? .ok("max_wal_senders", "\(senders) of \(maxSenders) used")
            : .problem("max_wal_senders", "\(senders) of \(maxSenders) WAL senders busy",
                       fix: "ALTER SYSTEM SET max_wal_senders = \(max(10, senders + 4)); -- then restart Postgres"))
        return findings
    }

    /// The migrations running code names (`RequiredMigration`): a database `run` or `replay`
    /// would refuse passed here before, with "no problems found".
    func migrations(_ db: PostgresConnection) throws(PostgresError) -> Finding {
        var missing: [String] = []
        do {
            for migration in RequiredMigration.allCases where try !migration.isApplied(on: db) {
                missing.append("sql/" + migration.file)
            }
        } catch where error.sqlState == "42501" {
            // A role without USAGE on the schema cannot look its tables up; the privileges
            // check says what it lacks.
            return .warning("migrations", "cannot be checked as this role: \(error.message)",
                            fix: "run doctor as the service's role once it has its grants, or as a superuser")
        }
        guard !missing.isEmpty else { return .ok("migrations", "every migration the service needs is applied") }
        return .problem("migrations", "not applied: \(missing.sorted().joined(separator: ", "))",
                        fix: "changerelay setup, as a superuser (or the database's owner): it applies every missing file in order")
    }

    func pluginAvailability(_ db: PostgresConnection) throws(PostgresError) -> Finding {
        guard plugin == .wal2json else { return .ok("plugin", "pgoutput is built in") }
        if let allowed = try setting("output_plugin_libraries", db),
           !allowed.split(separator: ",").contains(where: { $0.trimmingCharacters() == "wal2json" }) {
            return .problem("plugin", "output_plugin_libraries (\(allowed)) does not allow wal2json",
                            fix: "ALTER SYSTEM SET output_plugin_libraries = '\(allowed), wal2json'; -- then restart Postgres")
        }
        let existing = try db.execute("SELECT 1 FROM pg_replication_slots WHERE plugin = 'wal2json' LIMIT 1")
        if !existing.rows.isEmpty { return .ok("plugin", "wal2json is in use by an existing slot") }
        guard try setting("wal_level", db) == "logical" else {
            return .problem("plugin", "cannot check wal2json until wal_level is logical",
                            fix: "ALTER SYSTEM SET wal_level = logical; -- then restart Postgres")
        }
        // Creating a slot waits for every running transaction to end: bound the wait.
        do {
            try db.execute("""
                BEGIN;
                SET LOCAL statement_timeout = '5s';
                SELECT pg_drop_replication_slot(slot_name)
                FROM pg_create_logical_replication_slot('changerelay_doctor_probe', 'wal2json', true);
                COMMIT;
                """)
            return .ok("plugin", "wal2json loads")
        } catch where error.sqlState == "57014" {
            _ = try? db.execute("ROLLBACK")
            return .problem("plugin", "could not verify wal2json: creating a probe slot waited more than 5 s for running transactions",
                            fix: "end long-running transactions (pg_stat_activity), then run doctor again")
        } catch {
            _ = try? db.execute("ROLLBACK")
            return .problem("plugin", "wal2json cannot be loaded: \(error.message)",
                            fix: "apt-get install postgresql-15-wal2json -- on the database host")
        }
    }

    /// wal2json names neither dropped nor generated columns nor a partition's root as of the
    /// change: without the history the decoder uses today's catalog for older changes.
    func schemaHistory(_ db: PostgresConnection) throws(PostgresError) -> Finding {
        let state = try db.execute("""
            SELECT to_regclass('changerelay.schema_history') IS NOT NULL AS has_table,
                   (SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'changerelay_schema_history') AS trigger,
                   (SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'changerelay_schema_drops') AS drops
            """)
        let hasTable = state.value("has_table") == "t"
        let trigger = state.value("trigger")
        if !hasTable || trigger == nil || trigger == "D" {
            let what = !hasTable ? "changerelay.schema_history does not exist"
                : trigger == nil ? "the event trigger changerelay_schema_history does not exist"
                : "the event trigger changerelay_schema_history is disabled"
            return .problem("schema history", what + "; wal2json changes read after an ALTER TABLE are laid out with today's columns "
                                + "(phantom unchanged TOAST columns, misplaced or missing ones) and a partition attached or "
                                + "detached since is reported under today's root",
                            fix: "apply sql/010_schema_history.sql as a superuser (changerelay setup does)")
        }
        // 034: cascaded column drops, ALTER VIEW renames, and sessions replicating as replica.
        let drops = state.value("drops")
        guard trigger == "A", drops == "A" else {
            let what = drops == nil ? "the event trigger changerelay_schema_drops does not exist"
                : drops != "A" ? "the event trigger changerelay_schema_drops does not fire in every session (evtenabled \(drops!))"
                : "the event trigger changerelay_schema_history does not fire in every session (evtenabled \(trigger!))"
            return .problem("schema history", what + "; a column dropped by DROP TYPE, DROP DOMAIN or DROP EXTENSION ... CASCADE, "
                                + "a rename through ALTER VIEW or ALTER INDEX, or DDL run with session_replication_role = replica "
                                + "is not recorded, and wal2json changes read after it are laid out with the older columns",
                            fix: "apply sql/034_schema_history_drops.sql as a superuser (changerelay setup does)")
        }
        return .ok("schema history", "DDL is recorded; wal2json changes are laid out with the columns of their time")
    }

    /// wal2json publishes every table: without the history the decoder decides by the
    /// publication as it was when the service connected.
    func publicationHistory(_ db: PostgresConnection) throws(PostgresError) -> Finding {
        let state = try db.execute("""
            SELECT to_regclass('changerelay.publication_history') IS NOT NULL AS has_table,
                   (SELECT evtenabled FROM pg_event_trigger WHERE evtname = 'changerelay_publication_history') AS trigger
            """)
        let what: String
        switch (state.value("has_table"), state.value("trigger")) {
        case (let table, _) where table != "t": what = "changerelay.publication_history does not exist"
        case (_, nil): what = "the event trigger changerelay_publication_history does not exist"
        case (_, "D"): what = "the event trigger changerelay_publication_history is disabled"
        default: return .ok("publication history", "ALTER PUBLICATION is recorded; wal2json changes are published as of their time")
        }
        return .problem("publication history", what + "; wal2json changes are published by the publication as it was when "
                            + "the service connected: a table dropped from it or a changed publish setting counts only from "
                            + "a restart, and a backlog or a replay is decided by today's publication",
                        fix: "apply sql/028_publication_history.sql as a superuser (changerelay setup does)")
    }

    func publicationMembership(_ db: PostgresConnection) throws(PostgresError) -> [Finding] {
        let exists = try db.query("SELECT 1 AS found FROM pg_publication WHERE pubname = $1", [publication])
        guard !exists.rows.isEmpty else {
            return [.problem("publication", "publication \(publication) does not exist",
                             fix: "changerelay setup -- or CREATE PUBLICATION \(quoteIdentifier(publication)) FOR TABLE "
                                + SeedTables.published.map { table in table + (SeedTables.rowFilters[table].map { " WHERE (\($0))" } ?? "") }
                                    .joined(separator: ", ") + ";")]
        }
        // A partitioned table published without publish_via_partition_root shows in
        // pg_publication_tables as its partitions, and its changes are reported under their
        // names, which no handler follows: it is a member (adding it again fails), but not
        // one whose changes reach a handler.
        let members = Set(try db.query("""
            SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'public'
            UNION
            SELECT c.relname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
            JOIN pg_class c ON c.oid = r.prrelid
            WHERE p.pubname = $1 AND c.relnamespace = 'public'::regnamespace
            """, [publication]).rows.compactMap { $0[0] })
        let viaRoot = try db.query("SELECT pubviaroot FROM pg_publication WHERE pubname = $1", [publication])
            .value("pubviaroot") == "t"
        let tables = Dictionary(try db.query(
            "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r','p') AND relname = ANY($1)",
            [postgresArray(SeedTables.published)]).rows.compactMap { row in row[0].map { ($0, row[1] ?? "r") } },
            uniquingKeysWith: { first, _ in first })
        return SeedTables.published.map { table in
            guard let kind = tables[table] else {
                return .problem("publication", "table public.\(table) does not exist", fix: "changerelay setup")
            }
            guard members.contains(table) else {
                return .problem("publication", "public.\(table) is not in publication \(publication); its changes are never sent",
                                fix: "ALTER PUBLICATION \(quoteIdentifier(publication)) ADD TABLE public.\(table)"
                                    + (SeedTables.rowFilters[table].map { " WHERE (\($0))" } ?? "") + ";")
            }
            if kind == "p" && !viaRoot {
                return .problem("publication", "public.\(table) is partitioned and \(publication) publishes its changes under "
                                    + "the partitions' names, which no handler follows",
                                fix: "ALTER PUBLICATION \(quoteIdentifier(publication)) SET (publish_via_partition_root = true);")
            }
            return .ok("publication", "public.\(table) is in \(publication)")
        }
    }

    func replicaIdentity(_ db: PostgresConnection) throws(PostgresError) -> [Finding] {
        // A partitioned table's partitions log their own old rows: the root's FULL does not
        // reach them, and a handler then gets no old row from a change to one.
        let rows = try db.query("""
            SELECT format('%I.%I', p.schemaname, p.tablename), p.schemaname, c.relname, c.relreplident,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
                   (SELECT string_agg(format('%I.%I', n.nspname, pc.relname), ', ' ORDER BY n.nspname, pc.relname)
                    FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid
                    JOIN pg_namespace n ON n.oid = pc.relnamespace
                    WHERE t.relid <> c.oid AND pc.relkind IN ('r', 'p') AND pc.relreplident <> 'f') AS partitions_not_full
            FROM pg_publication_tables p
            JOIN pg_namespace pn ON pn.nspname = p.schemaname
            JOIN pg_class c ON c.relname = p.tablename AND c.relnamespace = pn.oid
            WHERE p.pubname = $1 ORDER BY p.schemaname, c.relname
            """, [publication]).rows
        return rows.map { row in
            // Quoted as an identifier: a name with a quote, a dot or a line break stays one name.
            let table = row[0] ?? "?", identity = row[3] ?? "d", hasKey = row[4] == "t"
            if row[1] == "public", let name = row[2], SeedTables.needFullIdentity.contains(name) {
                let partitions = row[5].map { $0.split(separator: ", ").map(String.init) } ?? []
                let lacking = (identity == "f" ? [] : [table]) + partitions
                if !lacking.isEmpty {
                    let subject = lacking.joined(separator: ", ") + (lacking.count == 1 ? " needs" : " need")
                    return .problem("replica identity",
                                    "\(subject) REPLICA IDENTITY FULL (handlers compare old and new values)"
                                        + (partitions.isEmpty ? "" : "; each partition of \(table) logs its own old rows"),
                                    fix: lacking.map { "ALTER TABLE \($0) REPLICA IDENTITY FULL;" }.joined(separator: " "))
                }
            }
            if identity == "n" || (identity == "d" && !hasKey) {
                return .problem("replica identity", "\(table) has no replica identity; its UPDATEs and DELETEs fail while it is published",
                                fix: hasKey ? "ALTER TABLE \(table) REPLICA IDENTITY DEFAULT;"
                                    : "ALTER TABLE \(table) ADD PRIMARY KEY (...); -- or REPLICA IDENTITY FULL")
            }
            let name = ["f": "full", "d": "primary key", "i": "index"][identity] ?? identity
            return .ok("replica identity", "\(table): \(name)")
        }
    }

    /// The role doctor connects as (with the service's own URL, the service's), or the
    /// `changerelay` role setup creates when that is a superuser, for whom every check passes.
    func serviceRole(_ db: PostgresConnection) throws(PostgresError) -> String {
        try db.execute("""
            SELECT CASE WHEN rolsuper THEN 'changerelay' ELSE rolname END AS role FROM pg_roles WHERE rolname = current_user
            """).value("role") ?? "changerelay"
    }

    func privileges(_ db: PostgresConnection) throws(PostgresError) -> [Finding] {
        let role: String
        if let configured = self.role { role = configured } else { role = try serviceRole(db) }
        let quotedRole = quoteIdentifier(role)
        let roleRow = try db.query("SELECT rolreplication, rolcanlogin FROM pg_roles WHERE rolname = $1", [role])
        guard !roleRow.rows.isEmpty else {
            return [.problem("role", "role \(role) does not exist", fix: "changerelay setup")]
        }
        var findings: [Finding] = []
        findings.append(roleRow.value("rolreplication") == "t"
            ? .ok("role", "\(role) has REPLICATION")
            : .problem("role", "role \(role) lacks REPLICATION", fix: "ALTER ROLE \(quotedRole) REPLICATION;"))
        // By oid: a table's name, resolved for the check, made Postgres evaluate it over
        // pg_class (pg_toast included), and a role without access to pg_toast got an error
        // instead of a report.
        // A table is read through its schema: SELECT on it without USAGE on the schema still
        // fails (a backfill said there was no such table).
        let unreadable = try db.query("""
            SELECT format('%I.%I', t.schemaname, t.tablename), format('%I', t.schemaname),
                   has_schema_privilege($2, n.oid, 'USAGE') AS usage
            FROM pg_publication_tables t
            JOIN pg_namespace n ON n.nspname = t.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
            WHERE t.pubname = $1 AND NOT (has_table_privilege($2, c.oid, 'SELECT') AND has_schema_privilege($2, n.oid, 'USAGE'))
            ORDER BY 1
            """, [publication, role]).rows
        let tables = unreadable.compactMap { $0[0] }
        let schemas = Set(unreadable.filter { $0[2] != "t" }.compactMap { $0[1] }).sorted()
        let grants = (schemas.isEmpty ? [] : ["GRANT USAGE ON SCHEMA " + schemas.joined(separator: ", ") + " TO \(quotedRole);"])
            + ["GRANT SELECT ON " + tables.joined(separator: ", ") + " TO \(quotedRole);"]
        findings.append(tables.isEmpty
            ? .ok("privileges", "\(role) can read every published table")
            : .problem("privileges", "\(role) cannot SELECT \(tables.joined(separator: ", "))"
                           + (schemas.isEmpty ? "" : " (no USAGE on schema \(schemas.joined(separator: ", ")))"),
                       fix: grants.joined(separator: " ")))
        let schemaUsage = try db.query("""
            SELECT has_schema_privilege($1, 'changerelay', 'USAGE') AND has_schema_privilege($1, 'changerelay', 'CREATE') AS ok
            FROM pg_namespace WHERE nspname = 'changerelay'
            """, [role])
        findings.append(schemaUsage.value("ok") == "t"
            ? .ok("privileges", "\(role) can write its schema changerelay")
            : .problem("privileges", "\(role) cannot use schema changerelay", fix: "changerelay setup -- or GRANT ALL ON SCHEMA changerelay TO \(quotedRole);"))
        findings.append(try writableTables(role: role, quotedRole: quotedRole, db))
        if let missing = try updatedColumnsMissing(db) { findings.append(missing) }
        return findings
    }

    /// The tables the service writes: its own (`changerelay.*`, and their sequences), the
    /// seed's effect and log tables that exist and the sequences that number their rows (an
    /// identity's, or one the id's default takes values from: the webhook fan-out reserves
    /// its log rows' ids with the default), and the columns it updates in tables
    /// it otherwise only reads. Usage of the schema alone passed here while `run` stopped at
    /// its first batch, denied a table; a role without the update of `webhook_configs` that a
    /// 410 makes could record no try at all, and sent each again at every restart. Each
    /// privilege is asked apart: given a list, `has_table_privilege` is true when any one of
    /// them is held.
    func writableTables(role: String, quotedRole: String, _ db: PostgresConnection) throws(PostgresError) -> Finding {
        let denied = try db.query("""
            WITH seed AS (
                SELECT format('public.%I', t) AS name FROM unnest($2::text[]) t
                WHERE to_regclass(format('public.%I', t)) IS NOT NULL),
            seed_sequences AS (
                SELECT CASE WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = s.name::regclass AND a.attname = 'id'
                                                                    AND NOT a.attisdropped)
                            THEN pg_get_serial_sequence(s.name, 'id') END AS name
                FROM seed s),
            default_sequences AS (
                SELECT d.refobjid AS oid FROM seed s
                JOIN pg_attribute a ON a.attrelid = s.name::regclass AND a.attname = 'id' AND NOT a.attisdropped
                JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                                AND d.refclassid = 'pg_class'::regclass)
            SELECT format('%I.%I', n.nspname, c.relname), c.relkind = 'S' AS sequence
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE ((n.nspname = 'changerelay' AND c.relkind IN ('r', 'p', 'S'))
                   OR (n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($2))
                   OR c.oid IN (SELECT name::regclass FROM seed_sequences WHERE name IS NOT NULL)
                   OR (c.relkind = 'S' AND c.oid IN (SELECT oid FROM default_sequences)))
              AND NOT CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, 'USAGE')
                           ELSE has_table_privilege($1, c.oid, 'SELECT') AND has_table_privilege($1, c.oid, 'INSERT')
                                AND has_table_privilege($1, c.oid, 'UPDATE') AND has_table_privilege($1, c.oid, 'DELETE') END
            ORDER BY 1
            """, [role, postgresArray(SeedTables.written)]).rows
        let columns = try db.query("""
            SELECT format('public.%I', u.name), string_agg(quote_ident(u.column_name), ', ' ORDER BY u.ordinal)
            FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(name, column_name, ordinal)
            JOIN pg_attribute a ON a.attrelid = to_regclass(format('public.%I', u.name)) AND a.attname = u.column_name
                               AND NOT a.attisdropped
            WHERE NOT has_column_privilege($1, a.attrelid, a.attnum, 'UPDATE')
            GROUP BY u.name ORDER BY 1
            """, [role, postgresArray(SeedTables.columnsUpdated.map(\.table)),
                  postgresArray(SeedTables.columnsUpdated.map(\.column))]).rows
        guard !denied.isEmpty || !columns.isEmpty else { return .ok("privileges", "\(role) can write the tables it keeps") }
        let tables = denied.filter { $0[1] != "t" }.compactMap { $0[0] }
        let sequences = denied.filter { $0[1] == "t" }.compactMap { $0[0] }
        let updates = columns.compactMap { row in row[0].flatMap { table in row[1].map { (table, $0) } } }
        var grants: [String] = []
        if !tables.isEmpty { grants.append("GRANT SELECT, INSERT, UPDATE, DELETE ON \(tables.joined(separator: ", ")) TO \(quotedRole);") }
        if !sequences.isEmpty { grants.append("GRANT USAGE ON SEQUENCE \(sequences.joined(separator: ", ")) TO \(quotedRole);") }
        grants += updates.map { "GRANT UPDATE (\($0.1)) ON \($0.0) TO \(quotedRole);" }
        let named = tables + sequences + updates.map { "\($0.0) (\($0.1))" }
        return .problem("privileges", "\(role) cannot write \(named.joined(separator: ", "))",
                        fix: (role == "changerelay" ? "changerelay setup -- or " : "") + grants.joined(separator: " "))
    }

    /// The columns the handlers update in tables they otherwise only read, when the table is
    /// there without one: every try's record sets a config a 410 made gone inactive, so a
    /// `webhook_configs` without `updated_at` left every try unrecorded, sent again at each
    /// restart, while the privilege check, which looks only at columns that exist, passed.
    func updatedColumnsMissing(_ db: PostgresConnection) throws(PostgresError) -> Finding? {
        let missing = try db.query("""
            SELECT format('public.%I', u.name) || '.' || quote_ident(u.column_name)
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(name, column_name, ordinal)
            WHERE to_regclass(format('public.%I', u.name)) IS NOT NULL
              AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = to_regclass(format('public.%I', u.name))
                                                           AND a.attname = u.column_name AND NOT a.attisdropped)
            ORDER BY u.ordinal
            """, [postgresArray(SeedTables.columnsUpdated.map(\.table)),
                  postgresArray(SeedTables.columnsUpdated.map(\.column))]).rows.compactMap { $0[0] }
        guard !missing.isEmpty else { return nil }
        return .problem("tables", "the service updates \(missing.joined(separator: ", ")), which "
                            + (missing.count == 1 ? "does" : "do") + " not exist: every try's record (or every buffer) fails on it",
                        fix: "add the column back as sql/002_application_tables.sql defines it")
    }

    func slotRow(_ db: PostgresConnection) throws(PostgresError) -> [String: String?]? {
        let result = try db.query("""
            SELECT plugin, active, wal_status, safe_wal_size, database,
                   database IS DISTINCT FROM current_database() AS elsewhere,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag
            FROM pg_replication_slots WHERE slot_name = $1
            """, [slot])
        guard let row = result.rows.first else { return nil }
        return Dictionary(uniqueKeysWithValues: zip(result.columns, row))
    }

    func slots(_ db: PostgresConnection, state: PostgresConnection) throws(PostgresError) -> [Finding] {
        var findings: [Finding] = []
        if let row = try slotRow(db) {
            let lag = Int64((row["lag"] ?? nil) ?? "0") ?? 0
            let retained = Int64((row["retained"] ?? nil) ?? "0") ?? 0
            let walStatus = (row["wal_status"] ?? nil) ?? "?"
            let active = row["active"] == "t"
            let plugin = (row["plugin"] ?? nil) ?? "?"
            if row["elsewhere"] == "t" {
                let database = (row["database"] ?? nil) ?? "none (a physical slot)"
                findings.append(.problem("slot", "slot \(slot) belongs to database \(database), not this one; the stream would be refused",
                                         fix: "-- set source.slot to another name, then changerelay setup"))
                return findings + (try retainingSlots(db, state: state))
            }
            if plugin != self.plugin.rawValue {
                findings.append(.problem("slot", "slot \(slot) uses \(plugin), configured plugin is \(self.plugin.rawValue)",
                                         fix: "SELECT pg_drop_replication_slot('\(slot)'); -- then changerelay setup"))
            }
            if walStatus == "lost" {
                findings.append(.problem("slot", "slot \(slot) lost WAL it needed (wal_status = lost); changes were skipped",
                                         fix: "SELECT pg_drop_replication_slot('\(slot)'); -- then changerelay setup and a backfill"))
            } else if walStatus == "unreserved" {
                findings.append(.problem("slot", "slot \(slot) is about to lose WAL it needs (wal_status = unreserved, lag \(lag) bytes)",
                                         fix: "start changerelay run at once -- or raise max_slot_wal_keep_size"))
            } else if !active && retained > maxRetainedBytes {
                findings.append(.problem("slot", "slot \(slot) is inactive and retains \(retained) bytes of WAL (lag \(lag) bytes, safe_wal_size \((row["safe_wal_size"] ?? nil) ?? "unlimited"))",
                                         fix: "start changerelay run -- or, if it is gone for good, SELECT pg_drop_replication_slot('\(slot)');"))
            } else {
                findings.append(.ok("slot", "\(slot): \(active ? "active" : "inactive"), wal_status \(walStatus), lag \(lag) bytes"))
            }
        } else {
            findings.append(.problem("slot", "slot \(slot) does not exist", fix: "changerelay setup"))
        }
        findings += try retainingSlots(db, state: state)
        return findings
    }

    /// Every other slot that holds back more WAL than `maxRetainedBytes`: a replay slot kept
    /// since a migration, a forgotten one, a reader that lags. Each fills the disk for as long
    /// as it stays, and `max_slot_wal_keep_size` (when set) invalidates it past that size, so
    /// it is worth a warning with the way out; it does not stop ChangeRelay working.
    ///
    /// The way out is one that works: replay refuses a slot of another database, one of the
    /// other plugin unless told it, and one whose checkpoint `run` wrote (a service's,
    /// configured with another `source.slot`: that service, or dropping both).
    func retainingSlots(_ db: PostgresConnection, state: PostgresConnection) throws(PostgresError) -> [Finding] {
        let rows = try db.query("""
            SELECT slot_name, slot_type, active, active_pid::text,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text,
                   database, plugin, database IS NOT DISTINCT FROM current_database() AS here
            FROM pg_replication_slots
            WHERE slot_name <> $1 AND NOT temporary
              AND pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) > $2::bigint
            ORDER BY slot_name
            """, [slot, String(maxRetainedBytes)]).rows
        return try rows.map { row throws(PostgresError) in
            let name = row[0] ?? "?", logical = row[1] == "logical", active = row[2] == "t"
            let drop = "SELECT pg_drop_replication_slot(\(quoteLiteral(name)));"
            let fix = if active {
                "its reader (process \(row[3] ?? "?")) is behind: let it catch up (a replay: let it finish), or stop it and \(drop)"
            } else if logical, row[7] != "t" {
                "it is a slot of database \(row[5] ?? "?"), which changerelay replay does not read: connected to that "
                    + "database, \(drop) if nothing will read it"
            } else if logical, try Self.checkpointWriter(of: name, on: state) == "run" {
                "it is a service's slot (changerelay run wrote its checkpoint): start the service that reads it, or, if none "
                    + "will, \(drop) and DELETE FROM changerelay.checkpoints WHERE slot_name = \(quoteLiteral(name));"
            } else if logical, let other = row[6], other != plugin.rawValue {
                "CHANGERELAY_SOURCE_PLUGIN=\(other) changerelay replay --slot \(name) (reads it to the end, so it lets the WAL "
                    + "go; the slot uses \(other)), or \(drop) if nothing will read it"
            } else if logical {
                "changerelay replay --slot \(name) (reads it to the end, so it lets the WAL go), or \(drop) if nothing will read it"
            } else {
                "\(drop) -- if no standby uses it any more"
            }
            return .warning("slot", "slot \(name) (\(active ? "active" : "inactive"), \(row[1] ?? "?")) retains \(row[4] ?? "?") bytes "
                                + "of WAL, more than --max-retained-bytes \(maxRetainedBytes)", fix: fix)
        }
    }

    /// Who wrote `slot`'s checkpoint last (032's `written_by`: `run` or `replay`); nil for none,
    /// and on a state database without the table or the column.
    static func checkpointWriter(of slot: String, on state: PostgresConnection) throws(PostgresError) -> String? {
        do {
            return try state.query("SELECT written_by FROM changerelay.checkpoints WHERE slot_name = $1", [slot]).value("written_by")
        } catch where ["42P01", "42703", "3F000"].contains(error.sqlState) {
            return nil
        }
    }
}

func postgresArray(_ names: [String]) -> String {
    "{" + names.map { "\"\($0)\"" }.joined(separator: ",") + "}"
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
