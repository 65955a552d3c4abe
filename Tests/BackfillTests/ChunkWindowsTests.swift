import Backfill
import Core
import Decoding
import Testing

/// The windows decide which backfilled rows reach the handlers: a row a live change touched
/// between the watermarks must never be handed on (the stream handled a newer state), and
/// every other row must be.
@Suite struct ChunkWindowsTests {
    let table = TableName(schema: "public", name: "habit_tracker")
    let token = ChunkToken(run: "r1", backfill: 1, chunk: 1)

    func row(_ id: String, _ name: String = "x") -> Row {
        Row(columns: [Column(name: "id", typeOID: 20, isKey: true), Column(name: "name", typeOID: 25)],
            values: [.text(ArraySlice(id.utf8)), .text(ArraySlice(name.utf8))])
    }

    func keyOnly(_ id: String) -> Row {
        Row(columns: [Column(name: "id", typeOID: 20, isKey: true)], values: [.text(ArraySlice(id.utf8))])
    }

    func change(_ operation: Change.Operation, new: Row? = nil, old: Row? = nil, table name: String = "habit_tracker") -> Change {
        Change(lsn: LSN(100), schema: "public", table: name, operation: operation, new: new, old: old)
    }

    @Test func rowsChangedBetweenTheWatermarksAreDroppedAndTheRestKept() throws {
        var windows = ChunkWindows()
        windows.open(token, table: table, keyColumns: ["id"])
        windows.observe(change(.insert, new: row("2")))
        windows.observe(change(.update, new: row("3", "new")))
        windows.observe(change(.delete, old: keyOnly("4")))
        let closing = windows.close(token, rows: ["1", "2", "3", "4", "5"].map { row($0) })
        let closed = try #require(closing)
        #expect(closed.kept.map { ChunkWindowsTests.id($0) } == ["1", "5"])
        #expect(closed.superseded == 3)
    }

    @Test func anUpdateThatMovesTheKeyMakesBothKeysStale() throws {
        var windows = ChunkWindows()
        windows.open(token, table: table, keyColumns: ["id"])
        windows.observe(change(.update, new: row("50"), old: keyOnly("5")))
        let closing = windows.close(token, rows: ["5", "6", "50"].map { row($0) })
        let closed = try #require(closing)
        #expect(closed.kept.map { ChunkWindowsTests.id($0) } == ["6"])
    }

    @Test func changesOfOtherTablesAndChangesOutsideTheWindowCountForNothing() throws {
        var windows = ChunkWindows()
        windows.observe(change(.update, new: row("1")))
        windows.open(token, table: table, keyColumns: ["id"])
        windows.observe(change(.update, new: row("2"), table: "other"))
        let closing = windows.close(token, rows: ["1", "2"].map { row($0) })
        let closed = try #require(closing)
        #expect(closed.kept.count == 2)
        windows.observe(change(.update, new: row("1")))
        #expect(windows.isEmpty)
    }

    @Test func aTruncateInTheWindowDropsTheWholeChunk() throws {
        var windows = ChunkWindows()
        windows.open(token, table: table, keyColumns: ["id"])
        windows.observe(change(.truncate))
        let closing = windows.close(token, rows: ["1", "2"].map { row($0) })
        let closed = try #require(closing)
        #expect(closed.kept.isEmpty)
        #expect(closed.superseded == 2)
    }

    @Test func compositeKeysCompareEveryColumn() throws {
        let columns = [Column(name: "a", typeOID: 23, isKey: true), Column(name: "b", typeOID: 25, isKey: true)]
        func pair(_ a: String, _ b: String) -> Row { Row(columns: columns, values: [.text(ArraySlice(a.utf8)), .text(ArraySlice(b.utf8))]) }
        var windows = ChunkWindows()
        windows.open(token, table: table, keyColumns: ["a", "b"])
        windows.observe(change(.update, new: pair("1", "x")))
        let closing = windows.close(token, rows: [pair("1", "x"), pair("1", "y"), pair("2", "x")])
        let closed = try #require(closing)
        #expect(closed.kept.count == 2)
    }

    @Test func aHighWatermarkWithoutItsLowOneIsNotAChunkOfThisRun() {
        var windows = ChunkWindows()
        let closed = windows.close(token, rows: [row("1")])
        #expect(closed == nil)
    }

    @Test func aBatchThrownAwayPutsTheWindowsBackAsTheCheckpointLeftThem() throws {
        var windows = ChunkWindows()
        windows.open(token, table: table, keyColumns: ["id"])
        #expect(windows.batchEnded(committed: true).isEmpty)
        // The next batch records a change and closes the window, then is lost: it is read again.
        windows.observe(change(.update, new: row("1")))
        _ = windows.close(token, rows: [row("1")])
        #expect(windows.batchEnded(committed: false).isEmpty)
        #expect(windows.isOpen(token))
        // Read again: the same change, the same close; this time committed, the chunk is released.
        windows.observe(change(.update, new: row("1")))
        let closing = windows.close(token, rows: [row("1"), row("2")])
        let closed = try #require(closing)
        #expect(closed.kept.map { ChunkWindowsTests.id($0) } == ["2"])
        #expect(windows.batchEnded(committed: true) == [token])
    }

    @Test func aLowWatermarkReadAgainAfterALostBatchStartsAFreshWindow() throws {
        var windows = ChunkWindows()
        windows.open(token, table: table, keyColumns: ["id"])
        windows.observe(change(.update, new: row("1")))
        #expect(windows.batchEnded(committed: false).isEmpty)
        #expect(!windows.isOpen(token))
        windows.open(token, table: table, keyColumns: ["id"])
        let closing = windows.close(token, rows: [row("1")])
        let closed = try #require(closing)
        #expect(closed.kept.count == 1)
    }

    static func id(_ row: Row) -> String {
        if case .text(let bytes)? = row["id"] { String(decoding: bytes, as: UTF8.self) } else { "?" }
    }
}
