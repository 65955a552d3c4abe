import Core
import Decoding
import Handlers
import PlannedEffects
import Testing

/// One format for every key derived from a change: idempotency keys, staged-row keys and
/// the names behind stable ids are stored and sent, so their text never changes.
@Suite struct ChangePositionTests {
    private let position = Transaction(xid: 1, commitLSN: LSN(0x1_0000_0200), endLSN: LSN(0x1_0000_0230),
                                       commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [])
        .position(ofChange: 3)

    @Test func aKeyIsTheHandlerTheCommitLSNTheIndexAndASuffix() {
        #expect(position.key(handler: "dual_write") == "dual_write:1/200:3")
        #expect(position.key(handler: "dual_write", suffix: "old") == "dual_write:1/200:3:old")
        #expect(position.key(handler: "automations", suffix: "execution:w1") == "automations:1/200:3:execution:w1")
    }

    @Test func stableIDsAndIdempotencyKeysAreMadeFromTheSameKey() {
        #expect(StableID.forChange("automations", commitLSN: LSN(0x1_0000_0200), index: 3, purpose: "execution:w1")
                    == StableID.uuid5(namespace: StableID.namespace, name: "automations:1/200:3:execution:w1"))
        let delivery = PlannedDelivery(target: "echo", url: "http://127.0.0.1:9", body: "{}", orderingKey: nil,
                                       retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 1))
        #expect(PositionedDelivery(handler: "echo", position: position, delivery: delivery).idempotencyKey == "echo:1/200:3:echo")
    }

    /// A backfilled row is named by its primary key's values, escaped: two rows get one key
    /// only when their values are the same, whatever commas and equals signs they hold.
    @Test func backfilledRowsAreNamedByEscapedKeyValues() throws {
        func key(_ values: KeyValuePairs<String, TupleValue>) throws -> String {
            let row = Row(columns: values.map { Column(name: $0.key, typeOID: 25, isKey: true) }, values: values.map(\.value))
            let change = Change(lsn: LSN(0x1_0000_0100), schema: "public", table: "t", operation: .read, new: row)
            let transaction = Transaction(
                xid: 1, commitLSN: LSN(0x1_0000_0200), endLSN: LSN(0x1_0000_0230), commitTime: PostgresTimestamp(microsecondsSince2000: 0),
                changes: TransactionChanges([change]),
                backfill: BackfillChunk(backfill: 4, number: 1, table: TableName(schema: "public", name: "t"),
                                        keyColumns: values.map(\.key), cursor: [], rowsRead: 1, rowsSuperseded: 0, isLast: true))
            return try #require(transaction.position(of: change, at: 0).backfilledRow?.key)
        }
        func text(_ value: String) -> TupleValue { .text(ArraySlice(value.utf8)) }
        #expect(try key(["id": text("7")]) == "id=7")
        let first = try key(["a": text("x,b=y"), "b": text("z")])
        #expect(first == "a=x\\,b\\=y,b=z")
        #expect(try first != key(["a": text("x"), "b": text("y,b=z")]))
        #expect(try key(["a": text("x\\"), "b": text("y")]) != key(["a": text("x"), "b": text("\\y")]))
        // Line breaks, which the Idempotency-Key header cannot carry, are written as escapes
        // that no value's own backslash can forge; a comma under a combining mark is escaped too.
        let broken = try key(["k": text("a\r\nb\nc")])
        #expect(broken == #"k=a\r\nb\nc"#)
        #expect(!broken.utf8.contains(0x0A) && !broken.utf8.contains(0x0D))
        #expect(try key(["k": text(#"a\nb"#)]) != broken && key(["k": text("a\nb")]) != key(["k": text(#"a\nb"#)]))
        #expect(try key(["a": text("x,\u{301}b=y"), "b": text("z")]) == "a=x\\,\u{301}b\\=y,b=z")
        // Bytes as two hex digits each: 0x01 0x23 and 0x12 0x03 differ.
        #expect(try key(["k": .binary([0x01, 0x23])]) == "k=\\x0123")
        #expect(try key(["k": .binary([0x01, 0x23])]) != key(["k": .binary([0x12, 0x03])]))
        // A long key is bounded, the same way each time, and a different value gets another.
        let long = String(repeating: "v", count: 2_000)
        let bounded = try key(["id": text(long)])
        #expect(bounded.utf8.count < 200 && bounded.hasPrefix("id=vvv") && bounded.contains("sha256:"), "\(bounded)")
        #expect(try key(["id": text(long)]) == bounded)
        #expect(try key(["id": text(long + "w")]) != bounded)
    }

    /// A table's name keeps its text in a key but for its line breaks, which the header
    /// cannot carry: a backslash or comma in it is not escaped, so no key made before changes.
    @Test func aTablesNameInAKeyLosesOnlyItsLineBreaks() {
        let row = BackfilledRow(backfill: 2, table: TableName(schema: "public", name: "a\\b,c=\r\nd"), key: "id=1")
        let key = ChangePosition(commitLSN: LSN(1), index: 0, backfilledRow: row).key(handler: "echo")
        #expect(!key.utf8.contains(0x0A) && !key.utf8.contains(0x0D), "\(key)")
        #expect(key.contains(#"a\b,c=\r\nd"#) && key.hasPrefix("echo:backfill:2:") && key.hasSuffix(":id=1"), "\(key)")
    }
}
