import Core
import Decoding
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// The same workload gives the same lines through pgoutput and wal2json, for what only
/// pgoutput's server side used to get right: partitions published via their root or as
/// leaves, generated columns, and DDL between writes read back only after all of it.
@Suite(.serialized) struct Wal2JsonParityTests {
    /// Reads both slots from the start with `tail` and returns each plugin's lines.
    /// `wal2jsonParts` splits the wal2json read into runs of `tail`, each acknowledging what
    /// it printed, so a later run starts after DDL it must know from the stored history.
    static func tailBoth(_ cluster: LocalPostgres, publication: String, count: Int,
                         wal2jsonParts: [Int]? = nil) throws -> (pgoutput: [JSONValue], wal2json: [JSONValue]) {
        try tailBoth(url: cluster.url, publication: publication, count: count, wal2jsonParts: wal2jsonParts)
    }

    /// The same, for the database `url` names.
    static func tailBoth(url: String, publication: String, count: Int,
                         wal2jsonParts: [Int]? = nil) throws -> (pgoutput: [JSONValue], wal2json: [JSONValue]) {
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": url, "CHANGERELAY_SOURCE_PUBLICATION": publication]
        func tail(_ plugin: String, _ limit: Int) throws -> [JSONValue] {
            let result = try runChangeRelay(["tail", "--plugin", plugin, "--slot", "p_\(plugin)", "--limit", "\(limit)"],
                                            environment: environment, timeout: .seconds(120))
            #expect(result.status == 0, "tail --plugin \(plugin): \(result.stderr.suffix(2000))")
            return try result.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        }
        return (try tail("pgoutput", count), try (wal2jsonParts ?? [count]).flatMap { try tail("wal2json", $0) })
    }

    static func createSlots(_ db: PostgresConnection) throws {
        try db.execute("SELECT pg_create_logical_replication_slot('p_pgoutput', 'pgoutput')")
        try db.execute("SELECT pg_create_logical_replication_slot('p_wal2json', 'wal2json')")
    }

    /// A cluster of its own with `ddl` run, then both plugins' slots made; with `histories`,
    /// the schema and publication histories (sql/010, sql/028) are installed first.
    static func clusterWithSlots(after ddl: String, histories: Bool = false) throws -> (LocalPostgres, PostgresConnection) {
        let cluster = try startCluster(schema: false)
        do {
            let db = try cluster.connect()
            if histories { try installPublicationHistory(db) }
            try db.execute(ddl)
            try createSlots(db)
            return (cluster, db)
        } catch {
            try? cluster.stop()
            throw error
        }
    }

    static func installSchemaHistory(_ db: PostgresConnection) throws {
        try db.execute("CREATE SCHEMA IF NOT EXISTS changerelay")
        try db.execute(try String(contentsOfFile: repositoryRoot + "/sql/010_schema_history.sql", encoding: .utf8))
    }

    /// Everything but the position and xid, which differ by nothing but can be compared whole.
    static func expectSameLines(_ lines: (pgoutput: [JSONValue], wal2json: [JSONValue]), count: Int) {
        #expect(lines.pgoutput.count == count, "pgoutput printed \(lines.pgoutput.count) lines")
        #expect(lines.wal2json.count == count, "wal2json printed \(lines.wal2json.count) lines")
        for (index, (left, right)) in zip(lines.pgoutput, lines.wal2json).enumerated() where left != right {
            Issue.record("line \(index) differs:\npgoutput \(left)\nwal2json \(right)")
            return
        }
    }

    static func summary(_ line: JSONValue) -> String {
        guard case .string(let table)? = line["table"], case .string(let op)? = line["op"] else { return "?" }
        let row = line["new"] ?? .null == .null ? line["old"] : line["new"]
        let id: String = if case .number(let text)? = row?["id"] { text } else { "-" }
        return "\(table) \(op) \(id)"
    }

    static let partitionWorkload = """
        INSERT INTO measures VALUES (1, 1, 'a'), (2, 12, 'b'), (3, 5, 'c');
        UPDATE measures SET v = 'a2' WHERE id = 1;
        UPDATE measures SET k = 15 WHERE id = 3;
        DELETE FROM measures WHERE id = 2;
        INSERT INTO unpublished VALUES (1);
        """

    static func partitions(viaRoot: Bool) -> String {
        """
        CREATE TABLE measures (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
        CREATE TABLE measures_low PARTITION OF measures FOR VALUES FROM (0) TO (10);
        CREATE TABLE measures_high (v text, k int, id int, PRIMARY KEY (id, k));
        ALTER TABLE measures ATTACH PARTITION measures_high FOR VALUES FROM (10) TO (20);
        CREATE TABLE unpublished (id int PRIMARY KEY);
        CREATE PUBLICATION parts FOR TABLE measures WITH (publish_via_partition_root = \(viaRoot));
        """
    }

    static func createPartitions(_ db: PostgresConnection, viaRoot: Bool) throws {
        try db.execute(partitions(viaRoot: viaRoot))
    }

    @Test(arguments: [true, false])
    func partitionsPrintTheSameLinesThroughBothPlugins(viaRoot: Bool) throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.installSchemaHistory(db)
        try Self.createPartitions(db, viaRoot: viaRoot)
        try Self.createSlots(db)
        try db.execute(Self.partitionWorkload)
        // A partition attached after the slots exist, whose own column order differs again.
        try db.execute("""
            CREATE TABLE measures_top (k int, v text, id int, PRIMARY KEY (id, k));
            ALTER TABLE measures ATTACH PARTITION measures_top FOR VALUES FROM (20) TO (30);
            INSERT INTO measures VALUES (4, 25, 'd');
            UPDATE measures SET k = 7 WHERE id = 4;
            TRUNCATE measures;
            """)
        let count = viaRoot ? 11 : 13
        let lines = try Self.tailBoth(cluster, publication: "parts", count: count)
        Self.expectSameLines(lines, count: count)
        let expected = viaRoot
            ? ["measures insert 1", "measures insert 2", "measures insert 3", "measures update 1", "measures delete 3",
               "measures insert 3", "measures delete 2", "measures insert 4", "measures delete 4", "measures insert 4"]
            : ["measures_low insert 1", "measures_high insert 2", "measures_low insert 3", "measures_low update 1",
               "measures_low delete 3", "measures_high insert 3", "measures_high delete 2", "measures_top insert 4",
               "measures_top delete 4", "measures_low insert 4"]
        #expect(lines.wal2json.prefix(10).map(Self.summary) == expected)
        if viaRoot {
            #expect(lines.wal2json.last?["table"] == .string("measures") && lines.wal2json.last?["op"] == .string("truncate"))
            // The root's column order, whatever the leaf's.
            guard case .object(let members)? = lines.wal2json[1]["new"] else { Issue.record("no new row"); return }
            #expect(members.map(\.key) == ["id", "k", "v"])
        } else {
            #expect(Set(lines.wal2json.suffix(3).map(Self.summary))
                == ["measures_low truncate -", "measures_high truncate -", "measures_top truncate -"])
        }
    }

    @Test(arguments: [true, false])
    func aPartitionAttachedWhileStreamingIsFollowed(withSchemaHistory: Bool) throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        if withSchemaHistory { try Self.installSchemaHistory(db) }
        try Self.createPartitions(db, viaRoot: true)
        let tail = try Background(["tail", "--plugin", "wal2json", "--temporary"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "parts",
        ])
        try tail.waitFor("the stream starts") { _ in tail.stderr.contains("streaming") }
        try db.execute("INSERT INTO measures VALUES (1, 12, 'first')")
        try tail.waitFor("the first row") { $0.contains("first") }
        try db.execute("CREATE TABLE measures_top (v text, id int, k int, PRIMARY KEY (id, k))")
        // Without the history the catalog of now decides, and now the table is a partition:
        // only the history knows this row was written before it became one.
        if withSchemaHistory { try db.execute("INSERT INTO measures_top VALUES ('not yet a partition', 9, 25)") }
        try db.execute("ALTER TABLE measures ATTACH PARTITION measures_top FOR VALUES FROM (20) TO (30)")
        try db.execute("INSERT INTO measures VALUES (2, 25, 'attached')")
        try tail.waitFor("the attached partition's row") { $0.contains("attached") }
        let lines = try tail.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.map(Self.summary) == ["measures insert 1", "measures insert 2"], "\(tail.stdout)")
        guard case .object(let members)? = lines.last?["new"] else { Issue.record("no new row"); return }
        #expect(members.map(\.key) == ["id", "k", "v"])
    }

    /// Two levels of partitions, a default partition, a schema and names that need quoting,
    /// a generated column on the root, and a sub-partitioned middle table published via root.
    @Test(arguments: [true, false])
    func nestedPartitionsWithQuotedNamesPrintTheSameLines(withSchemaHistory: Bool) throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        if withSchemaHistory { try Self.installSchemaHistory(db) }
        try db.execute(#"""
            CREATE SCHEMA "Odd.Schema";
            CREATE TABLE "Odd.Schema"."Events ""all""" (id int, region text, at date, doubled int GENERATED ALWAYS AS (id * 2) STORED,
                payload text, PRIMARY KEY (id, region, at)) PARTITION BY LIST (region);
            CREATE TABLE "Odd.Schema".eu PARTITION OF "Odd.Schema"."Events ""all""" FOR VALUES IN ('eu') PARTITION BY RANGE (at);
            CREATE TABLE "Odd.Schema"."eu.2026" (payload text, at date, region text, id int,
                doubled int GENERATED ALWAYS AS (id * 2) STORED, PRIMARY KEY (id, region, at));
            ALTER TABLE "Odd.Schema".eu ATTACH PARTITION "Odd.Schema"."eu.2026" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
            CREATE TABLE "Odd.Schema".rest PARTITION OF "Odd.Schema"."Events ""all""" DEFAULT;
            CREATE PUBLICATION nested FOR TABLE "Odd.Schema"."Events ""all""" WITH (publish_via_partition_root = true);
            """#)
        try Self.createSlots(db)
        try db.execute(#"""
            INSERT INTO "Odd.Schema"."Events ""all""" (id, region, at, payload) VALUES
                (1, 'eu', '2026-03-01', 'first'), (2, 'us', '2026-03-02', 'second');
            UPDATE "Odd.Schema"."Events ""all""" SET region = 'eu', at = '2026-05-05' WHERE id = 2;
            UPDATE "Odd.Schema"."Events ""all""" SET payload = 'changed' WHERE id = 1;
            DELETE FROM "Odd.Schema"."Events ""all""" WHERE id = 1;
            """#)
        let lines = try Self.tailBoth(cluster, publication: "nested", count: 6)
        Self.expectSameLines(lines, count: 6)
        #expect(lines.wal2json.allSatisfy { $0["schema"] == .string("Odd.Schema") && $0["table"] == .string(#"Events "all""#) })
        guard case .object(let members)? = lines.wal2json[0]["new"] else { Issue.record("no new row"); return }
        #expect(members.map(\.key) == ["id", "region", "at", "payload"], "the root's order, no generated column")
    }

    /// Read only after the DDL: a partition detached since was published at its earlier
    /// changes (it was a partition then), and one attached since was not at its earlier ones,
    /// whether changes are reported under the root or under the partition itself.
    @Test(arguments: [true, false])
    func partitionsDetachedAndAttachedLaterArePublishedAsTheyWereAtEachChange(viaRoot: Bool) throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.installSchemaHistory(db)
        try Self.createPartitions(db, viaRoot: viaRoot)
        try db.execute("CREATE TABLE measures_late (id int, k int, v text, PRIMARY KEY (id, k))")
        try Self.createSlots(db)
        try db.execute("""
            INSERT INTO measures VALUES (1, 12, 'before');
            INSERT INTO measures_late VALUES (4, 25, 'not yet a partition');
            ALTER TABLE measures DETACH PARTITION measures_high;
            ALTER TABLE measures ATTACH PARTITION measures_late FOR VALUES FROM (20) TO (30);
            INSERT INTO measures_high VALUES ('after', 13, 2);
            INSERT INTO measures VALUES (3, 1, 'still published');
            INSERT INTO measures_late VALUES (5, 26, 'a partition now');
            """)
        let lines = try Self.tailBoth(cluster, publication: "parts", count: 3)
        Self.expectSameLines(lines, count: 3)
        #expect(lines.wal2json.map(Self.summary) == (viaRoot
            ? ["measures insert 1", "measures insert 3", "measures insert 5"]
            : ["measures_high insert 1", "measures_low insert 3", "measures_late insert 5"]))
    }

    /// The stream is read only after all the DDL: each change must come out as it was made.
    @Test func ddlBetweenWritesReadLaterPrintsWhatPostgresSaidAtEachChange() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.installSchemaHistory(db)
        try db.execute("""
            CREATE TABLE evolving (id int PRIMARY KEY, a text, gone text, n int);
            CREATE PUBLICATION evo FOR TABLE evolving;
            """)
        try Self.createSlots(db)
        // Each its own transaction (one simple query holding BEGIN would make it all one), but for
        // the block that changes the table between two updates of the same transaction.
        let statements = [
            "INSERT INTO evolving VALUES (1, 'one', 'g1', 10)",
            "UPDATE evolving SET a = 'one b' WHERE id = 1",
            "ALTER TABLE evolving ADD COLUMN big text",
            "ALTER TABLE evolving ALTER COLUMN big SET STORAGE EXTERNAL",
            "UPDATE evolving SET big = repeat('x', 10000) WHERE id = 1",
            "UPDATE evolving SET a = 'one c' WHERE id = 1",
            "ALTER TABLE evolving DROP COLUMN gone",
            "UPDATE evolving SET a = 'one d' WHERE id = 1",
            "ALTER TABLE evolving ALTER COLUMN n TYPE numeric(10,2)",
            "UPDATE evolving SET a = 'one e' WHERE id = 1",
            """
            BEGIN;
            UPDATE evolving SET a = 'same transaction, before' WHERE id = 1;
            ALTER TABLE evolving ADD COLUMN late int DEFAULT 5;
            UPDATE evolving SET a = 'same transaction, after' WHERE id = 1;
            COMMIT;
            """,
            "ALTER TABLE evolving ADD COLUMN total int GENERATED ALWAYS AS (id * 2) STORED",
            "INSERT INTO evolving (id, a) VALUES (2, 'two')",
            "DELETE FROM evolving WHERE id = 2",
        ]
        for statement in statements { try db.execute(statement) }
        let lines = try Self.tailBoth(cluster, publication: "evo", count: 10, wal2jsonParts: [6, 4])
        Self.expectSameLines(lines, count: 10)
        func columns(_ line: JSONValue) -> [String] {
            guard case .object(let members)? = line["new"] else { return [] }
            return members.map(\.key)
        }
        let wal2json = lines.wal2json
        #expect(columns(wal2json[1]) == ["id", "a", "gone", "n"], "before ADD COLUMN: no phantom column")
        #expect(wal2json[1]["unchanged_toast"] == nil)
        #expect(wal2json[3]["unchanged_toast"] == .array([.string("big")]))
        #expect(columns(wal2json[3]) == ["id", "a", "gone", "n"])
        #expect(columns(wal2json[4]) == ["id", "a", "n"], "the dropped column is absent only after its drop")
        #expect(wal2json[5]["new"]?["n"] == .string("10.00"), "the new type's text")
        #expect(wal2json[4]["new"]?["n"] == .number("10"))
        #expect(columns(wal2json[6]) == ["id", "a", "n"])
        #expect(wal2json[7]["new"]?["late"] == .number("5"))
        #expect(columns(wal2json[8]) == ["id", "a", "n", "big", "late"], "no generated column")
        #expect(wal2json[9]["op"] == .string("delete"))
    }

    @Test func generatedColumnsAreLeftOutEvenWithoutTheSchemaHistory() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE priced (id int PRIMARY KEY, net numeric, gross numeric GENERATED ALWAYS AS (net * 1.2) STORED, note text);
            ALTER TABLE priced REPLICA IDENTITY FULL;
            CREATE PUBLICATION priced_pub FOR TABLE priced;
            """)
        defer { try? cluster.stop() }
        try db.execute("""
            INSERT INTO priced (id, net, note) VALUES (1, 10, 'n');
            UPDATE priced SET net = 20 WHERE id = 1;
            DELETE FROM priced WHERE id = 1;
            """)
        let lines = try Self.tailBoth(cluster, publication: "priced_pub", count: 3)
        Self.expectSameLines(lines, count: 3)
        for line in lines.wal2json {
            #expect(line["new"]?["gross"] == nil && line["old"]?["gross"] == nil, "\(line)")
        }
    }

    @Test func theHistoryIsRecordedForAnyRoleAndInstallsWithoutTheTriggerForANonSuperuser() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.installSchemaHistory(db)
        try db.execute("CREATE ROLE app LOGIN; GRANT CREATE ON SCHEMA public TO app")
        try db.execute("CREATE DATABASE declined OWNER app")
        // DDL by an ordinary role is recorded: the trigger's function runs as its owner.
        try db.execute("SET ROLE app; CREATE TABLE app_owned (id int); ALTER TABLE app_owned ADD COLUMN v text; RESET ROLE")
        let recorded = try db.execute("""
            SELECT string_agg(shape->>'columns', ' ' ORDER BY id) AS shapes
            FROM changerelay.schema_history WHERE table_name = 'app_owned'
            """).value("shapes")
        #expect(recorded == #"["id"] ["id", "v"]"#)
        // Writing the history directly is not for ordinary roles.
        #expect(throws: PostgresError.self) {
            try db.execute("SET ROLE app; SELECT changerelay.record_table_shapes(ARRAY['app_owned'::regclass::oid], 'ddl')")
        }
        try db.execute("RESET ROLE")

        // Installed by a role that cannot create event triggers: a warning, the table, no trigger.
        let other = try cluster.connect(database: "declined")
        try other.execute("SET ROLE app; CREATE SCHEMA changerelay")
        try other.execute(try String(contentsOfFile: repositoryRoot + "/sql/010_schema_history.sql", encoding: .utf8))
        let state = try other.execute("""
            SELECT to_regclass('changerelay.schema_history') IS NOT NULL AS has_table,
                   (SELECT count(*) FROM pg_event_trigger) AS triggers,
                   (SELECT count(*) FROM changerelay.schema_history WHERE kind = 'baseline') AS baseline
            """)
        #expect(try state.value("has_table") == "t")
        #expect(try state.value("triggers") == "0")
        #expect(try state.value("baseline").flatMap { Int($0) } ?? 0 > 0)
    }

    /// Values a server takes that once stopped a stream: `bytea_output = escape` in the
    /// database's settings, a `json` value with a lone surrogate escape (json keeps its text;
    /// jsonb would refuse it), and another application's binary logical messages, which
    /// wal2json prints as their raw bytes. Both plugins print the same lines and go on.
    @Test func valuesThatOnceStoppedTheStreamPrintTheSameLinesAndTheStreamGoesOn() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            ALTER DATABASE postgres SET bytea_output = 'escape';
            CREATE TABLE odd (id int PRIMARY KEY, b bytea, j json);
            CREATE PUBLICATION odd_pub FOR TABLE odd;
            """)
        defer { try? cluster.stop() }
        try db.execute(#"INSERT INTO odd VALUES (1, '\x00ff41', '["\uDE00x\uD83D", "\uD83D\uDE00", "\u00e9"]')"#)
        try db.execute(#"SELECT pg_logical_emit_message(true, 'other.bin', '\xff00fe41'::bytea)"#)
        try db.execute(#"SELECT pg_logical_emit_message(false, 'other.bin', '\xc328'::bytea)"#)
        try db.execute(#"INSERT INTO odd VALUES (2, '\x', '{"k": "\uDBFF"}')"#)
        let lines = try Self.tailBoth(cluster, publication: "odd_pub", count: 2)
        Self.expectSameLines(lines, count: 2)
        for (plugin, printed) in [("pgoutput", lines.pgoutput), ("wal2json", lines.wal2json)] where printed.count == 2 {
            #expect(printed[0]["new"]?["b"] == .string(#"\x00ff41"#), "\(plugin): \(printed[0])")
            #expect(printed[0]["new"]?["j"] == .array([.string("\u{FFFD}x\u{FFFD}"), .string("😀"), .string("é")]),
                    "\(plugin): \(printed[0])")
            #expect(printed[1]["new"]?["b"] == .string(#"\x"#), "\(plugin): \(printed[1])")
            #expect(printed[1]["new"]?["j"] == .object([("k", .string("\u{FFFD}"))]), "\(plugin): \(printed[1])")
        }
    }

    /// Types whose names need quoting, in schemas off the search path: wal2json writes such a
    /// name unquoted into its JSON (`"type":"Billing".state`) unless asked for oids alone, and
    /// one such column, in a table published or not, stopped the stream at that record for
    /// good. Both plugins print the published table's values and go on past the other's.
    @Test func typesWhoseNamesNeedQuotingDoNotStopTheStream() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: #"""
            CREATE SCHEMA "Billing";
            CREATE TYPE "Billing".state AS ENUM ('open', 'paid');
            CREATE TYPE "Billing"."we""ird\type" AS ENUM ('x');
            CREATE DOMAIN "Billing"."Cents" AS bigint;
            CREATE TABLE "Billing".invoices (id int PRIMARY KEY, s "Billing".state, w "Billing"."we""ird\type",
                                             a "Billing".state[], c "Billing"."Cents");
            CREATE TABLE "Billing".unpublished (id int PRIMARY KEY, s "Billing".state);
            CREATE TABLE plain (id int PRIMARY KEY);
            CREATE PUBLICATION quoted_pub FOR TABLE "Billing".invoices, plain;
            """#)
        defer { try? cluster.stop() }
        try db.execute(#"INSERT INTO "Billing".unpublished VALUES (1, 'open')"#)
        try db.execute(#"INSERT INTO "Billing".invoices VALUES (1, 'paid', 'x', '{open,paid}', 250)"#)
        try db.execute(#"UPDATE "Billing".invoices SET s = 'open' WHERE id = 1"#)
        try db.execute("INSERT INTO plain VALUES (7)")
        let lines = try Self.tailBoth(cluster, publication: "quoted_pub", count: 3)
        Self.expectSameLines(lines, count: 3)
        for (plugin, printed) in [("pgoutput", lines.pgoutput), ("wal2json", lines.wal2json)] where printed.count == 3 {
            #expect(printed[0]["new"]?["s"] == .string("paid") && printed[0]["new"]?["w"] == .string("x")
                    && printed[0]["new"]?["a"] == .string("{open,paid}") && printed[0]["new"]?["c"] == .number("250"),
                    "\(plugin): \(printed[0])")
            #expect(printed[1]["new"]?["s"] == .string("open"), "\(plugin): \(printed[1])")
            #expect(printed[2]["table"] == .string("plain"), "\(plugin): \(printed[2])")
        }
    }

    /// wal2json warns once a row for each UPDATE or DELETE of a table without a replica
    /// identity, which no publication can send (the server refuses those statements on a
    /// published table): 200 rows updated in such a table wrote 200 warnings. They are left out
    /// of the log at its default level, and the published table's change after them is printed.
    @Test func wal2jsonsWarningsForRowsWithoutIdentityDoNotFloodTheLog() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE keyless (v int);
            CREATE TABLE plain (id int PRIMARY KEY);
            CREATE PUBLICATION plain_pub FOR TABLE plain;
            INSERT INTO keyless SELECT generate_series(1, 200);
            """)
        defer { try? cluster.stop() }
        try db.execute("UPDATE keyless SET v = v + 1")
        try db.execute("DELETE FROM keyless WHERE v < 50")
        try db.execute("INSERT INTO plain VALUES (7)")
        let tail = try runChangeRelay(["tail", "--plugin", "wal2json", "--slot", "p_wal2json", "--limit", "1"],
                                      environment: ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url,
                                                    "CHANGERELAY_SOURCE_PUBLICATION": "plain_pub"],
                                      timeout: .seconds(120))
        #expect(tail.status == 0, "\(tail.stderr.suffix(2000))")
        #expect(try JSONParser.parse(Array(tail.stdout.utf8.prefix { $0 != 10 }))["table"] == .string("plain"))
        #expect(!tail.stderr.contains("no tuple identifier"), "\(tail.stderr.prefix(2000))")
    }

    /// Domains render as their base types through both plugins and pgoutput's binary mode:
    /// a domain over int4 prints 5, over bool true, over jsonb the document; both plugins
    /// name the column by the domain's own type, and it printed "5" and "t", and binary mode
    /// refused it. A domain over float8 keeps its NaN (wal2json quotes a domain's values,
    /// where it prints a plain float8's NaN as null).
    @Test func domainsRenderAsTheirBaseTypesThroughBothPluginsAndBinaryMode() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE DOMAIN positive AS int CHECK (VALUE > 0); CREATE DOMAIN small_positive AS positive CHECK (VALUE < 100);
            CREATE DOMAIN flag AS boolean; CREATE DOMAIN doc AS jsonb; CREATE DOMAIN blob AS bytea; CREATE DOMAIN amount AS float8;
            CREATE DOMAIN label AS text;
            CREATE TABLE typed (id positive PRIMARY KEY, n small_positive, f flag, d doc, b blob, a amount, l label);
            CREATE PUBLICATION typed_pub FOR TABLE typed;
            """)
        defer { try? cluster.stop() }
        try db.execute("SELECT pg_create_logical_replication_slot('p_binary', 'pgoutput')")
        try db.execute("""
            INSERT INTO typed VALUES (1, 7, true, '{"k": [1, 2]}', '\\x0102', 'NaN', 'x'), (2, NULL, false, 'null', '\\x', '1.5', '');
            CREATE DOMAIN late AS int8; ALTER TABLE typed ADD COLUMN z late;
            UPDATE typed SET z = 9007199254740993 WHERE id = 2;
            """)
        let lines = try Self.tailBoth(cluster, publication: "typed_pub", count: 3)
        Self.expectSameLines(lines, count: 3)
        let binary = try runChangeRelay(["tail", "--slot", "p_binary", "--limit", "3", "--binary"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "typed_pub",
        ])
        #expect(binary.status == 0, "\(binary.stderr)")
        let binaryLines = try binary.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        for (plugin, printed) in [("pgoutput", lines.pgoutput), ("wal2json", lines.wal2json), ("binary", binaryLines)]
        where printed.count == 3 {
            let first = printed[0]["new"]
            #expect(first?["id"] == .number("1") && first?["n"] == .number("7") && first?["f"] == .bool(true), "\(plugin): \(printed[0])")
            #expect(first?["d"] == .object([("k", .array([.number("1"), .number("2")]))]), "\(plugin): \(printed[0])")
            #expect(first?["b"] == .string(#"\x0102"#) && first?["a"] == .string("NaN") && first?["l"] == .string("x"),
                    "\(plugin): \(printed[0])")
            #expect(printed[1]["new"]?["d"] == .null && printed[1]["new"]?["f"] == .bool(false)
                        && printed[1]["new"]?["a"] == .number("1.5"), "\(plugin): \(printed[1])")
            // A domain made while the stream runs is looked up when a relation first names it.
            #expect(printed[2]["new"]?["z"] == .number("9007199254740993"), "\(plugin): \(printed[2])")
        }
    }

    /// A publication's own options: `publish` (which actions) and a column list (PostgreSQL 15).
    /// pgoutput's server side applies them; wal2json sends everything, and ChangeRelay keeps
    /// what the publication publishes.
    @Test func aPublicationsActionsAndColumnListArePrintedAsPgoutputPrintsThem() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE narrow (id int PRIMARY KEY, shown text, secret text);
            CREATE TABLE wide (id int PRIMARY KEY, v text);
            CREATE PUBLICATION picky FOR TABLE narrow (id, shown), wide WITH (publish = 'insert, delete');
            """)
        defer { try? cluster.stop() }
        try db.execute("""
            INSERT INTO narrow VALUES (1, 'a', 's1');
            INSERT INTO wide VALUES (1, 'w');
            UPDATE narrow SET shown = 'b' WHERE id = 1;
            UPDATE wide SET v = 'w2' WHERE id = 1;
            DELETE FROM narrow WHERE id = 1;
            TRUNCATE wide;
            INSERT INTO wide VALUES (2, 'last');
            """)
        let lines = try Self.tailBoth(cluster, publication: "picky", count: 4)
        Self.expectSameLines(lines, count: 4)
        #expect(lines.wal2json.map(Self.summary) == ["narrow insert 1", "wide insert 1", "narrow delete 1", "wide insert 2"])
        #expect(lines.wal2json.first?["new"]?["secret"] == nil && lines.wal2json.first?["new"]?["shown"] == .string("a"))
    }

    /// Without the schema history (a role that may not install its trigger) a live stream
    /// takes shapes from today's catalog: one kept from before an ALTER TABLE is read again
    /// when a record contradicts it, so DDL while streaming prints what pgoutput prints.
    @Test func withoutTheHistoryALiveStreamFollowsColumnsAddedDroppedAndRenamed() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE live (id int PRIMARY KEY, a text, b text);
            CREATE PUBLICATION live_pub FOR TABLE live;
            """)
        defer { try? cluster.stop() }
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "live_pub"]
        let tail = try Background(["tail", "--plugin", "wal2json", "--slot", "p_wal2json"], environment: environment)
        let steps = [
            "INSERT INTO live VALUES (1, 'a', 'b')",
            "ALTER TABLE live DROP COLUMN b; UPDATE live SET a = 'a2' WHERE id = 1",
            "ALTER TABLE live ADD COLUMN c int; INSERT INTO live VALUES (2, 'x', 7)",
            "ALTER TABLE live RENAME COLUMN a TO aa; INSERT INTO live VALUES (3, 'y', 8)",
            "ALTER TABLE live DROP COLUMN c; INSERT INTO live VALUES (4, 'z')",
        ]
        for (index, step) in steps.enumerated() {
            try db.execute(step)
            try tail.waitFor("line \(index + 1)") { $0.split(separator: "\n").count == index + 1 }
        }
        tail.child.signal(SIGTERM)
        #expect(tail.waitForExit() == 0, "\(tail.stderr)")
        let wal2json = try tail.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        let pgoutput = try Self.tailBoth(cluster, publication: "live_pub", count: steps.count, wal2jsonParts: []).pgoutput
        Self.expectSameLines((pgoutput, wal2json), count: steps.count)
        #expect(wal2json[1]["unchanged_toast"] == nil, "\(wal2json[1])")
    }

    /// Publications that list schemas or every table rather than tables.
    @Test(arguments: ["FOR TABLES IN SCHEMA s1", "FOR ALL TABLES"])
    func schemaAndAllTablesPublicationsPrintTheSameLines(scope: String) throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE SCHEMA s1; CREATE SCHEMA s2;
            CREATE TABLE s1.a (id int PRIMARY KEY); CREATE TABLE s2.b (id int PRIMARY KEY);
            CREATE PUBLICATION scoped \(scope);
            """)
        defer { try? cluster.stop() }
        try db.execute("INSERT INTO s2.b VALUES (1); INSERT INTO s1.a VALUES (2); INSERT INTO s2.b VALUES (3)")
        let count = scope == "FOR ALL TABLES" ? 3 : 1
        let lines = try Self.tailBoth(cluster, publication: "scoped", count: count)
        Self.expectSameLines(lines, count: count)
        #expect(lines.wal2json.map(Self.summary) == (count == 3 ? ["b insert 1", "a insert 2", "b insert 3"] : ["a insert 2"]))
    }

    /// The schema history and the publication history, with 034's triggers on both.
    static func installPublicationHistory(_ db: PostgresConnection) throws {
        try installSchemaHistory(db)
        for file in ["028_publication_history", "034_schema_history_drops"] {
            try db.execute(try String(contentsOfFile: repositoryRoot + "/sql/\(file).sql", encoding: .utf8))
        }
    }

    /// Each step changes what the publication publishes, then writes.
    static let publicationChanges = [
        "INSERT INTO measures VALUES (1, 1, 'a'); INSERT INTO t1 VALUES (1, 'x')",
        "ALTER PUBLICATION parts SET (publish_via_partition_root = true); INSERT INTO measures VALUES (2, 12, 'b')",
        "ALTER PUBLICATION parts DROP TABLE t1; INSERT INTO t1 VALUES (2, 'y')",
        "ALTER PUBLICATION parts SET (publish = 'insert'); UPDATE measures SET v = 'a2' WHERE id = 1",
        "INSERT INTO measures VALUES (3, 5, 'c')",
        "ALTER TABLE t1 RENAME TO t2; ALTER PUBLICATION parts ADD TABLE t2 (id); INSERT INTO t2 VALUES (3, 'z')",
        "ALTER SCHEMA public RENAME TO app; INSERT INTO app.measures VALUES (4, 6, 'd')",
    ]
    static let publishedAsOfEachChange = ["measures_low insert 1", "t1 insert 1", "measures insert 2", "measures insert 3",
                                          "t2 insert 3", "measures insert 4"]

    static let publicationWorkloadTables = partitions(viaRoot: false)
        + "; CREATE TABLE t1 (id int PRIMARY KEY, v text); ALTER PUBLICATION parts ADD TABLE t1"

    /// What a publication publishes changes while a backlog waits (tables dropped and added
    /// back, publish actions, publish_via_partition_root, a table and a schema renamed): read
    /// later, each change is published as the publication was when it was made, as pgoutput
    /// decides, not as it is when the backlog is read.
    @Test func publicationChangesReadLaterArePublishedAsOfEachChange() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: Self.publicationWorkloadTables, histories: true)
        defer { try? cluster.stop() }
        for step in Self.publicationChanges { try db.execute(step) }
        let expected = Self.publishedAsOfEachChange
        let lines = try Self.tailBoth(cluster, publication: "parts", count: expected.count)
        Self.expectSameLines(lines, count: expected.count)
        #expect(lines.wal2json.map(Self.summary) == expected)
        #expect(lines.wal2json[4]["new"]?["v"] == nil, "t2's column list leaves v out: \(lines.wal2json[4])")
    }

    /// The same while streaming: the membership read at connect is not what decides.
    @Test func publicationChangesWhileStreamingAreFollowed() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: Self.publicationWorkloadTables, histories: true)
        defer { try? cluster.stop() }
        let tail = try Background(["tail", "--plugin", "wal2json", "--slot", "p_wal2json"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "parts",
        ])
        try tail.waitFor("the stream starts") { _ in tail.stderr.contains("streaming") }
        for step in Self.publicationChanges { try db.execute(step) }
        // A marker after every step: once it is printed, nothing before it can still come.
        try db.execute("INSERT INTO app.measures VALUES (99, 7, 'marker')")
        try tail.waitFor("the marker") { $0.contains("marker") }
        tail.child.signal(SIGTERM)
        #expect(tail.waitForExit() == 0, "\(tail.stderr)")
        let lines = try tail.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.map(Self.summary) == Self.publishedAsOfEachChange + ["measures insert 99"])
    }

    /// Tables a DDL changes without naming them: the inheritance children of an altered
    /// parent and the typed tables of an `ALTER TYPE … CASCADE` get their shapes recorded too,
    /// so their later changes read back print the columns pgoutput prints.
    @Test func inheritanceChildrenAndTypedTablesFollowTheirParentsDDL() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE ipar (id int PRIMARY KEY, a text, b text, c text);
            CREATE TABLE ichild (extra int) INHERITS (ipar);
            ALTER TABLE ichild ADD PRIMARY KEY (id);
            CREATE TYPE ty AS (id int, a text, b text);
            CREATE TABLE typed OF ty (PRIMARY KEY (id));
            CREATE PUBLICATION inh FOR TABLE ichild, typed;
            """, histories: true)
        defer { try? cluster.stop() }
        try db.execute("""
            INSERT INTO ichild VALUES (1, 'a', 'b', 'c', 1);
            INSERT INTO typed VALUES (1, 'a', 'b');
            ALTER TABLE ipar DROP COLUMN b;
            ALTER TABLE ipar RENAME COLUMN c TO c2;
            ALTER TABLE ipar ADD COLUMN d int DEFAULT 5;
            UPDATE ichild SET a = 'a2';
            ALTER TYPE ty DROP ATTRIBUTE b CASCADE;
            ALTER TYPE ty RENAME ATTRIBUTE a TO a2 CASCADE;
            ALTER TYPE ty ADD ATTRIBUTE e int CASCADE;
            UPDATE typed SET a2 = 'z';
            """)
        let lines = try Self.tailBoth(cluster, publication: "inh", count: 4)
        Self.expectSameLines(lines, count: 4)
        guard case .object(let child)? = lines.wal2json[2]["new"], case .object(let typed)? = lines.wal2json[3]["new"] else {
            Issue.record("no new rows: \(lines.wal2json)")
            return
        }
        #expect(child.map(\.key) == ["id", "a", "c2", "extra", "d"])
        #expect(typed.map(\.key) == ["id", "a2", "e"])
        #expect(lines.wal2json[2]["unchanged_toast"] == nil && lines.wal2json[3]["unchanged_toast"] == nil)
    }

    /// Commands that change a table's columns without an ALTER TABLE or CREATE TABLE tag, and
    /// DDL in a session replicating as replica, are recorded (sql/034): a backlog read after
    /// all of them prints what pgoutput prints, without phantom unchanged TOAST columns,
    /// columns out of order or a listed column's value left out.
    @Test func cascadedColumnDropsViewAndIndexRenamesAndReplicaSessionDDLAreRecorded() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TYPE mood AS ENUM ('ok');
            CREATE DOMAIN positive AS int CHECK (VALUE > 0);
            CREATE TABLE moods (id int PRIMARY KEY, m mood, f positive, x text, y int);
            CREATE TABLE listed (id int PRIMARY KEY, a text, b int);
            CREATE TABLE renamed (id int PRIMARY KEY, a text, b text, c int);
            CREATE PUBLICATION cascades FOR TABLE moods, listed (id, a), renamed;
            """, histories: true)
        defer { try? cluster.stop() }
        for statement in [
            "INSERT INTO moods VALUES (1, 'ok', 1, 'x', 1); INSERT INTO listed VALUES (1, 'a', 1); "
                + "INSERT INTO renamed VALUES (1, 'a', 'b', 1)",
            "DROP TYPE mood CASCADE", "UPDATE moods SET y = 2",
            "DROP DOMAIN positive CASCADE", "UPDATE moods SET y = 3",
            "ALTER VIEW listed RENAME COLUMN a TO a_v", "INSERT INTO listed VALUES (2, 'x', 2)",
            "ALTER MATERIALIZED VIEW renamed RENAME COLUMN a TO a_m", "UPDATE renamed SET c = 2",
            "SET session_replication_role = replica; ALTER TABLE renamed DROP COLUMN b; "
                + "ALTER TABLE renamed ADD COLUMN z int DEFAULT 9; RESET session_replication_role",
            "UPDATE renamed SET c = 3",
            "ALTER INDEX renamed RENAME TO renamed_again", "UPDATE renamed_again SET c = 4",
            "ALTER TABLE renamed_again ADD COLUMN w int",
        ] { try db.execute(statement) }
        let lines = try Self.tailBoth(cluster, publication: "cascades", count: 9)
        Self.expectSameLines(lines, count: 9)
        for line in lines.wal2json { #expect(line["unchanged_toast"] == nil, "\(line)") }
        #expect(lines.wal2json.map(Self.summary) == ["moods insert 1", "listed insert 1", "renamed insert 1", "moods update 1",
                                                     "moods update 1", "listed insert 2", "renamed update 1", "renamed update 1",
                                                     "renamed_again update 1"])
        #expect(lines.wal2json[5]["new"]?["a_v"] == .string("x"), "the listed column renamed through ALTER VIEW")
    }

    /// A cascade that drops a column a publication's column list names takes the table out of
    /// the publication with it (sql/034 records the membership): later changes of the table
    /// are published by neither plugin, another table's still are.
    @Test func aCascadeThatDropsAListedColumnTakesItsTableOutOfThePublicationForBothPlugins() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE DOMAIN positive AS int CHECK (VALUE > 0);
            CREATE TABLE narrowed (id int PRIMARY KEY, f positive, v text);
            CREATE TABLE kept (id int PRIMARY KEY);
            CREATE PUBLICATION narrow FOR TABLE narrowed (id, f), kept;
            """, histories: true)
        defer { try? cluster.stop() }
        try db.execute("INSERT INTO narrowed VALUES (1, 1, 'a')")
        try db.execute("DROP DOMAIN positive CASCADE")
        try db.execute("INSERT INTO narrowed VALUES (2, 'b')")
        try db.execute("INSERT INTO kept VALUES (1)")
        let lines = try Self.tailBoth(cluster, publication: "narrow", count: 2)
        Self.expectSameLines(lines, count: 2)
        #expect(lines.wal2json.map(Self.summary) == ["narrowed insert 1", "kept insert 1"])
    }

    /// A publication dropped (and made again later) while a backlog waits: pgoutput refuses to
    /// go past a change made while it did not exist, and so does the wal2json path, naming it,
    /// rather than skip every change as unpublished.
    @Test func aDroppedPublicationStopsTheStreamNamingIt() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: "CREATE TABLE kept (id int PRIMARY KEY); CREATE PUBLICATION brief FOR TABLE kept", histories: true)
        defer { try? cluster.stop() }
        try db.execute("INSERT INTO kept VALUES (1)")
        try db.execute("DROP PUBLICATION brief")
        try db.execute("INSERT INTO kept VALUES (2)")
        try db.execute("CREATE PUBLICATION brief FOR TABLE kept; INSERT INTO kept VALUES (3)")
        let result = try runChangeRelay(["tail", "--plugin", "wal2json", "--slot", "p_wal2json", "--limit", "2"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "brief",
        ], timeout: .seconds(60))
        #expect(result.status != 0)
        #expect(result.stdout.split(separator: "\n").map { try? JSONParser.parse(Array($0.utf8)) }.compactMap { $0 }
            .map(Self.summary) == ["kept insert 1"])
        #expect(result.stderr.contains("publication brief had been dropped when the change at"), "\(result.stderr.suffix(1500))")
        // Made again already, it does not help: the way out is another publication or the slot moved past the gap.
        #expect(result.stderr.contains("pg_replication_slot_advance") && !result.stderr.contains("create it again"))
    }

    /// Membership changed while the trigger was away (dropped, or never installed by a role
    /// that could not): applying 028 again records the difference, so the history is not
    /// trusted stale.
    @Test func reapplyingTheFileRecordsWhatChangedWithoutTheTrigger() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.installPublicationHistory(db)
        try db.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE PUBLICATION gap FOR TABLE a")
        try db.execute("DROP EVENT TRIGGER changerelay_publication_history")
        try db.execute("ALTER PUBLICATION gap ADD TABLE b")
        func latestRelations() throws -> String? {
            try db.execute("""
                SELECT membership->'relations' AS relations FROM changerelay.publication_history
                WHERE publication = 'gap' ORDER BY id DESC LIMIT 1
                """).value("relations")
        }
        #expect(try latestRelations() == #"[["public", "a", null]]"#)
        try Self.installPublicationHistory(db)
        #expect(try latestRelations() == #"[["public", "a", null], ["public", "b", null]]"#)
    }

    /// `ALTER PUBLICATION` blocks no writer: another transaction's change made while it is not
    /// yet committed was made under the old membership (pgoutput's view), whether that other
    /// transaction commits before it or after; its own later changes see the new one.
    @Test func concurrentWritesAreDecidedByTheMembershipBeforeTheAltersCommit() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE dropped (id int PRIMARY KEY); CREATE TABLE added (id int PRIMARY KEY);
            CREATE PUBLICATION racing FOR TABLE dropped;
            """, histories: true)
        defer { try? cluster.stop() }
        let other = try cluster.connect()
        try db.execute("BEGIN; ALTER PUBLICATION racing DROP TABLE dropped; ALTER PUBLICATION racing ADD TABLE added")
        try other.execute("INSERT INTO dropped VALUES (1); INSERT INTO added VALUES (1)")
        try other.execute("BEGIN; INSERT INTO dropped VALUES (2); INSERT INTO added VALUES (2)")
        try db.execute("INSERT INTO dropped VALUES (3); INSERT INTO added VALUES (3); COMMIT")
        try other.execute("COMMIT")
        try db.execute("INSERT INTO dropped VALUES (4); INSERT INTO added VALUES (4)")
        let expected = ["dropped insert 1", "added insert 3", "dropped insert 2", "added insert 4"]
        let lines = try Self.tailBoth(cluster, publication: "racing", count: expected.count)
        Self.expectSameLines(lines, count: expected.count)
        #expect(lines.wal2json.map(Self.summary) == expected)
    }

    /// A publication dropped and made again after changes were written: read later, those
    /// changes are published by the publication of their time. pgoutput's walsender once
    /// decided them by today's, because `tail` asked the catalog about the publication on the
    /// walsender's own connection first, which cached today's publication in that backend:
    /// every earlier change looked unpublished, and was lost. (PostgreSQL 15's pgoutput then
    /// stops at the first change after the publication was made again, "publication does not
    /// exist"; the wal2json path goes on.)
    @Test func aPublicationMadeAgainKeepsTheChangesBeforeIt() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: "CREATE TABLE kept (id int PRIMARY KEY); CREATE PUBLICATION again FOR TABLE kept", histories: true)
        defer { try? cluster.stop() }
        try db.execute("INSERT INTO kept VALUES (1)")
        try db.execute("INSERT INTO kept VALUES (2)")
        try db.execute("BEGIN; DROP PUBLICATION again; CREATE PUBLICATION again FOR TABLE kept; COMMIT")
        try db.execute("INSERT INTO kept VALUES (3)")
        let lines = try Self.tailBoth(cluster, publication: "again", count: 2)
        Self.expectSameLines(lines, count: 2)
        #expect(lines.pgoutput.map(Self.summary) == ["kept insert 1", "kept insert 2"])
        let rest = try runChangeRelay(["tail", "--plugin", "wal2json", "--slot", "p_wal2json", "--limit", "1"], environment: [
            "CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "again",
        ], timeout: .seconds(60))
        #expect(rest.status == 0, "\(rest.stderr.suffix(1500))")
        #expect(rest.stdout.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8)) }.map(Self.summary)
            == ["kept insert 3"])
    }

    /// Publication DDL by an ordinary role: the entries are written and settled by functions
    /// that run as their owner (the settlement fires at that role's commit, long after the
    /// event trigger's function returned), and the role cannot write them itself. Installed
    /// by a role that cannot create event triggers, 028 leaves the table and its baseline.
    @Test func publicationDDLByAnOrdinaryRoleIsRecordedAndSettled() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.installPublicationHistory(db)
        try db.execute("CREATE ROLE app LOGIN; GRANT CREATE ON SCHEMA public TO app; GRANT CREATE ON DATABASE postgres TO app")
        try db.execute("CREATE DATABASE declined OWNER app")
        try db.execute("""
            SET ROLE app; CREATE TABLE app_owned (id int PRIMARY KEY); CREATE PUBLICATION app_pub FOR TABLE app_owned;
            ALTER TABLE app_owned RENAME TO app_renamed; RESET ROLE
            """)
        let entries = try db.execute("""
            SELECT count(*) AS rows, count(settled_at) AS settled, max(membership->'relations'->0->>1) FILTER (WHERE id = (
                       SELECT max(id) FROM changerelay.publication_history WHERE publication = 'app_pub')) AS latest
            FROM changerelay.publication_history WHERE publication = 'app_pub'
            """)
        #expect(entries.value("rows") == "2" && entries.value("settled") == "2" && entries.value("latest") == "app_renamed")
        #expect(throws: PostgresError.self) {
            try db.execute("SET ROLE app; SELECT changerelay.record_publications('ddl')")
        }
        try db.execute("RESET ROLE")

        let other = try cluster.connect(database: "declined")
        try other.execute("SET ROLE app; CREATE SCHEMA changerelay")
        try other.execute(try String(contentsOfFile: repositoryRoot + "/sql/010_schema_history.sql", encoding: .utf8))
        try other.execute(try String(contentsOfFile: repositoryRoot + "/sql/028_publication_history.sql", encoding: .utf8))
        let state = try other.execute("""
            SELECT to_regclass('changerelay.publication_history') IS NOT NULL AS has_table,
                   (SELECT count(*) FROM pg_event_trigger) AS triggers
            """)
        #expect(state.value("has_table") == "t" && state.value("triggers") == "0")
    }

    /// A database in LATIN1 (or any encoding but UTF-8): pgoutput's values are converted
    /// by the walsender to the session's encoding, which is UTF-8 whatever the database's;
    /// wal2json's records come in the database's encoding and are converted as they are read.
    /// Before, pgoutput printed U+FFFD for every non-ASCII letter and wal2json stopped for good
    /// at the first record holding one, published or not.
    @Test func aDatabaseNotInUTF8PrintsItsTextThroughBothPlugins() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        try cluster.connect().execute("CREATE DATABASE lat ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        let url = String(cluster.url.dropLast("postgres".count)) + "lat"
        let db = try PostgresConnection(url: url)
        try db.execute("""
            CREATE TABLE t (id int PRIMARY KEY, v text, j json, b jsonb);
            CREATE TABLE unpublished (v text);
            CREATE PUBLICATION lat_pub FOR TABLE t;
            """)
        try Self.createSlots(db)
        try db.execute("""
            INSERT INTO unpublished VALUES ('déjà vu');
            INSERT INTO t VALUES (1, 'café ÿ', '{"k": "crème"}', '{"ß": "à"}');
            UPDATE t SET v = 'garçon' WHERE id = 1;
            """)
        let lines = try Self.tailBoth(url: url, publication: "lat_pub", count: 2)
        Self.expectSameLines(lines, count: 2)
        #expect(lines.pgoutput.first?["new"]?["v"] == .string("café ÿ"), "\(lines.pgoutput)")
        #expect(lines.pgoutput.first?["new"]?["j"]?["k"] == .string("crème"))
        #expect(lines.pgoutput.first?["new"]?["b"]?["ß"] == .string("à"))
        #expect(lines.pgoutput.last?["new"]?["v"] == .string("garçon"))
    }

    /// An UPDATE that keeps its key has no old row through pgoutput unless the identity is
    /// FULL. wal2json does not say which identity a table has: it was read as FULL whenever
    /// every column sent was an identity column, which a column list of the key alone, or a
    /// table whose only other column is generated, makes so.
    @Test func anUpdateKeepingItsKeyHasNoOldRowWhateverTheColumnListLeavesOut() throws {
        let (cluster, db) = try Self.clusterWithSlots(after: """
            CREATE TABLE gen (id int PRIMARY KEY, g int GENERATED ALWAYS AS (id * 2) STORED);
            CREATE TABLE listed (id int PRIMARY KEY, v text);
            CREATE TABLE by_index (a int NOT NULL, b int, c text);
            CREATE UNIQUE INDEX by_index_a ON by_index (a);
            ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_a;
            CREATE TABLE full_listed (id int PRIMARY KEY, v text);
            ALTER TABLE full_listed REPLICA IDENTITY FULL;
            CREATE PUBLICATION keys_pub FOR TABLE gen, listed (id), by_index (a), full_listed;
            """)
        defer { try? cluster.stop() }
        try db.execute("""
            INSERT INTO gen VALUES (1); UPDATE gen SET id = id;
            INSERT INTO listed VALUES (1, 'a'); UPDATE listed SET v = 'b';
            INSERT INTO by_index VALUES (1, 2, 'x'); UPDATE by_index SET c = 'y';
            INSERT INTO full_listed VALUES (1, 'a'); UPDATE full_listed SET v = 'b';
            """)
        let lines = try Self.tailBoth(cluster, publication: "keys_pub", count: 8)
        Self.expectSameLines(lines, count: 8)
        let updates = lines.wal2json.filter { $0["op"] == .string("update") }
        #expect(updates.map { $0["old"] == .null } == [true, true, true, false], "\(updates)")
    }

    /// A SQL_ASCII database stores bytes with no encoding: its sessions keep SQL_ASCII, so
    /// the walsender passes pgoutput's values on unchecked (asked for UTF-8, it stopped for
    /// good at the first byte that was not), and both plugins print such bytes as U+FFFD, one
    /// per maximal subpart: in text, inside a `json` value, and in a column's name, each of
    /// which once stopped the pgoutput stream for good or printed differently from wal2json.
    @Test func aSQLASCIIDatabasesBytesThatAreNotUTF8PrintAsReplacementsThroughBothPlugins() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        try cluster.connect().execute("CREATE DATABASE bytes ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        let url = String(cluster.url.dropLast("postgres".count)) + "bytes"
        let db = try PostgresConnection(url: url)
        let badName = #"convert_from('\x63ff'::bytea, 'SQL_ASCII')"#
        try db.execute(#"""
            CREATE TABLE t (id int PRIMARY KEY, v text, j json);
            DO $$ BEGIN EXECUTE format('ALTER TABLE t ADD COLUMN %I int', \#(badName)); END $$;
            CREATE PUBLICATION bytes_pub FOR TABLE t
            """#)
        try Self.createSlots(db)
        try db.execute(#"""
            INSERT INTO t VALUES
                (1, 'a' || convert_from('\xe9ff'::bytea, 'SQL_ASCII') || 'b', NULL, 7),
                (2, 'café', '{"k": "ok"}', NULL),
                (3, convert_from('\x61e282206df09f98'::bytea, 'SQL_ASCII'),
                    convert_from('\x7b226b223a202276e282227d'::bytea, 'SQL_ASCII')::json, NULL)
            """#)
        let lines = try Self.tailBoth(url: url, publication: "bytes_pub", count: 3)
        Self.expectSameLines(lines, count: 3)
        #expect(lines.pgoutput.first?["new"]?["v"] == .string("a\u{FFFD}\u{FFFD}b"), "\(lines.pgoutput)")
        #expect(lines.pgoutput.first?["new"]?["c\u{FFFD}"] == .number("7"), "\(lines.pgoutput)")
        #expect(lines.pgoutput[1]["new"]?["v"] == .string("café"))
        #expect(lines.pgoutput.last?["new"]?["v"] == .string("a\u{FFFD} m\u{FFFD}"), "\(lines.pgoutput)")
        #expect(lines.pgoutput.last?["new"]?["j"]?["k"] == .string("v\u{FFFD}"), "\(lines.pgoutput)")
    }
}
