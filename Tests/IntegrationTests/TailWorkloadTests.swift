import Core
import Decoding
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// The `tail` contract end to end: a real cluster, the real binary, both plugins, and
/// every value compared with what Postgres itself prints for it.
@Suite(.serialized) struct TailWorkloadTests {
    static let typesTable = """
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
        CREATE TABLE kinds (
            id int PRIMARY KEY,
            b bool, s int2, i int4, l int8, f4 float4, f8 float8, n numeric(38,10),
            t text, by bytea, j json, jb jsonb, u uuid, d date, ts timestamp, tz timestamptz,
            iv interval, ia int[], ta text[], m mood, p positive_int
        );
        CREATE TABLE full_identity (id int PRIMARY KEY, v text);
        ALTER TABLE full_identity REPLICA IDENTITY FULL;
        CREATE TABLE toasted (id int PRIMARY KEY, big text, note text);
        ALTER TABLE toasted ALTER COLUMN big SET STORAGE EXTERNAL;
        CREATE TABLE evolving (id int PRIMARY KEY, a text);
        CREATE TABLE bulk (id int PRIMARY KEY, v text);
        CREATE PUBLICATION tail_pub FOR TABLE kinds, full_identity, toasted, evolving, bulk;
        """

    static let kindsColumns = ["id", "b", "s", "i", "l", "f4", "f8", "n", "t", "by", "j", "jb", "u", "d", "ts", "tz",
                               "iv", "ia", "ta", "m", "p"]

    static let kindsRows = """
        INSERT INTO kinds VALUES
        (1, true, 32767, 2147483647, 9223372036854775807, 3.4028235e38, 1.7976931348623157e308,
         '1234567890123456789012345678.1234567890',
         'quote '' backslash \\ newline
        tab	unicode é 日本 emoji 🎉', '\\x00ff10'::bytea,
         '{"a": [1, 2.50, {"b": null}],  "s": "x\\ny"}', '{"nested": {"k": ["ü", 1e3, true]}, "n": 12345678901234567890}',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-11-23', '2026-11-23 21:42:07.123456',
         '2026-11-23 21:42:07.5+02', '1 year 2 mons 3 days 04:05:06.7', '{1,NULL,3}', '{"a,b",NULL,"c\\"d",""}',
         'happy', 42),
        (2, false, -32768, -2147483648, -9223372036854775808, -1.5e-45, 5e-324, '-0.0000000001', '', '\\x',
         '[]', '{}', '00000000-0000-0000-0000-000000000000', '0001-01-01', '1999-12-31 23:59:59', '1970-01-01 00:00:00+00',
         '-1 days', '{}', '{}', 'sad', 1),
        (3, NULL, NULL, NULL, NULL, 'NaN', 'Infinity', 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL),
        (4, NULL, NULL, NULL, NULL, '-Infinity', '-Infinity', NULL, NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL);
        """

    struct Captured {
        var lines: [JSONValue]
        var stderr: String
        /// Transactions the server streamed to this slot before their commit.
        var streamedTransactions: Int
    }

    /// Runs the workload once, then reads both slots with `tail`.
    static func runWorkload() throws -> (pgoutput: Captured, wal2json: Captured, expected: [Int: [String: JSONValue]]) {
        let cluster = try startCluster(settings: ["logical_decoding_work_mem": "'64kB'"], schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute(typesTable)
        try db.execute("SELECT pg_create_logical_replication_slot('t_pgoutput', 'pgoutput')")
        try db.execute("SELECT pg_create_logical_replication_slot('t_wal2json', 'wal2json')")
        try db.execute(kindsRows)
        let expected = try expectedKinds(db)
        try db.execute("""
            UPDATE kinds SET id = 10 WHERE id = 2;
            DELETE FROM kinds WHERE id = 4;
            INSERT INTO full_identity VALUES (1, 'before');
            UPDATE full_identity SET v = 'after' WHERE id = 1;
            DELETE FROM full_identity WHERE id = 1;
            INSERT INTO toasted SELECT 1, string_agg(md5(g::text), '') , 'first' FROM generate_series(1, 32768) g;
            UPDATE toasted SET note = 'second' WHERE id = 1;
            INSERT INTO evolving VALUES (1, 'one');
            ALTER TABLE evolving ADD COLUMN b int DEFAULT 7;
            INSERT INTO evolving VALUES (2, 'two', 8);
            TRUNCATE evolving;
            """)
        // Commit order, not start order: the transaction that began first commits last.
        let other = try cluster.connect()
        try other.execute("BEGIN; INSERT INTO full_identity VALUES (20, 'started first')")
        try db.execute("INSERT INTO full_identity VALUES (21, 'committed first')")
        try other.execute("COMMIT")
        // Large enough to be streamed (logical_decoding_work_mem is 64kB), then aborted: never printed.
        try db.execute("BEGIN; INSERT INTO bulk SELECT g, 'aborted' FROM generate_series(300001, 350000) g; ROLLBACK")
        try db.execute("INSERT INTO bulk SELECT g, 'row ' || g FROM generate_series(1, 200000) g")
        let total = 4 + 2 + 3 + 2 + 3 + 2 + 200_000
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "tail_pub"]
        func tail(_ plugin: String) throws -> Captured {
            let result = try runChangeRelay(["tail", "--plugin", plugin, "--slot", "t_\(plugin)", "--limit", "\(total)"],
                                            environment: environment, timeout: .seconds(300))
            #expect(result.status == 0, "tail --plugin \(plugin) failed: \(result.stderr)")
            let lines = try result.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
            #expect(lines.count == total, "\(plugin): \(lines.count) lines, stderr: \(result.stderr.suffix(2000))")
            let streamed = try db.execute(
                "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 't_\(plugin)'").value("stream_txns")
            return Captured(lines: lines, stderr: result.stderr, streamedTransactions: Int(streamed ?? "") ?? 0)
        }
        return (try tail("pgoutput"), try tail("wal2json"), expected)
    }

    /// What Postgres itself says of each value of `kinds`: `col::text`, rendered the way
    /// the contract says (JSON numbers and booleans, embedded JSON for json/jsonb).
    static func expectedKinds(_ db: PostgresConnection) throws -> [Int: [String: JSONValue]] {
        let select = kindsColumns.map { "\($0)::text" }.joined(separator: ", ")
        let result = try db.execute("SELECT \(select) FROM kinds ORDER BY id")
        var rows: [Int: [String: JSONValue]] = [:]
        for row in result.rows {
            var values: [String: JSONValue] = [:]
            for (name, text) in zip(kindsColumns, row) {
                values[name] = try render(column: name, text: text)
            }
            rows[Int(row[0]!)!] = values
        }
        return rows
    }

    static func render(column: String, text: String?) throws -> JSONValue {
        guard let text else { return .null }
        switch column {
        case "b": return .bool(text == "true")
        // `p` is a domain over int: rendered as its base type.
        case "id", "s", "i", "l", "p": return .number(text)
        case "f4", "f8": return ["NaN", "Infinity", "-Infinity"].contains(text) ? .string(text) : .number(text)
        case "j", "jb": return try JSONParser.parse(Array(text.utf8))
        default: return .string(text)
        }
    }

    static func lines(_ captured: Captured, table: String, op: String) -> [JSONValue] {
        captured.lines.filter { $0["table"] == .string(table) && $0["op"] == .string(op) }
    }

    static func object(_ value: JSONValue?) -> [String: JSONValue] {
        guard case .object(let members)? = value else { return [:] }
        return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// The workload runs once for all the tests below.
    static let workload = Result { try runWorkload() }

    /// Every inserted `kinds` value as the plugin printed it, against Postgres' own text.
    /// `expectedOf` lets wal2json's documented NaN/Infinity difference be asserted explicitly.
    static func expectInsertsMatch(_ captured: Captured, plugin: String, expected: [Int: [String: JSONValue]],
                                   expectedOf: (JSONValue?) -> JSONValue? = { $0 }) {
        let inserts = lines(captured, table: "kinds", op: "insert")
        #expect(inserts.count == 4)
        for line in inserts {
            let new = object(line["new"])
            guard let id = numberText(new["id"]).flatMap({ Int($0) }), let want = expected[id] else {
                Issue.record("insert line without a known id: \(line)")
                continue
            }
            for column in kindsColumns {
                #expect(new[column] == expectedOf(want[column]), "\(plugin) kinds id \(id) column \(column)")
            }
        }
    }

    @Test func pgoutputValuesEqualPostgresText() throws {
        let (pgoutput, _, expected) = try Self.workload.get()
        Self.expectInsertsMatch(pgoutput, plugin: "pgoutput", expected: expected)
    }

    @Test func wal2jsonValuesEqualPostgresTextExceptNaNAndInfinity() throws {
        let (_, wal2json, expected) = try Self.workload.get()
        // wal2json prints NaN, Infinity and -Infinity as null.
        Self.expectInsertsMatch(wal2json, plugin: "wal2json", expected: expected) { want in
            if case .string(let special)? = want, ["NaN", "Infinity", "-Infinity"].contains(special) { return .null }
            return want
        }
    }

    @Test func bothPluginsPrintTheSameLines() throws {
        let (pgoutput, wal2json, _) = try Self.workload.get()
        /// Rows 3 and 4 hold NaN and ±Infinity, which wal2json cannot carry (asserted above).
        func comparable(_ captured: Captured) -> [JSONValue] {
            captured.lines.filter { line in
                let id = Self.numberText(Self.object(line["new"])["id"] ?? Self.object(line["old"])["id"])
                return !(line["table"] == .string("kinds") && (id == "3" || id == "4"))
            }
        }
        let left = comparable(pgoutput), right = comparable(wal2json)
        #expect(left.count == right.count)
        let differing = zip(left, right).filter { $0 != $1 }
        #expect(differing.isEmpty, "first difference:\npgoutput \(differing.first?.0 as Any)\nwal2json \(differing.first?.1 as Any)")
    }

    @Test(arguments: ["pgoutput", "wal2json"])
    func updatesAndDeletesCarryTheOldKeyOrRow(plugin: String) throws {
        let captured = try Self.captured(plugin)
        let keyChange = try #require(Self.lines(captured, table: "kinds", op: "update").first)
        #expect(Self.object(keyChange["old"]) == ["id": .number("2")], "default identity: old is the key")
        #expect(Self.object(keyChange["new"])["id"] == .number("10"))
        let delete = try #require(Self.lines(captured, table: "kinds", op: "delete").first)
        #expect(Self.object(delete["old"]) == ["id": .number("4")])
        #expect(delete["new"] == .null)

        let full = try #require(Self.lines(captured, table: "full_identity", op: "update").first)
        #expect(Self.object(full["old"]) == ["id": .number("1"), "v": .string("before")], "FULL identity: old is the row")
        #expect(Self.object(full["new"]) == ["id": .number("1"), "v": .string("after")])
        let fullDelete = try #require(Self.lines(captured, table: "full_identity", op: "delete").first)
        #expect(Self.object(fullDelete["old"]) == ["id": .number("1"), "v": .string("after")])
    }

    @Test(arguments: ["pgoutput", "wal2json"])
    func unchangedToastIsListedNotPrinted(plugin: String) throws {
        let captured = try Self.captured(plugin)
        let insert = try #require(Self.lines(captured, table: "toasted", op: "insert").first)
        guard case .string(let big)? = Self.object(insert["new"])["big"] else {
            Issue.record("no big value in \(insert)")
            return
        }
        #expect(big.utf8.count == 32768 * 32)
        let update = try #require(Self.lines(captured, table: "toasted", op: "update").first)
        let new = Self.object(update["new"])
        #expect(new["big"] == nil)
        #expect(new["note"] == .string("second"))
        #expect(update["unchanged_toast"] == .array([.string("big")]))
        #expect(insert["unchanged_toast"] == nil)
    }

    @Test(arguments: ["pgoutput", "wal2json"])
    func addedColumnAppearsAndTruncateIsPrinted(plugin: String) throws {
        let captured = try Self.captured(plugin)
        let inserts = Self.lines(captured, table: "evolving", op: "insert").map { Self.object($0["new"]) }
        #expect(inserts == [["id": .number("1"), "a": .string("one")],
                            ["id": .number("2"), "a": .string("two"), "b": .number("8")]])
        let truncate = try #require(Self.lines(captured, table: "evolving", op: "truncate").first)
        #expect(truncate["new"] == .null && truncate["old"] == .null)
    }

    @Test(arguments: ["pgoutput", "wal2json"])
    func largeTransactionArrivesWholeInCommitOrder(plugin: String) throws {
        let captured = try Self.captured(plugin)
        let bulk = Self.lines(captured, table: "bulk", op: "insert")
        #expect(bulk.count == 200_000)
        if plugin == "pgoutput" {
            #expect(captured.streamedTransactions >= 1, "the large transaction was not streamed")
        }
        #expect(Self.object(bulk.first?["new"])["id"] == .number("1"))
        #expect(Self.object(bulk.last?["new"])["id"] == .number("200000"))
        // The streamed transaction is one xid, printed after everything committed before it.
        #expect(Set(bulk.map { $0["xid"].map { "\($0)" } ?? "" }).count == 1)
        #expect(captured.lines.last?["table"] == .string("bulk"))
    }

    @Test(arguments: ["pgoutput", "wal2json"])
    func transactionsComeInCommitOrderAndAbortedOnesNever(plugin: String) throws {
        let captured = try Self.captured(plugin)
        let ids = Self.lines(captured, table: "full_identity", op: "insert").compactMap { Self.numberText(Self.object($0["new"])["id"]) }
        #expect(ids == ["1", "21", "20"])
        let aborted = captured.lines.filter { Self.object($0["new"])["v"] == .string("aborted") }
        #expect(aborted.isEmpty)
        #expect(Self.lines(captured, table: "bulk", op: "insert").count == 200_000)
    }

    @Test(arguments: ["pgoutput", "wal2json"])
    func linesCarryPositionAndCommitTime(plugin: String) throws {
        let captured = try Self.captured(plugin)
        for line in captured.lines.prefix(50) {
            guard case .string(let lsn)? = line["lsn"], LSN(lsn) != nil else {
                Issue.record("bad lsn in \(line)")
                continue
            }
            guard case .string(let time)? = line["commit_time"], time.hasSuffix("+00"), time.count >= 22 else {
                Issue.record("bad commit_time in \(line)")
                continue
            }
            #expect(line["schema"] == .string("public"))
            #expect(Self.numberText(line["xid"]) != nil)
        }
    }

    static func captured(_ plugin: String) throws -> Captured {
        let (pgoutput, wal2json, _) = try workload.get()
        return plugin == "pgoutput" ? pgoutput : wal2json
    }

    static func numberText(_ value: JSONValue?) -> String? {
        if case .number(let text)? = value { return text }
        return nil
    }
}
