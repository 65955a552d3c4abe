import Core
import Testing
@testable import Decoding

private func text(_ value: String) -> TupleValue { .text(ArraySlice(value.utf8)) }

private let stamp = #""timestamp":"2026-11-23 21:42:07.123456+00""#
private let begin = #"{"action":"B","xid":771,"# + stamp + #","lsn":"0/16B3A50","nextlsn":"0/16B3A80"}"#
private let commit = #"{"action":"C","xid":771,"# + stamp + #","lsn":"0/16B3A50","nextlsn":"0/16B3A80"}"#

/// Feeds records as consecutive XLogData messages and collects what they complete.
private func decode(_ records: [String], decoder: inout Wal2JsonDecoder) throws(Wal2JsonDecodingError) -> [Wal2JsonEvent] {
    var events: [Wal2JsonEvent] = []
    for (index, record) in records.enumerated() {
        if let event = try decoder.decodeEvent(ArraySlice(record.utf8), at: LSN(0x16B_3700 + UInt64(index) * 0x10)) {
            events.append(event)
        }
    }
    return events
}

/// A router that publishes every table under its own name, with `columns` as its columns where given.
private func knownColumns(_ columns: @escaping @Sendable (TableName) -> [String]?) -> Wal2JsonDecoder.Router {
    { table, _, _, _, _ in Wal2JsonRoute(table: table, columns: columns(table)) }
}

private func transaction(_ changeRecords: [String], router: Wal2JsonDecoder.Router? = nil) throws -> Transaction {
    var decoder = Wal2JsonDecoder(router: router)
    let events = try decode([begin] + changeRecords + [commit], decoder: &decoder)
    guard events.count == 1, case .transaction(let transaction) = events[0] else {
        Issue.record("expected one transaction, got \(events)")
        throw CancellationError()
    }
    return transaction
}

@Suite struct Wal2JsonDecoderTests {
    @Test func decodesAnInsertKeepingEveryValueAsPostgresText() throws {
        let insert = #"{"action":"I","xid":771,"# + stamp + #","lsn":"0/16B3748","schema":"public","table":"items","columns":["#
            + #"{"name":"id","type":"bigint","typeoid":20,"value":9223372036854775807},"#
            + #"{"name":"price","type":"numeric(38,10)","typeoid":1700,"value":1234567890123456789012345678.0123456789},"#
            + #"{"name":"ratio","type":"double precision","typeoid":701,"value":1.5e-07},"#
            + #"{"name":"nan","type":"double precision","typeoid":701,"value":null},"#
            + #"{"name":"ok","type":"boolean","typeoid":16,"value":true},"#
            + #"{"name":"off","type":"boolean","typeoid":16,"value":false},"#
            + #"{"name":"blob","type":"bytea","typeoid":17,"value":"deadbeef"},"#
            + #"{"name":"doc","type":"jsonb","typeoid":3802,"value":"{\"a\": [1, 2], \"b\": \"x\\ny\"}"},"#
            + #"{"name":"tags","type":"text[]","typeoid":1009,"value":"{a,\"b c\"}"},"#
            + #"{"name":"at","type":"timestamp with time zone","typeoid":1184,"value":"2026-11-23 21:42:07.5+00"},"#
            + #"{"name":"note","type":"text","typeoid":25,"value":"tab\there é 😀"}"#
            + #"],"pk":[{"name":"id","type":"bigint","typeoid":20}]}"#
        let result = try transaction([insert])
        #expect(result.xid == 771)
        #expect(result.commitLSN == LSN(0x16B_3A50))
        #expect(result.endLSN == LSN(0x16B_3A80))
        #expect(result.commitTime == PostgresTimestamp(microsecondsSince2000: 848_785_327_123_456))
        #expect(result.changes.count == 1)
        let change = try #require(result.changes.all.first)
        #expect(change.lsn == LSN(0x16B_3748))
        #expect(change.schema == "public")
        #expect(change.table == "items")
        #expect(change.operation == .insert)
        #expect(change.old == nil)
        let new = try #require(change.new)
        #expect(new.columns == [
            Column(name: "id", typeOID: 20, isKey: true), Column(name: "price", typeOID: 1700),
            Column(name: "ratio", typeOID: 701), Column(name: "nan", typeOID: 701), Column(name: "ok", typeOID: 16),
            Column(name: "off", typeOID: 16), Column(name: "blob", typeOID: 17), Column(name: "doc", typeOID: 3802),
            Column(name: "tags", typeOID: 1009), Column(name: "at", typeOID: 1184), Column(name: "note", typeOID: 25),
        ])
        #expect(new.values == [
            text("9223372036854775807"), text("1234567890123456789012345678.0123456789"), text("1.5e-07"), .null,
            text("t"), text("f"), text(#"\xdeadbeef"#), text(#"{"a": [1, 2], "b": "x\ny"}"#), text(#"{a,"b c"}"#),
            text("2026-11-23 21:42:07.5+00"), text("tab\there é 😀"),
        ])
    }

    @Test func sharesTheRecordBytesForUnescapedValues() throws {
        let record = Array((#"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","typeoid":25,"value":"plain"}]}"#).utf8)
        var decoder = Wal2JsonDecoder()
        _ = try decoder.decode(ArraySlice(begin.utf8), at: LSN(1))
        _ = try decoder.decode(record[...], at: LSN(2))
        let result = try #require(try decoder.decode(ArraySlice(commit.utf8), at: LSN(3)))
        guard case .text(let value) = try result.changes.all[0].new?.values[0] else {
            Issue.record("expected a text value")
            return
        }
        #expect(value.withUnsafeBufferPointer { $0.baseAddress } == record.withUnsafeBufferPointer { $0.baseAddress! + value.startIndex })
    }

    @Test func decodesAFullIdentityUpdate() throws {
        let update = #"{"action":"U","xid":771,"# + stamp + #","lsn":"0/16B3800","schema":"public","table":"jobs","columns":["#
            + #"{"name":"id","type":"uuid","typeoid":2950,"value":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},"#
            + #"{"name":"status","type":"text","typeoid":25,"value":"done"},"#
            + #"{"name":"title","type":"text","typeoid":25,"value":null}],"#
            + #""identity":[{"name":"id","type":"uuid","typeoid":2950,"value":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},"#
            + #"{"name":"status","type":"text","typeoid":25,"value":"queued"},"#
            + #"{"name":"title","type":"text","typeoid":25,"value":null}],"#
            + #""pk":[{"name":"id","type":"uuid","typeoid":2950}]}"#
        let change = try #require(try transaction([update]).changes.all.first)
        #expect(change.operation == .update)
        let columns = [Column(name: "id", typeOID: 2950, isKey: true), Column(name: "status", typeOID: 25),
                       Column(name: "title", typeOID: 25)]
        #expect(change.new == Row(columns: columns, values: [text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("done"), .null]))
        #expect(change.old == Row(columns: columns, values: [text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), text("queued"), .null]))
    }

    @Test func dropsAnUnchangedKeyImageLikePgoutputButKeepsAChangedKey() throws {
        let unchanged = #"{"action":"U","lsn":"0/16B3800","schema":"public","table":"t","columns":["#
            + #"{"name":"id","typeoid":23,"value":1},{"name":"v","typeoid":25,"value":"new"}],"#
            + #""identity":[{"name":"id","typeoid":23,"value":1}],"pk":[{"name":"id","typeoid":23}]}"#
        let changed = #"{"action":"U","lsn":"0/16B3900","schema":"public","table":"t","columns":["#
            + #"{"name":"id","typeoid":23,"value":2},{"name":"v","typeoid":25,"value":"new"}],"#
            + #""identity":[{"name":"id","typeoid":23,"value":1}],"pk":[{"name":"id","typeoid":23}]}"#
        let changes = try transaction([unchanged, changed]).changes.all
        #expect(changes[0].old == nil)
        #expect(changes[1].old == Row(columns: [Column(name: "id", typeOID: 23, isKey: true)], values: [text("1")]))
        #expect(changes[1].new?.columns.map(\.isKey) == [true, false])
    }

    @Test func marksOmittedToastColumnsWithKnownColumns() throws {
        let update = #"{"action":"U","lsn":"0/16B3800","schema":"public","table":"docs","columns":["#
            + #"{"name":"id","typeoid":20,"value":7},{"name":"title","typeoid":25,"value":"t"}],"#
            + #""identity":[{"name":"id","typeoid":20,"value":7}],"pk":[{"name":"id","typeoid":20}]}"#
        let known = knownColumns { $0 == TableName(schema: "public", name: "docs") ? ["id", "body", "title"] : nil }
        let change = try #require(try transaction([update], router: known).changes.all.first)
        #expect(change.new == Row(
            columns: [Column(name: "id", typeOID: 20, isKey: true), Column(name: "body", typeOID: 0), Column(name: "title", typeOID: 25)],
            values: [text("7"), .unchangedToast, text("t")]))
        #expect(change.old == nil)

        let withoutKnown = try #require(try transaction([update]).changes.all.first)
        #expect(withoutKnown.new?.columns.map(\.name) == ["id", "title"])
    }

    @Test func decodesDeleteTruncateAndMessages() throws {
        let delete = #"{"action":"D","xid":771,"# + stamp + #","lsn":"0/16B3900","schema":"public","table":"items","#
            + #""identity":[{"name":"id","type":"bigint","typeoid":20,"value":-9223372036854775808}],"#
            + #""pk":[{"name":"id","type":"bigint","typeoid":20}]}"#
        let truncateA = #"{"action":"T","xid":771,"# + stamp + #","lsn":"0/16B3A00","schema":"public","table":"a"}"#
        let truncateB = #"{"action":"T","xid":771,"# + stamp + #","lsn":"0/16B3A00","schema":"other","table":"b"}"#
        let message = #"{"action":"M","xid":771,"# + stamp + #","lsn":"0/16B3A10","transactional":true,"prefix":"changerelay.tick","content":"hi \"there\""}"#
        let foreign = #"{"action":"M","xid":771,"# + stamp + #","lsn":"0/16B3A20","transactional":true,"prefix":"relay","content":"x"}"#
        let loose = #"{"action":"M","xid":null,"timestamp":null,"lsn":"0/16B3C00","transactional":false,"prefix":"p","content":""}"#
        var decoder = Wal2JsonDecoder()
        let events = try decode([loose, begin, delete, truncateA, truncateB, message, foreign, commit], decoder: &decoder)
        #expect(events.count == 2)
        #expect(events[0] == .message(Wal2JsonMessage(lsn: LSN(0x16B_3C00), xid: nil, transactional: false, prefix: "p", content: "")))
        guard case .transaction(let result) = events[1] else {
            Issue.record("expected a transaction")
            return
        }
        // A transactional message of ChangeRelay's comes with its transaction; another application's is dropped.
        #expect(result.messages == [LogicalMessage(lsn: LSN(0x16B_3A10), prefix: "changerelay.tick",
                                                   content: Array("hi \"there\"".utf8))])
        #expect(result.changes == [
            Change(lsn: LSN(0x16B_3900), schema: "public", table: "items", operation: .delete,
                   old: Row(columns: [Column(name: "id", typeOID: 20, isKey: true)], values: [text("-9223372036854775808")])),
            Change(lsn: LSN(0x16B_3A00), schema: "public", table: "a", operation: .truncate),
            Change(lsn: LSN(0x16B_3A00), schema: "other", table: "b", operation: .truncate),
        ])
        #expect(!decoder.isInTransaction)
    }

    @Test func takesKeysFromAKeyOnlyIdentityWhenThereIsNoPrimaryKey() throws {
        let delete = #"{"action":"D","origin":0,"lsn":"0/16B3900","schema":"public","table":"t","#
            + #""identity":[{"name":"code","type":"text","typeoid":25,"value":"a\\b"}],"pk":[],"future":{"x":[1]}}"#
        let known = knownColumns { _ in ["code", "v"] }
        let change = try #require(try transaction([delete], router: known).changes.all.first)
        #expect(change.old == Row(columns: [Column(name: "code", typeOID: 25, isKey: true)], values: [text(#"a\b"#)]))

        let full = #"{"action":"D","lsn":"0/16B3900","schema":"public","table":"t","#
            + #""identity":[{"name":"code","typeoid":25,"value":"a"},{"name":"v","typeoid":25,"value":null}]}"#
        let fullChange = try #require(try transaction([full], router: known).changes.all.first)
        #expect(fullChange.old?.columns.map(\.isKey) == [false, false])
    }

    @Test func decodeSkipsMessagesAndReportsTransactions() throws {
        var decoder = Wal2JsonDecoder()
        #expect(try decoder.decode(ArraySlice(begin.utf8), at: LSN(1)) == nil)
        #expect(decoder.isInTransaction)
        let message = #"{"action":"M","xid":771,"lsn":"0/1","transactional":true,"prefix":"p","content":"c"}"#
        #expect(try decoder.decode(ArraySlice(message.utf8), at: LSN(2)) == nil)
        let result = try decoder.decode(ArraySlice(commit.utf8), at: LSN(3))
        #expect(result?.changes == [])
    }

    /// wal2json prints a binary logical message's bytes into its `content` as they are (up to
    /// the first zero byte): another application's, not UTF-8, must not stop the stream.
    @Test func takesAnotherApplicationsBinaryMessageAsItsBytes() throws {
        func record(transactional: Bool) -> [UInt8] {
            Array(#"{"action":"M","xid":771,"lsn":"0/1","transactional":\#(transactional),"prefix":"other.bin","content":""#.utf8)
                + [0xFF, 0xC3, 0x28, 0x41] + Array(#""}"#.utf8)
        }
        var decoder = Wal2JsonDecoder()
        #expect(try decoder.decodeEvent(ArraySlice(record(transactional: false)), at: LSN(1))
            == .message(Wal2JsonMessage(lsn: LSN(1), xid: 771, transactional: false, prefix: "other.bin", content: "\u{FFFD}\u{FFFD}(A")))
        _ = try decoder.decode(ArraySlice(begin.utf8), at: LSN(2))
        #expect(try decoder.decode(ArraySlice(record(transactional: true)), at: LSN(3)) == nil)
        #expect(try decoder.decode(ArraySlice(commit.utf8), at: LSN(4))?.messages == [])
    }

    @Test func usesTheXLogDataPositionWhenAChangeHasNoLSN() throws {
        var decoder = Wal2JsonDecoder()
        _ = try decoder.decode(ArraySlice(begin.utf8), at: LSN(1))
        let insert = #"{"action":"I","schema":"s","table":"t","columns":[]}"#
        _ = try decoder.decode(ArraySlice(insert.utf8), at: LSN(0xABC))
        let result = try decoder.decode(ArraySlice(commit.utf8), at: LSN(3))
        #expect(try result?.changes.all.first?.lsn == LSN(0xABC))
    }

    @Test func readsNegativeTypeOIDsAsWal2JsonPrintsThem() throws {
        let insert = #"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","typeoid":-2147483000,"value":"x"}]}"#
        let change = try #require(try transaction([insert]).changes.all.first)
        #expect(change.new?.columns.first?.typeOID == 2_147_484_296)
    }

    static let day: Int64 = 86_400_000_000
    static let timestamps: [(String, Int64)] = [
        ("2026-11-23 21:42:07.123456+00", 848_785_327_123_456),
        ("2026-11-23 23:12:07.5+01:30", 848_785_327_500_000),
        ("2026-11-23 13:42:07-08", 848_785_327_000_000),
        ("2000-01-01 00:00:00+00", 0),
        ("1999-12-31 23:59:59.999999+00", -1),
        ("2000-01-01 00:00:00+00:00:30", -30_000_000),
        ("0001-01-01 00:00:00+00 BC", -730_485 * day),
        ("2024-02-29 12:00:00.01+00", 8825 * day + 43_200_010_000),
    ]

    @Test(arguments: timestamps)
    func parsesCommitTimestamps(_ text: String, _ microseconds: Int64) throws {
        let record = #"{"action":"B","xid":1,"timestamp":"\#(text)"}"#
        var decoder = Wal2JsonDecoder()
        _ = try decoder.decode(ArraySlice(record.utf8), at: LSN(1))
        let done = try decoder.decode(ArraySlice(#"{"action":"C","lsn":"0/2","nextlsn":"0/3"}"#.utf8), at: LSN(2))
        #expect(done?.commitTime == PostgresTimestamp(microsecondsSince2000: microseconds))
    }

    static let malformed: [(records: [String], field: String?, table: String?, reason: Wal2JsonDecodingError.Reason)] = [
        ([#"{"action":"B","#], nil, nil, .invalidJSON(JSONParseError(offset: 14, reason: .unexpectedEnd))),
        ([#"["action"]"#], nil, nil, .invalidJSON(JSONParseError(offset: 0, reason: .unexpectedByte(UInt8(ascii: "["))))),
        ([#"{"action":"B","xid":1}"#], "timestamp", nil, .missingField),
        ([#"{"xid":1}"#], "action", nil, .missingField),
        ([#"{"action":"B","xid":"1","timestamp":"2000-01-01 00:00:00+00"}"#], "xid", nil, .wrongType(expected: "number")),
        ([#"{"action":"B","xid":1.5,"timestamp":"2000-01-01 00:00:00+00"}"#], "xid", nil,
         .invalidValue("1.5 is not a 32-bit integer")),
        ([#"{"action":"B","xid":4294967296,"timestamp":"2000-01-01 00:00:00+00"}"#], "xid", nil,
         .invalidValue("4294967296 is not a transaction id")),
        ([#"{"action":"B","xid":1,"timestamp":"2000-13-01 00:00:00+00"}"#], "timestamp", nil,
         .invalidValue("\"2000-13-01 00:00:00+00\" is not an ISO timestamptz")),
        // Past Postgres' last year the microseconds would overflow: refused, never a trap.
        ([#"{"action":"B","xid":1,"timestamp":"999999999-12-31 23:59:59+00"}"#], "timestamp", nil,
         .invalidValue("\"999999999-12-31 23:59:59+00\" is not an ISO timestamptz")),
        ([#"{"action":"B","xid":1,"timestamp":"294277-12-31 00:00:00+00"}"#], "timestamp", nil,
         .invalidValue("\"294277-12-31 00:00:00+00\" is not an ISO timestamptz")),
        ([#"{"action":"B","action":"B"}"#], "action", nil, .duplicateField),
        ([#"{"action":"X"}"#], "action", nil, .unknownAction("X")),
        ([#"{"action":"Insert"}"#], "action", nil, .unknownAction("Insert")),
        ([#"{"action":"I","schema":"s","table":"t","columns":[]}"#], nil, "s.t", .changeOutsideTransaction),
        ([#"{"action":"C","lsn":"0/1","nextlsn":"0/2"}"#], nil, nil, .changeOutsideTransaction),
        ([#"{"action":"M","transactional":true,"prefix":"p","content":"c"}"#], nil, nil, .changeOutsideTransaction),
        ([begin, begin], nil, nil, .beginInsideTransaction(openXID: 771)),
        ([begin, #"{"action":"C","xid":772,"lsn":"0/1","nextlsn":"0/2"}"#], "xid", nil, .xidMismatch(begin: 771, commit: 772)),
        ([begin, #"{"action":"C","lsn":"0/1"}"#], "nextlsn", nil, .missingField),
        ([begin, #"{"action":"C","lsn":"0/XYZ","nextlsn":"0/2"}"#], "lsn", nil, .invalidValue("\"0/XYZ\" is not an LSN")),
        ([begin, #"{"action":"I","schema":"s","table":5}"#], "table", nil, .wrongType(expected: "string")),
        ([begin, #"{"action":"I","schema":"s","table":"t"}"#], "columns", "s.t", .missingField),
        ([begin, #"{"action":"D","schema":"s","table":"t"}"#], "identity", "s.t", .missingField),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":{}}"#], "columns", "s.t", .wrongType(expected: "array")),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[1]}"#], "columns[0]", "s.t", .wrongType(expected: "object")),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","typeoid":"25","value":"x"}]}"#],
         "columns[0].typeoid", "s.t", .wrongType(expected: "number")),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","typeoid":25,"value":"x"},{"name":"b","typeoid":25}]}"#],
         "columns[1].value", "s.t", .missingField),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[{"typeoid":25,"value":"x"}]}"#],
         "columns[0].name", "s.t", .missingField),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","value":"x"}]}"#],
         "columns[0].typeoid", "s.t", .missingField),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","typeoid":114,"value":{"k":1}}]}"#],
         "columns[0].value", "s.t", .wrongType(expected: "string, number, boolean or null")),
        ([begin, #"{"action":"I","schema":"s","table":"t","columns":[{"name":"a","name":"b","typeoid":25,"value":"x"}]}"#],
         "columns[0].name", "s.t", .duplicateField),
        ([begin, #"{"action":"M","transactional":"yes","prefix":"p","content":"c"}"#], "transactional", nil,
         .wrongType(expected: "boolean")),
    ]

    @Test(arguments: malformed)
    func rejectsBadRecordsWithTheirPositionFieldAndReason(
        _ records: [String], _ field: String?, _ table: String?, _ reason: Wal2JsonDecodingError.Reason
    ) {
        var decoder = Wal2JsonDecoder()
        let lastLSN = LSN(0x16B_3700 + UInt64(records.count - 1) * 0x10)
        #expect(throws: Wal2JsonDecodingError(lsn: lastLSN, field: field, table: table, reason: reason)) {
            _ = try decode(records, decoder: &decoder)
        }
    }

    @Test func describesErrors() {
        let error = Wal2JsonDecodingError(lsn: LSN(0x16B_3748), field: "columns[2].typeoid", table: "public.items",
                                          reason: .wrongType(expected: "number"))
        #expect(error.description == #"wal2json record at 0/16B3748 (table public.items), field "columns[2].typeoid": expected number"#)
        let json = Wal2JsonDecodingError(lsn: LSN(1), reason: .invalidJSON(JSONParseError(offset: 14, reason: .unexpectedEnd)))
        #expect(json.description == "wal2json record at 0/1: invalid JSON: unexpected end of input at byte 14")
    }

    /// wal2json sends a transaction whole at its commit: past the threshold its changes
    /// move to a spill file, and read back the same. A directory that cannot hold the
    /// file is an error naming the record and the directory.
    @Test func aLargeTransactionSpillsAndReadsBackTheSame() throws {
        let inserts = (0..<300).map { number in
            #"{"action":"I","xid":771,"# + stamp + #","lsn":"0/16B3748","schema":"public","table":"items","columns":["#
                + #"{"name":"id","type":"bigint","typeoid":20,"value":\#(number)},"#
                + #"{"name":"note","type":"text","typeoid":25,"value":"row \#(number)"}],"pk":[{"name":"id","type":"bigint","typeoid":20}]}"#
        }
        var inMemory = Wal2JsonDecoder()
        var spilled = Wal2JsonDecoder(spill: SpillSettings(threshold: 2_000, directory: SpillSettings.defaultDirectory))
        let expected = try decode([begin] + inserts + [commit], decoder: &inMemory)
        let actual = try decode([begin] + inserts + [commit], decoder: &spilled)
        guard case .transaction(let kept)? = expected.first, case .transaction(let read)? = actual.first else {
            Issue.record("expected a transaction each")
            return
        }
        #expect(!kept.changes.isSpilled)
        #expect(read.changes.isSpilled)
        #expect(read.changes.count == 300)
        #expect(read == kept)

        var failing = Wal2JsonDecoder(spill: SpillSettings(threshold: 1, directory: "/nonexistent/changerelay"))
        #expect {
            try decode([begin] + inserts, decoder: &failing)
        } throws: { error in
            "\(error)".contains("/nonexistent/changerelay") && "\(error)".contains("public.items")
        }
    }
}

/// Routing: what the decoder does with a router's answer, independent of any database.
@Suite struct Wal2JsonRoutingTests {
    static let root = TableName(schema: "public", name: "p")
    static let leaf = TableName(schema: "public", name: "p2")

    /// p2's columns stand in another order than its root's, and `g` is generated.
    static let viaRoot: Wal2JsonDecoder.Router = { table, _, _, _, _ in
        switch table {
        case leaf: Wal2JsonRoute(table: root, columns: ["id", "k", "v"], generated: ["g"])
        case root: Wal2JsonRoute(table: root, columns: ["id", "k", "v"])
        default: nil
        }
    }

    static func column(_ name: String, _ value: String) -> String {
        #"{"name":"\#(name)","typeoid":25,"value":"\#(value)"}"#
    }

    @Test func aLeafChangeIsReportedUnderTheRootInTheRootsColumnOrderWithoutGeneratedColumns() throws {
        let columns = [Self.column("v", "a"), Self.column("g", "gen"), Self.column("k", "12"), Self.column("id", "2")]
        let insert = #"{"action":"I","lsn":"0/16B3800","schema":"public","table":"p2","columns":["# + columns.joined(separator: ",") + "]}"
        let delete = #"{"action":"D","lsn":"0/16B3810","schema":"public","table":"p2","identity":["#
            + [Self.column("k", "12"), Self.column("id", "2")].joined(separator: ",") + #"],"pk":[{"name":"k"},{"name":"id"}]}"#
        let changes = try transaction([insert, delete], router: Self.viaRoot).changes.all
        #expect(changes.map(\.table) == ["p", "p"])
        #expect(changes[0].new?.columns.map(\.name) == ["id", "k", "v"])
        #expect(changes[0].new?.values == [text("2"), text("12"), text("a")])
        #expect(changes[1].old?.columns.map(\.name) == ["id", "k"])
        #expect(changes[1].old?.values == [text("2"), text("12")])
    }

    /// A leaf's own generated column `g` under the root's plain `g` (Postgres 15 allows it):
    /// pgoutput sends the value computed in the leaf, wal2json never sends a generated column,
    /// so the column is left out of the change, not marked as an unchanged TOAST value.
    @Test func aLeafsOwnGeneratedColumnUnderAPlainRootColumnIsLeftOutNotUnchanged() throws {
        let router: Wal2JsonDecoder.Router = { table, _, _, _, _ in
            table == Self.leaf ? Wal2JsonRoute(table: Self.root, columns: ["id", "k", "g"], generated: ["g"]) : nil
        }
        let update = #"{"action":"U","lsn":"0/16B3800","schema":"public","table":"p2","columns":["#
            + [Self.column("id", "101"), Self.column("k", "1")].joined(separator: ",")
            + #"],"identity":["# + [Self.column("id", "1"), Self.column("k", "1")].joined(separator: ",")
            + #"],"pk":[{"name":"id"},{"name":"k"}]}"#
        let changes = try transaction([update], router: router).changes.all
        #expect(changes.map(\.table) == ["p"])
        #expect(changes[0].new?.columns.map(\.name) == ["id", "k"])
        #expect(changes[0].new?.values == [text("101"), text("1")])
    }

    @Test func unpublishedTablesAndALeafsTruncateUnderItsRootAreDropped() throws {
        let other = #"{"action":"I","lsn":"0/16B3800","schema":"public","table":"other","columns":["# + Self.column("x", "1") + "]}"
        let truncates = ["p", "p1", "p2"].map { #"{"action":"T","lsn":"0/16B3900","schema":"public","table":"\#($0)"}"# }
        let changes = try transaction([other] + truncates, router: Self.viaRoot).changes.all
        #expect(changes == [Change(lsn: LSN(0x16B_3900), schema: "public", table: "p", operation: .truncate)])
    }

    @Test func aSchemaHistoryRowAppliesToTheChangesAfterItInTheSameTransaction() throws {
        let t = TableName(schema: "public", name: "t")
        let router: Wal2JsonDecoder.Router = { table, lsn, _, history, _ in
            table == t ? Wal2JsonRoute(table: t, columns: history.shape(of: t, at: lsn)?.sentColumns) : nil
        }
        func historyRow(id: Int, position: String, columns: String) -> String {
            let shape = #"{\"columns\":\#(columns),\"generated\":[],\"ancestors\":[],\"partitions\":[]}"#
            return #"{"action":"I","lsn":"0/16B38\#(id)0","schema":"changerelay","table":"schema_history","columns":["#
                + #"{"name":"id","typeoid":20,"value":\#(id)},{"name":"position","typeoid":3220,"value":"\#(position)"},"#
                + #"{"name":"schema_name","typeoid":25,"value":"public"},{"name":"table_name","typeoid":25,"value":"t"},"#
                + #"{"name":"shape","typeoid":3802,"value":"\#(shape)"}]}"#
        }
        func update(lsn: String) -> String {
            #"{"action":"U","lsn":"\#(lsn)","schema":"public","table":"t","columns":["# + Self.column("id", "1")
                + #"],"identity":["# + Self.column("id", "1") + #"],"pk":[{"name":"id"}]}"#
        }
        let records = [historyRow(id: 1, position: "0/16B3000", columns: #"[\"id\"]"#), update(lsn: "0/16B3820"),
                       historyRow(id: 2, position: "0/16B3825", columns: #"[\"id\",\"big\"]"#), update(lsn: "0/16B3830")]
        let changes = try transaction(records, router: router).changes.all
        #expect(changes.count == 2, "history rows are not published")
        #expect(changes[0].new?.values == [text("1")], "before the ADD COLUMN: no phantom unchanged TOAST")
        #expect(changes[1].new?.values == [text("1"), .unchangedToast], "after it: the new column was not sent")
    }

    @Test func aBadSchemaHistoryRowStopsTheStreamNamingIt() {
        let bad = #"{"action":"I","lsn":"0/16B3800","schema":"changerelay","table":"schema_history","columns":["#
            + #"{"name":"id","typeoid":20,"value":9},{"name":"position","typeoid":3220,"value":"nowhere"},"#
            + #"{"name":"schema_name","typeoid":25,"value":"public"},{"name":"table_name","typeoid":25,"value":"t"},"#
            + #"{"name":"shape","typeoid":3802,"value":"{}"}]}"#
        #expect {
            _ = try transaction([bad], router: Self.viaRoot)
        } throws: { error in
            guard let error = error as? Wal2JsonDecodingError, case .schemaHistory(let history) = error.reason else { return false }
            return error.table == "changerelay.schema_history" && history.id == "9" && history.reason.contains("nowhere")
        }
    }
}
