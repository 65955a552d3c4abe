import Core
import Testing
@testable import Decoding

private let p = TableName(schema: "public", name: "p")
private let p1 = TableName(schema: "public", name: "p1")
private let p2 = TableName(schema: "public", name: "p2")

private func shape(columns: [String], generated: [String] = [], ancestors: [TableName] = [], partitions: [TableName] = []) -> [UInt8] {
    func list(_ tables: [TableName]) -> String {
        "[" + tables.map { "[\"\($0.schema)\",\"\($0.name)\"]" }.joined(separator: ",") + "]"
    }
    func names(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
    return Array(#"{"columns":\#(names(columns)),"generated":\#(names(generated)),"ancestors":\#(list(ancestors)),"partitions":\#(list(partitions))}"#.utf8)
}

@Suite struct SchemaHistoryTests {
    @Test func anEntryAppliesStrictlyAboveItsPositionAndTheOldestCoversEarlierChanges() throws {
        var history = SchemaHistory()
        try history.record(id: "2", position: "0/200", schema: "public", table: "t", shape: shape(columns: ["id", "a", "b"]))
        try history.record(id: "1", position: "0/100", schema: "public", table: "t", shape: shape(columns: ["id", "a"]))
        let t = TableName(schema: "public", name: "t")
        #expect(history.shape(of: t, at: LSN(0x50))?.columns == ["id", "a"], "older than every entry: the oldest")
        #expect(history.shape(of: t, at: LSN(0x100))?.columns == ["id", "a"])
        #expect(history.shape(of: t, at: LSN(0x200))?.columns == ["id", "a"], "the entry's own position is before its DDL took effect")
        #expect(history.shape(of: t, at: LSN(0x201))?.columns == ["id", "a", "b"])
        #expect(history.shape(of: TableName(schema: "public", name: "other"), at: LSN(0x300)) == nil)
    }

    /// A publication entry counts for its own transaction from its statement and for the
    /// others from its settlement (its commit); before that, the entry before it, or the oldest.
    @Test func aPublicationEntryCountsForItsOwnTransactionFirstAndForTheOthersFromItsCommit() throws {
        func membership(_ tables: [String]) -> [UInt8] {
            let relations = tables.map { #"["public","\#($0)",null]"# }.joined(separator: ",")
            return Array(#"{"relations":[\#(relations)],"schemas":[],"all_tables":false,"via_root":false,"actions":{"insert":true,"update":true,"delete":true,"truncate":true}}"#.utf8)
        }
        var history = SchemaHistory()
        try history.recordPublication(id: "1", position: "0/100", publication: "pub", membership: membership(["a"]),
                                      xid: "700", settledAt: "0/110", committed: true)
        try history.recordPublication(id: "2", position: "0/200", publication: "pub", membership: membership(["a", "b"]),
                                      xid: "701", settledAt: nil, committed: false)
        func tables(at lsn: UInt64, xid: UInt32) -> Set<String>? {
            history.membership(of: "pub", at: LSN(lsn), xid: xid).map { Set($0.relations.map(\.name)) }
        }
        #expect(tables(at: 0x250, xid: 701) == ["a", "b"], "its own transaction, past the statement")
        #expect(tables(at: 0x250, xid: 702) == ["a"], "another transaction, before the commit")
        try history.settlePublication(id: "2", settledAt: "0/300")
        #expect(tables(at: 0x250, xid: 702) == ["a"], "made before the commit")
        #expect(tables(at: 0x301, xid: 702) == ["a", "b"])
        #expect(tables(at: 0x50, xid: 702) == ["a"], "older than every entry: the oldest")
        #expect(history.membership(of: "other", at: LSN(0x301), xid: nil) == nil)

        // The same row loaded and streamed is one entry; an id numbered again (028 rolled back
        // and applied anew) at another position is another.
        try history.recordPublication(id: "2", position: "0/200", publication: "pub", membership: membership(["z"]),
                                      xid: "701", settledAt: "0/300", committed: true)
        #expect(tables(at: 0x301, xid: 702) == ["a", "b"])
        try history.recordPublication(id: "1", position: "0/400", publication: "pub", membership: membership(["c"]),
                                      xid: "900", settledAt: "0/410", committed: true)
        #expect(tables(at: 0x411, xid: 902) == ["c"])
    }

    @Test func theSameRowTwiceIsOneEntry() throws {
        var history = SchemaHistory()
        try history.record(id: "7", position: "0/100", schema: "s", table: "t", shape: shape(columns: ["a"]))
        try history.record(id: "7", position: "0/100", schema: "s", table: "t", shape: shape(columns: ["a"]))
        try history.record(id: "8", position: "0/200", schema: "s", table: "t", shape: shape(columns: ["a", "b"], generated: ["b"]))
        let t = TableName(schema: "s", name: "t")
        #expect(history.shape(of: t, at: LSN(0x300)) == TableShape(columns: ["a", "b"], generated: ["b"]))
        #expect(history.shape(of: t, at: LSN(0x300))?.sentColumns == ["a"])
    }

    @Test func aDetachedPartitionHasNoAncestorOnceItsParentStopsListingIt() throws {
        var history = SchemaHistory()
        try history.record(id: "1", position: "0/100", schema: "public", table: "p",
                           shape: shape(columns: ["id", "k"], partitions: [p1, p2]))
        try history.record(id: "2", position: "0/100", schema: "public", table: "p2",
                           shape: shape(columns: ["k", "id"], ancestors: [p]))
        try history.record(id: "3", position: "0/300", schema: "public", table: "p",
                           shape: shape(columns: ["id", "k"], partitions: [p1]))
        #expect(history.ancestors(of: p2, at: LSN(0x200)) == [p])
        #expect(history.ancestors(of: p2, at: LSN(0x301)) == [])
        #expect(history.ancestors(of: p1, at: LSN(0x200)) == nil, "not in the history: the caller asks the catalog")
    }

    @Test func aStreamedInsertIsRecordedAndOtherOperationsAreNot() throws {
        var history = SchemaHistory()
        func row(_ pairs: [(String, String)]) -> Row {
            Row(columns: pairs.map { Column(name: $0.0, typeOID: 25) }, values: pairs.map { .text(ArraySlice($0.1.utf8)) })
        }
        let fields = [("id", "4"), ("position", "0/A0"), ("schema_name", "public"), ("table_name", "t"),
                      ("shape", String(decoding: shape(columns: ["x"]), as: UTF8.self)), ("kind", "ddl")]
        try history.record(Change(lsn: LSN(0xB0), schema: "changerelay", table: "schema_history", operation: .delete, old: row(fields)))
        #expect(history.isEmpty)
        try history.record(Change(lsn: LSN(0xB0), schema: "changerelay", table: "schema_history", operation: .insert, new: row(fields)))
        #expect(history.shape(of: TableName(schema: "public", name: "t"), at: LSN(0xB0))?.columns == ["x"])
    }

    static let badRows: [(String?, String?, String, String)] = [
        (nil, "0/1", #"{"columns":[],"generated":[],"ancestors":[],"partitions":[]}"#, "its id is not a number"),
        ("1", "zz", #"{"columns":[],"generated":[],"ancestors":[],"partitions":[]}"#, "position 'zz' is not an LSN"),
        ("1", "0/1", "{", "shape is not JSON"),
        ("1", "0/1", #"{"columns":"a","generated":[],"ancestors":[],"partitions":[]}"#, "shape.columns is not an array"),
        ("1", "0/1", #"{"columns":[1],"generated":[],"ancestors":[],"partitions":[]}"#, "shape.columns holds a non-string"),
        ("1", "0/1", #"{"columns":["a"],"generated":["b"],"ancestors":[],"partitions":[]}"#, "names a column not in"),
        ("1", "0/1", #"{"columns":["a"],"generated":[],"ancestors":[["s"]],"partitions":[]}"#, "shape.ancestors holds"),
        ("1", "0/1", #"{"columns":["a"],"generated":[]}"#, "shape.ancestors is not an array"),
    ]

    @Test(arguments: badRows)
    func aBadRowIsRefusedByIdWithItsReason(_ id: String?, _ position: String?, _ json: String, _ reason: String) {
        var history = SchemaHistory()
        do {
            try history.record(id: id, position: position, schema: "s", table: "t", shape: Array(json.utf8))
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.description.contains("changerelay.schema_history row \(id ?? "without an id")"))
            #expect(error.description.contains(reason), "\(error)")
        }
        #expect(history.isEmpty)
    }
}
