import Core
import Decoding
import Foundation
import Testing

private typealias W = PgOutputWire

private let columns = [Column(name: "id", typeOID: 20, isKey: true), Column(name: "v", typeOID: 25),
                       Column(name: "b", typeOID: 17)]

private func change(_ number: Int, table: String = "t", operation: Change.Operation = .insert) -> Change {
    let values: [TupleValue] = [.text(ArraySlice("\(number)".utf8)),
                                number % 3 == 0 ? .null : .text(ArraySlice("value \(number)\t\n".utf8)),
                                number % 5 == 0 ? .unchangedToast : .binary([UInt8(number % 256), 0, 255])]
    let row = Row(columns: columns, values: values)
    return Change(lsn: LSN(UInt64(number)), schema: "public", table: table, operation: operation,
                  new: operation == .delete ? nil : row,
                  old: operation == .insert ? nil : Row(columns: [columns[0]], values: [values[0]]))
}

/// A private directory for spill files, removed at the end.
private func withSpillDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let directory = NSTemporaryDirectory() + "changerelay-spill-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try body(directory)
}

@Suite("transaction changes: memory and spill files")
struct TransactionChangesTests {
    @Test func spilledChangesReadBackInOrderWithTheInMemoryTail() throws {
        try withSpillDirectory { directory in
            let settings = SpillSettings(threshold: 1, directory: directory)
            let expected = (0..<2_500).map { change($0, operation: [.insert, .update, .delete][$0 % 3]) }
            var changes = TransactionChanges()
            for (index, item) in expected.enumerated() {
                changes.append(item)
                if index % 700 == 699 { try changes.spill(settings) }
            }
            #expect(changes.isSpilled)
            #expect(changes.memoryBytes > 0)
            #expect(changes.count == expected.count)
            #expect(try changes.loaded() == expected)
            var indices: [Int] = []
            try changes.forEach(limit: 1_000) { index, _ in indices.append(index) }
            #expect(indices == Array(0..<1_000))
            // The file is unlinked at once: nothing is left in the directory.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        }
    }

    @Test func spillingFreesTheMemoryItCounted() throws {
        try withSpillDirectory { directory in
            var changes = TransactionChanges()
            let added = (0..<100).map { changes.append(change($0)) }.reduce(0, +)
            #expect(changes.memoryBytes == added)
            let settings = SpillSettings(threshold: 1, directory: directory)
            let freed = try changes.spill(settings)
            #expect(freed == added)
            #expect(changes.memoryBytes == 0)
            let again = try changes.spill(settings)
            #expect(again == 0)
        }
    }

    @Test func anAbortedSubtransactionDisappearsFromMemoryAndFile() throws {
        try withSpillDirectory { directory in
            var changes = TransactionChanges()
            for number in 0..<40 { changes.append(change(number), subtransaction: number % 2 == 0 ? 1 : 2) }
            try changes.spill(SpillSettings(threshold: 1, directory: directory))
            for number in 40..<60 { changes.append(change(number), subtransaction: number % 2 == 0 ? 1 : 2) }
            changes.discard(subtransaction: 2)
            #expect(changes.count == 30)
            #expect(try changes.loaded().map(\.lsn.value) == Array(stride(from: 0, to: 60, by: 2)).map(UInt64.init))
        }
    }

    @Test func excludedTablesAreHiddenWithoutReadingTheFile() throws {
        try withSpillDirectory { directory in
            var changes = TransactionChanges()
            for number in 0..<30 { changes.append(change(number, table: number % 3 == 0 ? "hidden" : "shown")) }
            try changes.spill(SpillSettings(threshold: 1, directory: directory))
            #expect(changes.tables == [TableName(schema: "public", name: "hidden"), TableName(schema: "public", name: "shown")])
            changes.exclude { $0.name == "hidden" }
            #expect(changes.count == 20)
            #expect(changes.tables == [TableName(schema: "public", name: "shown")])
            #expect(try changes.loaded().allSatisfy { $0.table == "shown" })
        }
    }

    /// The assembler keeps appending to a held transaction's file; a copy handed out
    /// earlier still reads exactly its own changes.
    @Test func aCopyKeepsItsOwnChangesWhenTheOriginalGrows() throws {
        try withSpillDirectory { directory in
            let settings = SpillSettings(threshold: 1, directory: directory)
            var changes = TransactionChanges((0..<10).map { change($0) })
            try changes.spill(settings)
            let copy = changes
            for number in 10..<20 { changes.append(change(number)) }
            try changes.spill(settings)
            #expect(try copy.loaded().map(\.lsn.value) == Array(0..<10))
            #expect(try changes.loaded().map(\.lsn.value) == Array(0..<20))
        }
    }

    @Test func aMissingSpillDirectoryIsAnErrorNamingIt() {
        var changes = TransactionChanges([change(1)])
        #expect {
            try changes.spill(SpillSettings(threshold: 1, directory: "/nonexistent/changerelay"))
        } throws: { error in
            "\(error)".contains("/nonexistent/changerelay") && "\(error)".contains("create")
        }
    }
}

/// Bytes in, transactions out, with a given spill setting.
private struct Assembly {
    var decoder = PgOutputDecoder(protoVersion: 2)
    var assembler: PgOutputAssembler
    var transactions: [Transaction] = []

    init(spill: SpillSettings) { assembler = PgOutputAssembler(spill: spill) }

    mutating func send(_ bytes: [UInt8], at lsn: UInt64 = 0) throws {
        if case .transaction(let transaction, _)? = try assembler.consume(try decoder.decode(bytes), at: LSN(lsn)) {
            transactions.append(transaction)
        }
    }
}

@Suite("pgoutput assembler: spilling held transactions")
struct PgOutputAssemblerSpillTests {
    private let relation = W.relation(oid: 100, name: "items", columns: [.init(name: "id", key: true), .init(name: "v")])

    /// Interleaved streamed transactions with subtransaction aborts, a whole abort and
    /// a plain transaction: spilling every change gives the same transactions as
    /// holding them all in memory.
    private func replay(into assembly: inout Assembly) throws {
        try assembly.send(relation)
        var lsn: UInt64 = 0x100
        func insert(_ xid: UInt32, _ value: String) -> [UInt8] { W.insert(oid: 100, [.text(value), .text(value)], xid: xid) }
        for segment in 0..<20 {
            for xid: UInt32 in [500, 600, 700] {
                try assembly.send(W.streamStart(xid: xid, first: segment == 0))
                for row in 0..<50 {
                    lsn += 1
                    let subtransaction = row % 10 == 0 ? xid + 1 + UInt32(segment) : xid
                    try assembly.send(insert(subtransaction, "\(xid)-\(segment)-\(row)"), at: lsn)
                }
                try assembly.send(W.streamStop())
            }
            try assembly.send(W.streamAbort(xid: 500, subxid: 501 + UInt32(segment)))
            try assembly.send(W.begin(finalLSN: lsn + 1, time: 0, xid: 900 + UInt32(segment)))
            try assembly.send(W.insert(oid: 100, [.text("plain"), .text("\(segment)")]), at: lsn)
            try assembly.send(W.commit(commitLSN: lsn + 1, endLSN: lsn + 2, time: 0))
        }
        try assembly.send(W.streamAbort(xid: 600, subxid: 600))
        try assembly.send(W.streamCommit(xid: 700, commitLSN: lsn + 10, endLSN: lsn + 11, time: 1))
        try assembly.send(W.streamCommit(xid: 500, commitLSN: lsn + 20, endLSN: lsn + 21, time: 2))
    }

    @Test func spillingChangesNothingAReaderSees() throws {
        try withSpillDirectory { directory in
            var inMemory = Assembly(spill: SpillSettings(threshold: .max, directory: directory))
            var spilled = Assembly(spill: SpillSettings(threshold: 4_096, directory: directory))
            try replay(into: &inMemory)
            try replay(into: &spilled)
            #expect(inMemory.transactions.map(\.xid) == Array(900..<920) + [700, 500])
            #expect(!inMemory.transactions.contains { $0.changes.isSpilled })
            #expect(spilled.transactions.suffix(2).allSatisfy { $0.changes.isSpilled })
            #expect(spilled.transactions == inMemory.transactions)
            // Transaction 500 lost every tenth row with its subtransactions.
            #expect(try spilled.transactions.last!.changes.loaded().count == 20 * 45)
        }
    }

    @Test func aSpillFailureNamesTheChangeAndTheDirectory() throws {
        var assembly = Assembly(spill: SpillSettings(threshold: 1, directory: "/nonexistent/changerelay"))
        try assembly.send(relation)
        try assembly.send(W.streamStart(xid: 500, first: true))
        #expect(throws: PgOutputAssemblyError.self) { try assembly.send(W.insert(oid: 100, [.text("1"), .text("1")], xid: 500), at: 0x42) }
        #expect {
            try assembly.send(W.insert(oid: 100, [.text("2"), .text("2")], xid: 500), at: 0x43)
        } throws: { error in
            "\(error)".contains("0/43") && "\(error)".contains("/nonexistent/changerelay")
        }
    }
}
