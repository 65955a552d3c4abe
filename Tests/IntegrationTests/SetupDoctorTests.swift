import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

@Suite struct SetupDoctorTests {
    static func environment(_ cluster: LocalPostgres, _ extra: [String: String] = [:]) -> [String: String] {
        ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url].merging(extra) { $1 }
    }

    @Test func setupTwiceSucceedsAndDoctorIsHappy() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let first = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("created slot changerelay"))
        // Progress on stderr, plain lines when it is no terminal: the first migration at once, and the count at the end.
        #expect(first.stderr.contains("setup: 0 migrations of ") && first.stderr.contains("applying 001_changerelay_schema.sql"),
                "\(first.stderr)")
        #expect(first.stderr.contains(try #require(first.stdout.firstMatch(of: /applied (\d+) migrations/)).1 + " migrations applied"))
        let second = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("slot changerelay already exists"))
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
        #expect(doctor.stdout.contains("no problems found"))
        #expect(doctor.stdout.contains("ok       migrations: every migration the service needs is applied"))

        // A migration rolled back is named, as `run` would name it when it refuses to start.
        let db = try cluster.connect()
        for file in ["032_checkpoint_writers", "031_ordering_across_key_changes"] {
            try db.execute(try String(contentsOfFile: repositoryRoot + "/sql/\(file).rollback.sql", encoding: .utf8))
        }
        let missing = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(missing.status == 1)
        #expect(missing.stdout.contains(
            "migrations: not applied: sql/031_ordering_across_key_changes.sql, sql/032_checkpoint_writers.sql"), "\(missing.stdout)")
        #expect(missing.stdout.contains("fix: changerelay setup, as a superuser"))
        let run = try runChangeRelay(["run"], environment: Self.environment(cluster), timeout: .seconds(60))
        #expect(run.status != 0 && run.stderr.contains("run changerelay setup as a superuser"), "\(run.stderr.suffix(2000))")
    }

    /// A configured publication of another name gets changerelay_pub's tables, row filter
    /// included, and doctor is then happy with it: before, setup made only changerelay_pub.
    @Test func setupMakesTheConfiguredPublicationWithTheSameTables() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let environment = Self.environment(cluster, ["CHANGERELAY_SOURCE_PUBLICATION": "other_pub",
                                                     "CHANGERELAY_SOURCE_SLOT": "other_slot"])
        let setup = try runChangeRelay(["setup"], environment: environment)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(setup.stdout.contains("publication other_pub: added "), "\(setup.stdout)")
        let db = try cluster.connect()
        let compared = try db.execute("""
            SELECT (SELECT count(*) FROM pg_publication_tables WHERE pubname = 'other_pub') AS other,
                   (SELECT count(*) FROM pg_publication_tables WHERE pubname = 'changerelay_pub') AS default,
                   (SELECT rowfilter FROM pg_publication_tables
                    WHERE pubname = 'other_pub' AND tablename = 'automation_execution_logs') AS filter
            """)
        #expect(compared.value("other") == compared.value("default") && compared.value("other") != "0")
        #expect(compared.value("filter")?.contains("completed") == true)
        let again = try runChangeRelay(["setup"], environment: environment)
        #expect(again.stdout.contains("publication other_pub: has every table of changerelay_pub"), "\(again.stdout)")
        let doctor = try runChangeRelay(["doctor"], environment: environment)
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")

        // A name in capitals is the publication's name as written, for setup and the stream alike.
        let capitals = Self.environment(cluster, ["CHANGERELAY_SOURCE_PUBLICATION": "MyPub", "CHANGERELAY_SOURCE_SLOT": "capitals"])
        let missing = try runChangeRelay(["doctor"], environment: capitals)
        #expect(missing.stdout.contains(#"CREATE PUBLICATION "MyPub" FOR TABLE user_conversations, "#), "\(missing.stdout)")
        #expect(try runChangeRelay(["setup"], environment: capitals).status == 0)
        try db.execute("SELECT pg_create_logical_replication_slot('capitals_tail', 'pgoutput')")
        try db.execute("INSERT INTO chat_sessions (user_id) VALUES (gen_random_uuid())")
        let tail = try runChangeRelay(["tail", "--slot", "capitals_tail", "--limit", "1"], environment: capitals, timeout: .seconds(60))
        #expect(tail.status == 0 && tail.stdout.contains(#""table":"chat_sessions""#), "\(tail.stdout)\(tail.stderr)")
    }

    /// A migrations folder named on purpose is used or refused, never passed over for another.
    @Test func aNamedMigrationsFolderWithoutMigrationsIsRefused() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("sql-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        for (arguments, extra) in [(["setup"], ["CHANGERELAY_SQL_DIR": empty + "/missing"]),
                                   (["setup", "--sql-dir", empty], [:])] {
            let result = try runChangeRelay(arguments, environment: Self.environment(cluster, extra))
            #expect(result.status == 1, "\(arguments) \(extra): \(result.stdout)")
            #expect(result.stderr.contains("001_changerelay_schema.sql"), "\(result.stderr)")
        }
        let tables = try cluster.connect().execute("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'changerelay'")
        #expect(tables.value("n") == "0", "nothing was applied")
    }

    @Test func setupWithWal2jsonCreatesAWal2jsonSlot() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let environment = Self.environment(cluster, ["CHANGERELAY_SOURCE_PLUGIN": "wal2json"])
        let setup = try runChangeRelay(["setup"], environment: environment)
        #expect(setup.status == 0, "\(setup.stderr)")
        let plugin = try cluster.connect().execute("SELECT plugin FROM pg_replication_slots WHERE slot_name = 'changerelay'")
        #expect(plugin.value("plugin") == "wal2json")
        let doctor = try runChangeRelay(["doctor"], environment: environment)
        #expect(doctor.status == 0, "\(doctor.stdout)")
        #expect(doctor.stdout.contains("ok       plugin: wal2json is in use by an existing slot"))
        #expect(doctor.stdout.contains("ok       schema history: DDL is recorded"))
        #expect(doctor.stdout.contains("ok       publication history: ALTER PUBLICATION is recorded"))

        // 034's trigger only firing in sessions replicating as origin, or gone, is said with its file.
        try cluster.connect().execute("ALTER EVENT TRIGGER changerelay_schema_drops ENABLE")
        let originOnly = try runChangeRelay(["doctor"], environment: environment)
        #expect(originOnly.status == 1)
        #expect(originOnly.stdout.contains("PROBLEM  schema history: the event trigger changerelay_schema_drops does not fire in every "
                                           + "session (evtenabled O); a column dropped by DROP TYPE"), "\(originOnly.stdout)")
        #expect(originOnly.stdout.contains("fix: apply sql/034_schema_history_drops.sql as a superuser"))

        // An operator who declined the event trigger is told what wal2json loses without it.
        try cluster.connect().execute("DROP EVENT TRIGGER changerelay_schema_history")
        let declined = try runChangeRelay(["doctor"], environment: environment)
        #expect(declined.status == 1)
        #expect(declined.stdout.contains("PROBLEM  schema history: the event trigger changerelay_schema_history does not exist; "
                                         + "wal2json changes read after an ALTER TABLE are laid out with today's columns"))
        #expect(declined.stdout.contains("fix: apply sql/010_schema_history.sql as a superuser"))

        try cluster.connect().execute("DROP EVENT TRIGGER changerelay_publication_history")
        let undated = try runChangeRelay(["doctor"], environment: environment)
        #expect(undated.stdout.contains("PROBLEM  publication history: the event trigger changerelay_publication_history does not "
                                        + "exist; wal2json changes are published by the publication as it was when the service connected"))
        #expect(undated.stdout.contains("fix: apply sql/028_publication_history.sql as a superuser"))
    }

    @Test func doctorReportsEachProblemWithItsFix() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        let db = try cluster.connect()
        try db.execute("""
            ALTER TABLE jobs REPLICA IDENTITY DEFAULT;
            ALTER PUBLICATION changerelay_pub DROP TABLE chat_messages;
            CREATE TABLE no_key (v text);
            ALTER PUBLICATION changerelay_pub ADD TABLE no_key;
            CREATE TABLE keyed_but_nothing (id int PRIMARY KEY);
            ALTER TABLE keyed_but_nothing REPLICA IDENTITY NOTHING;
            ALTER PUBLICATION changerelay_pub ADD TABLE keyed_but_nothing;
            CREATE SCHEMA other;
            CREATE TABLE other.jobs (id int PRIMARY KEY);
            CREATE TABLE other."we.ird" (id int PRIMARY KEY);
            ALTER PUBLICATION changerelay_pub ADD TABLE other.jobs, other."we.ird";
            CREATE SCHEMA "Sales"; CREATE TABLE "Sales".unpublished (id int PRIMARY KEY);
            CREATE SCHEMA "My S"; CREATE TABLE "My S"."T x" (id int PRIMARY KEY);
            ALTER PUBLICATION changerelay_pub ADD TABLE "My S"."T x";
            REVOKE INSERT ON public.trigger_execution_logs FROM changerelay;
            REVOKE ALL ON changerelay.deliveries FROM changerelay;
            REVOKE USAGE ON SEQUENCE public.webhook_logs_id_seq FROM changerelay;
            REVOKE UPDATE (is_active) ON public.webhook_configs FROM changerelay;
            ALTER TABLE public.webhook_configs DROP COLUMN updated_at;
            """)
        try db.execute("SELECT pg_create_logical_replication_slot('forgotten', 'pgoutput')")
        // Another service's slot (its checkpoint written by run), which replay refuses.
        try db.execute("SELECT pg_create_logical_replication_slot('other_service', 'pgoutput')")
        try db.execute("INSERT INTO changerelay.checkpoints (slot_name, lsn, written_by) VALUES ('other_service', '0/1', 'run')")
        // A slot of the other plugin, which replay reads when told it, and one of another
        // database, which it does not read at all.
        try db.execute("SELECT pg_create_logical_replication_slot('other_plugin', 'wal2json')")
        try db.execute("CREATE DATABASE elsewhere")
        try cluster.connect(database: "elsewhere").execute("SELECT pg_create_logical_replication_slot('elsewhere_slot', 'pgoutput')")
        try db.execute("""
            CREATE TABLE filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g;
            """)
        let doctor = try runChangeRelay(["doctor", "--max-retained-bytes", "1000000"], environment: Self.environment(cluster))
        #expect(doctor.status == 1)
        let out = doctor.stdout
        #expect(out.contains("public.jobs needs REPLICA IDENTITY FULL"))
        #expect(out.contains("fix: ALTER TABLE public.jobs REPLICA IDENTITY FULL;"))
        #expect(out.contains("public.chat_messages is not in publication changerelay_pub"))
        #expect(out.contains(#"fix: ALTER PUBLICATION "changerelay_pub" ADD TABLE public.chat_messages;"#), "\(out)")
        #expect(out.contains("public.no_key has no replica identity"))
        #expect(out.contains("fix: ALTER TABLE public.keyed_but_nothing REPLICA IDENTITY DEFAULT;"), "\(out)")
        // Only public.jobs is the seed's: a table of that name in another schema is any table.
        #expect(out.contains("ok       replica identity: other.jobs: primary key"), "\(out)")
        #expect(out.contains(#"ok       replica identity: other."we.ird": primary key"#), "\(out)")
        // Schemas whose names need quotes, published or not: read as names, not cast from text.
        #expect(out.contains(#"ok       replica identity: "My S"."T x": primary key"#), "\(out)")
        #expect(out.contains("changerelay cannot write changerelay.deliveries, public.trigger_execution_logs, "
                             + "public.webhook_logs_id_seq, public.webhook_configs (is_active)"), "\(out)")
        #expect(out.contains("fix: changerelay setup -- or GRANT SELECT, INSERT, UPDATE, DELETE ON changerelay.deliveries, "
                             + #"public.trigger_execution_logs TO "changerelay"; GRANT USAGE ON SEQUENCE "#
                             + #"public.webhook_logs_id_seq TO "changerelay"; GRANT UPDATE (is_active) ON "#
                             + #"public.webhook_configs TO "changerelay";"#), "\(out)")
        // A column the service updates, gone: the privilege check sees only columns that exist.
        #expect(out.contains("the service updates public.webhook_configs.updated_at, which does not exist"), "\(out)")
        #expect(out.contains("WARNING  slot: slot forgotten (inactive, logical) retains "))
        #expect(out.contains("more than --max-retained-bytes 1000000"))
        #expect(out.contains("fix: changerelay replay --slot forgotten (reads it to the end, so it lets the WAL go), "
                             + "or SELECT pg_drop_replication_slot('forgotten'); if nothing will read it"))
        #expect(out.contains("fix: it is a service's slot (changerelay run wrote its checkpoint): start the service that reads "
                             + "it, or, if none will, SELECT pg_drop_replication_slot('other_service'); and DELETE FROM "
                             + "changerelay.checkpoints WHERE slot_name = 'other_service';"), "\(out)")
        #expect(out.contains("fix: CHANGERELAY_SOURCE_PLUGIN=wal2json changerelay replay --slot other_plugin (reads it to the "
                             + "end, so it lets the WAL go; the slot uses wal2json)"), "\(out)")
        #expect(out.contains("fix: it is a slot of database elsewhere, which changerelay replay does not read: connected to "
                             + "that database, SELECT pg_drop_replication_slot('elsewhere_slot'); if nothing will read it"), "\(out)")
        #expect(out.contains("slot changerelay is inactive and retains"))
        // setup grants the columns a table has: without updated_at it still runs, and doctor names it.
        let again = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(again.status == 0, "\(again.stderr)")
        let second = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(second.stdout.contains("the service updates public.webhook_configs.updated_at, which does not exist"),
                "\(second.stdout)")
    }

    /// `setup` leaves an application's own tables as they are, and grants what they have: an
    /// `idempotency_log` of the application's making without an `id` column has no sequence to
    /// grant, and the grant of the effect tables' sequences passes over it.
    @Test func setupGrantsTheSequencesOfTablesThatHaveThem() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        try cluster.connect().execute("""
            CREATE TABLE public.idempotency_log (key text PRIMARY KEY, operation text NOT NULL, request_data jsonb,
                response_data jsonb, status text NOT NULL DEFAULT 'pending', created_at timestamptz DEFAULT now(),
                expires_at timestamptz DEFAULT now() + interval '24 hours')
            """)
        let result = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(result.status == 0, "\(result.stderr)")
    }

    /// A `webhook_logs` whose id takes values from a sequence it does not own (one shared with
    /// other tables): the fan-out reserves its log rows' ids with that default, so `setup`
    /// grants the sequence, and `doctor` names it with the grant when it is revoked. Granted
    /// only what `pg_get_serial_sequence` names, the service's role was refused the sequence
    /// at its first webhook event, and `doctor` said nothing.
    @Test func aSharedSequenceOfWebhookLogIDsIsGrantedAndDoctorNamesItWhenRevoked() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("""
            CREATE SEQUENCE public.shared_ids;
            CREATE TABLE public.webhook_configs (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE, url text NOT NULL,
                secret text, events text[] NOT NULL DEFAULT '{}', headers jsonb NOT NULL DEFAULT '{}',
                is_active boolean NOT NULL DEFAULT true, retry_config jsonb NOT NULL DEFAULT '{}',
                created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE public.webhook_logs (
                id bigint PRIMARY KEY DEFAULT nextval('public.shared_ids'),
                webhook_config_id bigint REFERENCES public.webhook_configs (id) ON DELETE SET NULL,
                event_type text NOT NULL, payload jsonb NOT NULL, response_status int, response_body text,
                error_message text, attempt_count int NOT NULL DEFAULT 0, created_at timestamptz DEFAULT now(),
                completed_at timestamptz)
            """)
        let result = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try db.execute("SELECT has_sequence_privilege('changerelay', 'public.shared_ids', 'USAGE') AS granted")
                    .value("granted") == "t")
        let happy = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(!happy.stdout.contains("shared_ids"), "\(happy.stdout)")

        try db.execute("REVOKE USAGE ON SEQUENCE public.shared_ids FROM changerelay")
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status != 0 && doctor.stdout.contains("changerelay cannot write public.shared_ids")
                    && doctor.stdout.contains(#"GRANT USAGE ON SEQUENCE public.shared_ids TO "changerelay""#), "\(doctor.stdout)")
    }

    /// Every session asks for UTF-8, and the server converts each statement to the
    /// database's encoding, comments included: a `…` in a migration's comment failed setup on
    /// a LATIN1 database. The files are ASCII, and setup runs on such a database.
    @Test func setupRunsOnADatabaseNotInUTF8() throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/sql") where file.hasSuffix(".sql") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/sql/" + file))
            #expect(bytes.allSatisfy { $0 < 0x80 }, "\(file) holds a byte that is not ASCII")
        }
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        try cluster.connect().execute("CREATE DATABASE lat ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        let url = String(cluster.url.dropLast("postgres".count)) + "lat"
        let setup = try runChangeRelay(["setup"], environment: ["CHANGERELAY_SOURCE_DATABASE_URL": url])
        #expect(setup.status == 0, "\(setup.stderr.suffix(2000))")
    }

    /// A seed table whose handler needs whole old rows, made partitioned: setup makes every
    /// partition FULL (the root's setting does not reach them, and the handler got no old
    /// row from a change to one), and doctor names a partition attached since that is not.
    @Test func setupMakesAPartitionedSeedTablesPartitionsFullAndDoctorNamesOneThatIsNot() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        let db = try cluster.connect()
        try db.execute("""
            DROP TABLE flights;
            CREATE TABLE flights (
                id uuid DEFAULT gen_random_uuid(), trip_id uuid NOT NULL REFERENCES trips (id) ON DELETE CASCADE,
                status text NOT NULL DEFAULT 'pending', airline text, flight_number text, departure_time timestamptz,
                arrival_time timestamptz, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (id, status)
            ) PARTITION BY LIST (status);
            CREATE TABLE flights_pending PARTITION OF flights FOR VALUES IN ('pending');
            CREATE TABLE flights_other PARTITION OF flights DEFAULT;
            ALTER PUBLICATION changerelay_pub SET (publish_via_partition_root = true);
            """)
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        #expect(try db.execute("""
            SELECT string_agg(c.relname || ':' || c.relreplident::text, ',' ORDER BY c.relname) AS r
            FROM pg_partition_tree('flights') t JOIN pg_class c ON c.oid = t.relid
            """).value("r") == "flights:f,flights_other:f,flights_pending:f")
        try db.execute("""
            ALTER TABLE flights DETACH PARTITION flights_other;
            CREATE TABLE flights_booked PARTITION OF flights FOR VALUES IN ('booked');
            ALTER TABLE flights ATTACH PARTITION flights_other DEFAULT;
            """)
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("public.flights_booked needs REPLICA IDENTITY FULL (handlers compare old and new values); "
                                       + "each partition of public.flights logs its own old rows"), "\(doctor.stdout)")
        #expect(doctor.stdout.contains("fix: ALTER TABLE public.flights_booked REPLICA IDENTITY FULL;"))
    }

    /// A seed table an application made partitioned: setup runs again (adding it to the
    /// publication again failed, as pg_publication_tables shows its partitions instead), and
    /// doctor says its changes reach no handler until the publication reports them under it.
    @Test func aPartitionedSeedTableIsSetUpAgainAndDoctorNamesTheOptionItNeeds() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        let db = try cluster.connect()
        try db.execute("""
            DROP TABLE buffered_messages;
            CREATE TABLE buffered_messages (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, conversation_id bigint NOT NULL,
                chatwoot_message_id bigint, content text, message_type text, sender jsonb,
                buffer_id bigint REFERENCES message_buffer (id) ON DELETE SET NULL, created_at timestamptz NOT NULL DEFAULT now()
            ) PARTITION BY RANGE (id);
            CREATE TABLE buffered_messages_low PARTITION OF buffered_messages FOR VALUES FROM (MINVALUE) TO (1000000);
            CREATE TABLE buffered_messages_high PARTITION OF buffered_messages FOR VALUES FROM (1000000) TO (MAXVALUE);
            """)
        let again = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(again.status == 0, "\(again.stderr)")
        let third = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(third.status == 0, "\(third.stderr)")
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("public.buffered_messages is partitioned and changerelay_pub publishes its changes under "
                                       + "the partitions' names"), "\(doctor.stdout)")
        #expect(doctor.stdout.contains(#"fix: ALTER PUBLICATION "changerelay_pub" SET (publish_via_partition_root = true);"#))
        // run says so too, at start: the changes would be skipped without a word.
        let run = try Background(["run"], environment: Self.environment(cluster))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        #expect(run.stderr.contains("the source is not as the handlers need it: public.buffered_messages is partitioned"),
                "\(run.stderr.suffix(2000))")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        try db.execute("ALTER PUBLICATION changerelay_pub SET (publish_via_partition_root = true)")
        let fixed = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(fixed.stdout.contains("ok       publication: public.buffered_messages is in changerelay_pub"), "\(fixed.stdout)")
    }

    /// doctor run with the service's own URL checks the role it connects as (here `svc`,
    /// not `changerelay`), by table oid: with a thousand tables, a name-based check was
    /// evaluated over pg_class and failed on pg_toast instead of reporting.
    @Test func doctorChecksTheRoleOfItsURLWithoutTouchingPgToast() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        let db = try cluster.connect()
        try db.execute("""
            CREATE ROLE svc LOGIN;
            DO $$ BEGIN FOR i IN 1..1000 LOOP EXECUTE format('CREATE TABLE filler_%s (id int, t text)', i); END LOOP; END $$;
            ANALYZE pg_class;
            """)
        let url = cluster.url.replacingOccurrences(of: "postgres@", with: "svc@")
        let doctor = try runChangeRelay(["doctor"], environment: ["CHANGERELAY_SOURCE_DATABASE_URL": url])
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("role svc lacks REPLICATION"), "\(doctor.stdout)\(doctor.stderr)")
        #expect(doctor.stdout.contains(#"fix: ALTER ROLE "svc" REPLICATION;"#))
        #expect(doctor.stdout.contains("svc cannot SELECT public.") && doctor.stdout.contains(#" TO "svc";"#), "\(doctor.stdout)")
        #expect(!doctor.stderr.contains("pg_toast"), "\(doctor.stderr)")
    }

    /// SELECT on a published table in a schema the role may not use reads nothing: doctor
    /// names the schema and gives both grants, and with them it is satisfied.
    @Test func aPublishedTableInASchemaTheRoleMayNotUseIsNamedWithTheGrant() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        let db = try cluster.connect()
        try db.execute("""
            CREATE SCHEMA other; CREATE TABLE other.t (id int PRIMARY KEY);
            ALTER PUBLICATION changerelay_pub ADD TABLE other.t; GRANT SELECT ON other.t TO changerelay;
            """)
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("changerelay cannot SELECT other.t (no USAGE on schema other)"), "\(doctor.stdout)")
        #expect(doctor.stdout.contains(#"fix: GRANT USAGE ON SCHEMA other TO "changerelay"; GRANT SELECT ON other.t TO "changerelay";"#),
                "\(doctor.stdout)")
        try db.execute("GRANT USAGE ON SCHEMA other TO changerelay")
        let granted = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(granted.stdout.contains("ok       privileges: changerelay can read every published table"), "\(granted.stdout)")
    }

    /// Slot names are the cluster's: a slot of that name made for another database is named
    /// as such by setup and doctor, not taken for this database's (the stream refuses it).
    @Test func aSlotOfAnotherDatabaseIsNamed() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("CREATE DATABASE other")
        let other = try PostgresConnection(url: String(cluster.url.dropLast("postgres".count)) + "other")
        try other.execute("SELECT pg_create_logical_replication_slot('changerelay', 'pgoutput')")
        let setup = try runChangeRelay(["setup"], environment: Self.environment(cluster))
        #expect(setup.status != 0)
        #expect(setup.stderr.contains("slot 'changerelay' belongs to database other"), "\(setup.stderr)")
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("slot changerelay belongs to database other"), "\(doctor.stdout)")
    }

    /// A slot kept for a replay that holds back more WAL than --max-retained-bytes is a
    /// warning with its way out, not a problem: doctor still passes.
    @Test func aRetainedReplaySlotIsAWarningWithItsFix() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        #expect(try runChangeRelay(["setup"], environment: Self.environment(cluster)).status == 0)
        let db = try cluster.connect()
        try db.execute("SELECT pg_create_logical_replication_slot('changerelay_retained', 'pgoutput')")
        try db.execute("CREATE TABLE filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g")
        // The service's own slot, made now, holds back nothing.
        try db.execute("""
            SELECT pg_drop_replication_slot('changerelay');
            SELECT pg_create_logical_replication_slot('changerelay', 'pgoutput');
            """)
        let doctor = try runChangeRelay(["doctor", "--max-retained-bytes", "1000000"], environment: Self.environment(cluster))
        #expect(doctor.status == 0, "\(doctor.stdout)")
        #expect(doctor.stdout.contains("WARNING  slot: slot changerelay_retained (inactive, logical) retains "))
        #expect(doctor.stdout.contains("fix: changerelay replay --slot changerelay_retained"))
        #expect(doctor.stdout.contains("no problems found, 1 warning"))
    }

    @Test func doctorReportsWalLevelReplica() throws {
        let cluster = try startCluster(settings: ["wal_level": "replica"], schema: false)
        defer { try? cluster.stop() }
        let doctor = try runChangeRelay(["doctor"], environment: Self.environment(cluster))
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("wal_level is replica; logical decoding needs logical"))
        #expect(doctor.stdout.contains("fix: ALTER SYSTEM SET wal_level = logical;"))
        #expect(doctor.stdout.contains("slot changerelay does not exist"))
    }

    @Test func unreachableDatabaseNamesTheHost() throws {
        let result = try runChangeRelay(["doctor"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2",
        ])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cannot connect to Postgres at 127.0.0.1:1"), "\(result.stderr)")
    }

    @Test func passwordsNeverAppearInErrors() throws {
        let result = try runChangeRelay(["tail", "--limit", "1"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://relay:s3cretpass@127.0.0.1:1/app?connect_timeout=2",
        ])
        #expect(result.status != 0)
        #expect(!result.stderr.contains("s3cretpass"))
        #expect(result.stderr.contains("127.0.0.1:1"))
    }

    /// A connection string libpq cannot read: its own message quotes the part it stumbled on,
    /// and one it does not recognise would be taken whole as a database name. The error says
    /// how to write it, and the password appears nowhere, whichever command reads it.
    @Test(arguments: [
        // A broken escape is refused with the configuration, naming its key (and how to write it).
        ("postgresql://relay:50%off-s3cret@127.0.0.1:1/app", "50%off-s3cret"),
        (" postgresql://relay:s3cretpass@127.0.0.1:1/app?sslmode=disable", "s3cretpass"),
        ("postgresql+asyncpg://relay:s3cretpass@127.0.0.1:1/app", "s3cretpass"),
        ("postgresql://relay:s3cretpass@127.0.0.1:1/app?bogus_option=1", "s3cretpass"),
        ("host=127.0.0.1 password='s3cret pass", "s3cret pass"),
        // libpq reads these, taking the password's tail for the host or the database name.
        ("postgresql://relay:P@ssw0rdXY@127.0.0.1:1/app", "ssw0rdXY"),
        ("postgres://relay:pa/ssw0rdXY@127.0.0.1:1/app", "ssw0rdXY"),
        ("postgresql://relay:9/ssw0rdXY@127.0.0.1:1/app?sslmode=disable", "ssw0rdXY"),
        ("postgresql://relay:9/ss?sslmode=w0rdXY@127.0.0.1:1/app", "w0rdXY"),
    ])
    func anUnreadableConnectionStringIsRefusedWithoutItsPassword(url: String, password: String) throws {
        for command in [["tail", "--limit", "1"], ["deliveries", "list"], ["doctor"], ["run"]] {
            let result = try runChangeRelay(command, environment: ["CHANGERELAY_SOURCE_DATABASE_URL": url])
            #expect(result.status != 0, "\(command)")
            #expect(!result.stderr.contains(password) && !result.stdout.contains(password), "\(command): \(result.stderr)")
            let said = url.contains("%") ? "key 'source.database_url' (environment CHANGERELAY_SOURCE_DATABASE_URL): the '%' at byte"
                : "connection string cannot be read"
            #expect(result.stderr.contains(said), "\(command): \(result.stderr)")
        }
    }

    @Test func badConfigurationNamesTheKey() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).toml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "[source]\ndatabase_url = \"postgresql://x\"\nplugn = \"wal2json\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let unknown = try runChangeRelay(["doctor", "--config", path])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("key 'source.plugn'"))
        #expect(unknown.stderr.contains("\(path) line 3"))

        try "[delivery]\nconcurrency = \"lots\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let wrongType = try runChangeRelay(["setup", "--config", path])
        #expect(wrongType.status != 0)
        #expect(wrongType.stderr.contains("key 'delivery.concurrency'"))
        #expect(wrongType.stderr.contains("must be an integer"))

        let missing = try runChangeRelay(["tail"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("source.database_url"))
    }
}
