import Core
import Testing
@testable import Decoding

private func text(_ value: String) -> TupleValue { .text(ArraySlice(value.utf8)) }

private func bigEndian<T: FixedWidthInteger>(_ value: T) -> TupleValue {
    .binary(ArraySlice(withUnsafeBytes(of: value.bigEndian) { Array($0) }))
}

private let commitTime = PostgresTimestamp(microsecondsSince2000: 848_785_327_123_456)
private let prefix = #"{"lsn":"0/16B3748","xid":771,"commit_time":"2026-11-23 21:42:07.123456+00","schema":"public","table":"items","#

private func line(_ operation: Change.Operation, new: Row? = nil, old: Row? = nil) throws -> String {
    let change = Change(lsn: LSN(0x16B_3748), schema: "public", table: "items", operation: operation, new: new, old: old)
    let transaction = Transaction(xid: 771, commitLSN: LSN(0x16B_3A50), endLSN: LSN(0x16B_3A80), commitTime: commitTime, changes: [change])
    return try ChangeRenderer.line(change, of: transaction)
}

private func row(_ cells: [(String, UInt32, TupleValue)]) -> Row {
    Row(columns: cells.map { Column(name: $0.0, typeOID: $0.1) }, values: cells.map(\.2))
}

@Suite struct RenderChangeTests {
    @Test func rendersTextValuesByType() throws {
        let new = row([
            ("id", 20, text("9223372036854775807")),
            ("small", 21, text("-5")),
            ("n", 23, text("42")),
            ("f4", 700, text("1.5")),
            ("f8", 701, text("1e+100")),
            ("nan", 701, text("NaN")),
            ("inf", 700, text("Infinity")),
            ("ninf", 701, text("-Infinity")),
            ("ok", 16, text("t")),
            ("off", 16, text("f")),
            ("price", 1700, text("1234567890123456789012345678.0123456789")),
            ("doc", 3802, text("{\"a\": [1, 2],\n \"b\": \"x\\ny\"}")),
            ("j", 114, text("[ {\"k\" : null} ,\n\t true ]")),
            ("blob", 17, text(#"\xdeadbeef"#)),
            ("tags", 1009, text(#"{a,"b c"}"#)),
            ("at", 1184, text("2026-11-23 21:42:07.5+00")),
            ("uid", 2950, text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
            ("note", 25, text("line1\nline2 \"q\" \\ é 😀")),
            ("oid", 26, text("16384")),
            ("gone", 25, .null),
        ])
        #expect(try line(.insert, new: new) == prefix + #""op":"insert","new":{"id":9223372036854775807,"small":-5,"n":42,"#
            + #""f4":1.5,"f8":1e+100,"nan":"NaN","inf":"Infinity","ninf":"-Infinity","ok":true,"off":false,"#
            + #""price":"1234567890123456789012345678.0123456789","doc":{"a":[1,2],"b":"x\ny"},"j":[{"k":null},true],"#
            + #""blob":"\\xdeadbeef","tags":"{a,\"b c\"}","at":"2026-11-23 21:42:07.5+00","#
            + #""uid":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","note":"line1\nline2 \"q\" \\ é 😀","oid":"16384","gone":null},"#
            + #""old":null}"#)
    }

    @Test func listsUnchangedToastColumnsInsteadOfRenderingThem() throws {
        let new = Row(columns: [Column(name: "id", typeOID: 20, isKey: true), Column(name: "body", typeOID: 25),
                                Column(name: "title", typeOID: 25), Column(name: "extra", typeOID: 3802)],
                      values: [text("7"), .unchangedToast, text("t"), .unchangedToast])
        let old = Row(columns: [Column(name: "id", typeOID: 20, isKey: true)], values: [text("6")])
        #expect(try line(.update, new: new, old: old) == prefix
            + #""op":"update","new":{"id":7,"title":"t"},"old":{"id":6},"unchanged_toast":["body","extra"]}"#)
    }

    @Test func rendersDeletesAndTruncates() throws {
        let old = row([("id", 23, text("1")), ("name", 25, .null)])
        #expect(try line(.delete, old: old) == prefix + #""op":"delete","new":null,"old":{"id":1,"name":null}}"#)
        #expect(try line(.truncate) == prefix + #""op":"truncate","new":null,"old":null}"#)
    }

    @Test func rendersBinaryValuesAsPostgresText() throws {
        let new = row([
            ("b", 16, .binary([1])),
            ("b0", 16, .binary([0])),
            ("s", 21, bigEndian(Int16(-5))),
            ("i", 23, bigEndian(Int32(256))),
            ("l", 20, bigEndian(Int64.min)),
            ("t", 25, .binary(ArraySlice("héllo \"x\"\n".utf8))),
            ("v", 1043, .binary(ArraySlice("v".utf8))),
            ("c", 1042, .binary(ArraySlice("ab  ".utf8))),
            ("n", 19, .binary(ArraySlice("pg_name".utf8))),
            ("by", 17, .binary([0xDE, 0xAD, 0x00, 0x0F])),
            ("e", 17, .binary([])),
            ("u", 2950, .binary([0xA0, 0xEE, 0xBC, 0x99, 0x9C, 0x0B, 0x4E, 0xF8, 0xBB, 0x6D, 0x6B, 0xB9, 0xBD, 0x38, 0x0A, 0x11])),
            ("j", 114, .binary(ArraySlice("{\"k\": [true, null]}".utf8))),
            ("jb", 3802, .binary(ArraySlice([1] + Array("{\"k\": 1}".utf8)))),
            ("d", 1082, bigEndian(Int32(9823))),
            ("leap", 1082, bigEndian(Int32(8825))),
            ("bc", 1082, bigEndian(Int32(-730_485))),
            ("dinf", 1082, bigEndian(Int32.max)),
            ("ts", 1114, bigEndian(Int64(1))),
            ("tsz", 1184, bigEndian(Int64(848_785_327_123_456))),
            ("before", 1184, bigEndian(Int64(-1))),
            ("round", 1184, bigEndian(Int64(848_785_327_500_000))),
            ("tsinf", 1114, bigEndian(Int64.min)),
            ("bcts", 1184, bigEndian(Int64(-730_485) * 86_400_000_000)),
        ])
        #expect(try line(.insert, new: new) == prefix + #""op":"insert","new":{"b":true,"b0":false,"s":-5,"i":256,"#
            + #""l":-9223372036854775808,"t":"héllo \"x\"\n","v":"v","c":"ab  ","n":"pg_name","by":"\\xdead000f","e":"\\x","#
            + #""u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","j":{"k":[true,null]},"jb":{"k":1},"d":"2026-11-23","#
            + #""leap":"2024-02-29","bc":"0001-01-01 BC","dinf":"infinity","ts":"2000-01-01 00:00:00.000001","#
            + #""tsz":"2026-11-23 21:42:07.123456+00","before":"1999-12-31 23:59:59.999999+00","#
            + #""round":"2026-11-23 21:42:07.5+00","tsinf":"-infinity","bcts":"0001-01-01 00:00:00+00 BC"},"old":null}"#)
    }

    static let floats: [(TupleValue, UInt32, String)] = [
        (bigEndian(Float(1.5).bitPattern), 700, "1.5"),
        (bigEndian(Float(100_000).bitPattern), 700, "100000"),
        (bigEndian(Float(1_000_000).bitPattern), 700, "1e+06"),
        (bigEndian(Float(0.1).bitPattern), 700, "0.1"),
        (bigEndian(Float(1.0e-5).bitPattern), 700, "1e-05"),
        (bigEndian(Float(-0.0).bitPattern), 700, "-0"),
        (bigEndian(Float.nan.bitPattern), 700, "\"NaN\""),
        (bigEndian((0.1 + 0.2 as Double).bitPattern), 701, "0.30000000000000004"),
        (bigEndian(Double(123_456_789_012_345).bitPattern), 701, "123456789012345"),
        (bigEndian(Double(1e15).bitPattern), 701, "1e+15"),
        (bigEndian(Double(1_234_567_890_123_456).bitPattern), 701, "1.234567890123456e+15"),
        (bigEndian(Double(0.0001).bitPattern), 701, "0.0001"),
        (bigEndian(Double(0.00001234).bitPattern), 701, "1.234e-05"),
        (bigEndian(Double(100).bitPattern), 701, "100"),
        (bigEndian(Double(-2.5).bitPattern), 701, "-2.5"),
        (bigEndian(Double(0).bitPattern), 701, "0"),
        (bigEndian(Double(1e100).bitPattern), 701, "1e+100"),
        (bigEndian(Double.leastNonzeroMagnitude.bitPattern), 701, "5e-324"),
        (bigEndian(Double.greatestFiniteMagnitude.bitPattern), 701, "1.7976931348623157e+308"),
        (bigEndian(Double.infinity.bitPattern), 701, "\"Infinity\""),
        (bigEndian((-Double.infinity).bitPattern), 701, "\"-Infinity\""),
        (bigEndian(Double.nan.bitPattern), 701, "\"NaN\""),
    ]

    @Test(arguments: floats)
    func rendersBinaryFloatsLikeFloatOut(_ value: TupleValue, _ typeOID: UInt32, _ expected: String) throws {
        #expect(try line(.insert, new: row([("x", typeOID, value)])) == prefix + #""op":"insert","new":{"x":"# + expected + #"},"old":null}"#)
    }

    static let failures: [(TupleValue, UInt32, ChangeRenderingError.Reason)] = [
        (.binary([0, 0]), 1700, .unsupportedBinaryType),
        (.binary([0, 0, 0]), 23, .invalidBinaryValue("expected 4 bytes, got 3")),
        (.binary([2]), 16, .invalidBinaryValue("expected one byte 0 or 1")),
        (.binary([1, 2]), 2950, .invalidBinaryValue("expected 16 bytes, got 2")),
        (.binary(ArraySlice([2] + Array("{}".utf8))), 3802, .invalidBinaryValue("unsupported jsonb version 2")),
        (text("yes"), 16, .invalidTextValue("expected t or f")),
        (text("12abc"), 23, .invalidTextValue("\"12abc\" is not a number")),
        (text("{\"a\":}"), 3802, .invalidJSON(JSONParseError(offset: 5, reason: .unexpectedByte(UInt8(ascii: "}"))))),
    ]

    @Test(arguments: failures)
    func reportsValuesItCannotRender(_ value: TupleValue, _ typeOID: UInt32, _ reason: ChangeRenderingError.Reason) {
        #expect(throws: ChangeRenderingError(lsn: LSN(0x16B_3748), schema: "public", table: "items", column: "x",
                                             typeOID: typeOID, reason: reason)) {
            try line(.insert, new: row([("ok", 23, text("1")), ("x", typeOID, value)]))
        }
    }

    @Test func describesErrors() {
        let error = ChangeRenderingError(lsn: LSN(0x16B_3748), schema: "public", table: "items", column: "x",
                                         typeOID: 1700, reason: .unsupportedBinaryType)
        #expect(error.description
            == #"change at 0/16B3748 on public.items, column "x": binary values of type OID 1700 cannot be rendered (use text mode)"#)
    }

    @Test func rendersAWholeTransactionIntoAReusableBuffer() throws {
        let first = Change(lsn: LSN(0x10), schema: "s", table: "t", operation: .insert, new: row([("a", 23, text("1"))]))
        let bad = Change(lsn: LSN(0x20), schema: "s", table: "t", operation: .insert, new: row([("a", 23, .binary([1]))]))
        let last = Change(lsn: LSN(0x30), schema: "s", table: "t", operation: .truncate)
        let transaction = Transaction(xid: 9, commitLSN: LSN(0x40), endLSN: LSN(0x50),
                                      commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [first, last])
        let head = #"{"lsn":"0/"#
        let tail = #"","xid":9,"commit_time":"2000-01-01 00:00:00+00","schema":"s","table":"t","op":"#
        var writer = JSONWriter()
        for change in try transaction.changes.loaded() { try ChangeRenderer.appendLine(change, of: transaction, to: &writer) }
        #expect(writer.string == head + "10" + tail + #""insert","new":{"a":1},"old":null}"# + "\n"
            + head + "30" + tail + #""truncate","new":null,"old":null}"# + "\n")

        writer.removeAll()
        try ChangeRenderer.appendLine(first, of: transaction, to: &writer)
        let before = writer.bytes
        #expect(throws: ChangeRenderingError.self) { try ChangeRenderer.appendLine(bad, of: transaction, to: &writer) }
        #expect(writer.bytes == before)
        try ChangeRenderer.appendLine(last, of: transaction, to: &writer)
        #expect(writer.string.split(separator: "\n").count == 2)
    }
}

/// `webhook_configs` is published whole, its signing secrets included: wherever a change is
/// rendered (`tail`, webhook bodies), a secret is `<redacted>`, in the new row and the old.
@Suite struct RenderedSecretsTests {
    @Test func aWebhookSecretIsRedactedInBothRows() throws {
        let config = row([("id", 20, text("3")), ("secret", 25, text("whsec_TAILSECRETabc=")), ("url", 25, text("https://h.example")),
                          ("headers", 3802, text(#"{"Authorization": "Bearer TAILTOKEN"}"#))])
        let cleared = row([("id", 20, text("3")), ("secret", 25, .null), ("url", 25, text("https://h.example"))])
        let change = Change(lsn: LSN(0x10), schema: "public", table: "webhook_configs", operation: .update, new: cleared, old: config)
        let transaction = Transaction(xid: 1, commitLSN: LSN(0x20), endLSN: LSN(0x28), commitTime: commitTime, changes: [change])
        let rendered = try ChangeRenderer.line(change, of: transaction)
        #expect(!rendered.contains("TAILSECRET") && !rendered.contains("TAILTOKEN"))
        #expect(rendered.contains(#""old":{"id":3,"secret":"<redacted>","url":"https://h.example","headers":"<redacted>"}"#),
                "\(rendered)")
        #expect(rendered.contains(#""new":{"id":3,"secret":null,"url":"https://h.example"}"#), "\(rendered)")
        var writer = JSONWriter(capacity: 64)
        try ChangeRenderer.appendRow(config, of: change, to: &writer)
        #expect(!writer.string.contains("TAILSECRET") && !writer.string.contains("TAILTOKEN"))
        // Another table's column of that name is data like any other.
        #expect(try line(.insert, new: row([("secret", 25, text("not a credential"))])).contains("not a credential"))
    }

    /// A config's URL is printed as logs print it: credentials in its user part, its query
    /// or its fragment are redacted, in both plugins' forms (text and binary) and both rows.
    @Test(arguments: [false, true])
    func aWebhookURLsCredentialsAreRedacted(binary: Bool) throws {
        let url = "http://alice:PASSW0RD@hooks.example:8080/in?token=QUERYSECRET#FRAGSECRET"
        let value: TupleValue = binary ? .binary(ArraySlice(url.utf8)) : text(url)
        let config = row([("id", 20, text("3")), ("url", 25, value)])
        let change = Change(lsn: LSN(0x10), schema: "public", table: "webhook_configs", operation: .update, new: config, old: config)
        let transaction = Transaction(xid: 1, commitLSN: LSN(0x20), endLSN: LSN(0x28), commitTime: commitTime, changes: [change])
        let rendered = try ChangeRenderer.line(change, of: transaction)
        #expect(!rendered.contains("PASSW0RD") && !rendered.contains("QUERYSECRET") && !rendered.contains("FRAGSECRET"), "\(rendered)")
        #expect(rendered.components(separatedBy: #""url":"http://<redacted>@hooks.example:8080/in?token=<redacted>#<redacted>""#).count == 3,
                "\(rendered)")
        #expect(try line(.insert, new: row([("url", 25, text(url))])).contains("PASSW0RD"), "another table's url is data")
    }
}
