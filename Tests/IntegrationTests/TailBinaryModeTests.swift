import Core
import Decoding
import Foundation
import Testing

/// pgoutput's binary mode sends each type's send format; `tail` renders it back to the same
/// text Postgres prints, so `--binary` changes the wire, not the output.
@Suite struct TailBinaryModeTests {
    @Test func binaryAndTextModesPrintTheSameLines() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("""
            CREATE TABLE wire (id int8 PRIMARY KEY, b bool, s int2, i int4, f4 float4, f8 float8, t text, v varchar(10),
                               c char(3), by bytea, u uuid, j json, jb jsonb, d date, ts timestamp, tz timestamptz);
            CREATE PUBLICATION wire_pub FOR TABLE wire;
            """)
        try db.execute("SELECT pg_create_logical_replication_slot('text_mode', 'pgoutput')")
        try db.execute("SELECT pg_create_logical_replication_slot('binary_mode', 'pgoutput')")
        try db.execute("""
            INSERT INTO wire VALUES
            (9223372036854775807, true, -32768, 2147483647, 1.5, 0.1, 'tëxt 🎉', 'var', 'ab', '\\xdeadbeef',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [true, null]}', '2024-02-29',
             '2026-11-23 21:42:07.5', '1999-12-31 23:59:59.999999+00'),
            (-9223372036854775808, false, 0, -1, 'NaN', '-Infinity', '', '', '', '\\x', '00000000-0000-0000-0000-000000000000',
             '[]', '{}', '0001-01-01', '2000-01-01 00:00:00', '1970-01-01 00:00:00+00'),
            (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            UPDATE wire SET f8 = 1e300 WHERE id = 1;
            """)
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url, "CHANGERELAY_SOURCE_PUBLICATION": "wire_pub"]
        let text = try runChangeRelay(["tail", "--slot", "text_mode", "--limit", "4"], environment: environment)
        let binary = try runChangeRelay(["tail", "--slot", "binary_mode", "--limit", "4", "--binary"], environment: environment)
        #expect(text.status == 0, "\(text.stderr)")
        #expect(binary.status == 0, "\(binary.stderr)")
        let textLines = text.stdout.split(separator: "\n")
        #expect(textLines.count == 4)
        #expect(textLines == binary.stdout.split(separator: "\n"))

        // A type whose send format tail does not decode stops with a clear error naming it.
        try db.execute("CREATE TABLE money_table (id int PRIMARY KEY, amount numeric); ALTER PUBLICATION wire_pub ADD TABLE money_table")
        try db.execute("INSERT INTO money_table VALUES (1, 12.5)")
        let unsupported = try runChangeRelay(["tail", "--slot", "binary_mode", "--limit", "1", "--binary"], environment: environment)
        #expect(unsupported.status != 0)
        #expect(unsupported.stderr.contains("money_table"), "\(unsupported.stderr)")
        #expect(unsupported.stderr.contains("1700"), "\(unsupported.stderr)")
    }
}
