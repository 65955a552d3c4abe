import Core
import Decoding
import Testing

private typealias W = PgOutputWire

/// Bytes in, events out: the decoder and the assembler as the replication loop drives them.
private struct Pipeline {
    var decoder: PgOutputDecoder
    var assembler = PgOutputAssembler()
    var events: [PgOutputEvent] = []

    init(proto: Int = 1) { decoder = PgOutputDecoder(protoVersion: proto) }

    mutating func send(_ bytes: [UInt8], at lsn: UInt64 = 0) throws {
        if let event = try assembler.consume(try decoder.decode(bytes), at: LSN(lsn)) { events.append(event) }
    }

    var transactions: [Transaction] {
        events.compactMap { if case .transaction(let transaction, _) = $0 { transaction } else { nil } }
    }
}

private let users = W.relation(oid: 100, name: "users", columns: [
    .init(name: "id", type: 20, key: true), .init(name: "name"), .init(name: "email"),
])
private let userColumns = [
    Column(name: "id", typeOID: 20, isKey: true), Column(name: "name", typeOID: 25), Column(name: "email", typeOID: 25),
]
private let jobs = W.relation(oid: 200, namespace: "app", name: "jobs", identity: "f", columns: [
    .init(name: "id", type: 2950, key: true), .init(name: "status", key: true),
])
private let time = PostgresTimestamp(microsecondsSince2000: 1_000_000)

@Suite("pgoutput assembler: plain transactions")
struct PgOutputAssemblerTransactionTests {
    @Test func transactionsComeOutWholeAndInCommitOrder() throws {
        var pipeline = Pipeline()
        try pipeline.send(users)
        try pipeline.send(jobs)
        try pipeline.send(W.begin(finalLSN: 0x200, time: 1_000_000, xid: 10), at: 0x100)
        try pipeline.send(W.origin(lsn: 0x99, name: "upstream"), at: 0x100)
        try pipeline.send(W.insert(oid: 100, [.text("1"), .text("ann"), .null]), at: 0x110)
        try pipeline.send(W.update(oid: 100, old: ("K", [.text("1"), .null, .null]), [.text("2"), .text("ann"), .toast]),
                          at: 0x120)
        try pipeline.send(W.delete(oid: 200, old: ("O", [.text("j1"), .text("done")])), at: 0x130)
        #expect(pipeline.events.isEmpty)
        #expect(pipeline.assembler.isTransactionOpen)
        try pipeline.send(W.commit(commitLSN: 0x200, endLSN: 0x230, time: 1_000_000), at: 0x200)
        #expect(!pipeline.assembler.isTransactionOpen)
        try pipeline.send(W.begin(finalLSN: 0x300, time: 2_000_000, xid: 11), at: 0x240)
        try pipeline.send(W.insert(oid: 100, [.text("3"), .text("bo"), .text("bo@example.com")]), at: 0x250)
        try pipeline.send(W.commit(commitLSN: 0x300, endLSN: 0x330, time: 2_000_000), at: 0x300)

        #expect(pipeline.transactions.map(\.xid) == [10, 11])
        let first = try #require(pipeline.transactions.first)
        #expect(first.commitLSN == LSN(0x200))
        #expect(first.endLSN == LSN(0x230))
        #expect(first.commitTime == time)
        #expect(first.changes == [
            Change(lsn: LSN(0x110), schema: "public", table: "users", operation: .insert,
                   new: Row(columns: userColumns, values: [pgText("1"), pgText("ann"), .null])),
            Change(lsn: LSN(0x120), schema: "public", table: "users", operation: .update,
                   new: Row(columns: userColumns, values: [pgText("2"), pgText("ann"), .unchangedToast]),
                   old: Row(columns: [userColumns[0]], values: [pgText("1")])),
            Change(lsn: LSN(0x130), schema: "app", table: "jobs", operation: .delete,
                   old: Row(columns: [Column(name: "id", typeOID: 2950, isKey: true),
                                      Column(name: "status", typeOID: 25, isKey: true)],
                            values: [pgText("j1"), pgText("done")])),
        ])
        #expect(pipeline.transactions[1].changes.count == 1)
    }

    @Test func keyOnlyOldTupleKeepsTheKeyColumnsInOrder() throws {
        var pipeline = Pipeline()
        try pipeline.send(W.relation(oid: 1, name: "pairs", columns: [
            .init(name: "a"), .init(name: "k1", key: true), .init(name: "b"), .init(name: "k2", key: true),
        ]))
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 1))
        try pipeline.send(W.delete(oid: 1, old: ("K", [.null, .text("x"), .null, .text("y")])))
        try pipeline.send(W.commit(commitLSN: 1, endLSN: 2, time: 0))
        let old = try #require(pipeline.transactions.first?.changes.all.first?.old)
        #expect(old.columns.map(\.name) == ["k1", "k2"])
        #expect(old.values == [pgText("x"), pgText("y")])
        #expect(old["k2"] == pgText("y"))
    }

    @Test func truncateGivesOneChangePerRelation() throws {
        var pipeline = Pipeline()
        try pipeline.send(users)
        try pipeline.send(jobs)
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 1))
        try pipeline.send(W.truncate(oids: [100, 200], options: 1), at: 0x40)
        try pipeline.send(W.commit(commitLSN: 1, endLSN: 2, time: 0))
        #expect(pipeline.transactions.first?.changes == [
            Change(lsn: LSN(0x40), schema: "public", table: "users", operation: .truncate),
            Change(lsn: LSN(0x40), schema: "app", table: "jobs", operation: .truncate),
        ])
    }

    @Test func aRelationMessageReplacesTheCachedRelation() throws {
        var pipeline = Pipeline()
        try pipeline.send(users)
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 1))
        try pipeline.send(W.insert(oid: 100, [.text("1"), .text("a"), .null]))
        // ALTER TABLE … RENAME, ADD COLUMN, and a column list without email.
        try pipeline.send(W.relation(oid: 100, name: "members", columns: [
            .init(name: "id", type: 20, key: true), .init(name: "name"), .init(name: "joined", type: 1082),
            .init(name: "tier", type: 23),
        ]))
        try pipeline.send(W.insert(oid: 100, [.text("2"), .text("b"), .text("2026-01-01"), .text("3")]))
        try pipeline.send(W.commit(commitLSN: 1, endLSN: 2, time: 0))
        let changes = try #require(pipeline.transactions.first).changes.all
        #expect(changes[0].table == "users")
        #expect(changes[0].new?.columns.map(\.name) == ["id", "name", "email"])
        #expect(changes[1].table == "members")
        #expect(changes[1].new?.columns.map(\.name) == ["id", "name", "joined", "tier"])
        #expect(changes[1].new?["tier"] == pgText("3"))
    }

    @Test func logicalMessages() throws {
        var pipeline = Pipeline()
        try pipeline.send(W.message(transactional: false, lsn: 0x10, prefix: "ping", content: [1]))
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 1))
        try pipeline.send(W.message(transactional: true, lsn: 0x20, prefix: "audit", content: [2]))
        try pipeline.send(W.message(transactional: false, lsn: 0x21, prefix: "ping", content: [3]))
        try pipeline.send(W.commit(commitLSN: 1, endLSN: 2, time: 0))
        #expect(pipeline.events == [
            .message(PgOutputLogicalMessage(transactional: false, lsn: LSN(0x10), prefix: "ping", content: [1])),
            .message(PgOutputLogicalMessage(transactional: false, lsn: LSN(0x21), prefix: "ping", content: [3])),
            .transaction(Transaction(xid: 1, commitLSN: LSN(1), endLSN: LSN(2), commitTime: .init(microsecondsSince2000: 0),
                                     changes: []),
                         messages: [PgOutputLogicalMessage(transactional: true, lsn: LSN(0x20), prefix: "audit",
                                                           content: [2])]),
        ])
    }
}

@Suite("pgoutput assembler: errors")
struct PgOutputAssemblerErrorTests {
    @Test func changeForAnUndescribedRelation() throws {
        var pipeline = Pipeline()
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 1))
        #expect(throws: PgOutputAssemblyError.unknownRelation(oid: 99, lsn: LSN(0x50))) {
            try pipeline.send(W.insert(oid: 99, [.null]), at: 0x50)
        }
        #expect(PgOutputAssemblyError.unknownRelation(oid: 99, lsn: LSN(0x1_0000_0050)).description
            == "pgoutput change at 1/50 for relation OID 99, which no Relation message described")
        #expect(throws: PgOutputAssemblyError.unknownRelation(oid: 98, lsn: LSN(0x51))) {
            try pipeline.send(W.truncate(oids: [98], options: 0), at: 0x51)
        }
    }

    @Test func tupleThatDoesNotMatchItsRelation() throws {
        var pipeline = Pipeline()
        try pipeline.send(users)
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 1))
        let error = PgOutputAssemblyError.columnCountMismatch(table: "public.users", oid: 100, expected: 3, received: 2,
                                                              lsn: LSN(0x60))
        #expect(throws: error) { try pipeline.send(W.insert(oid: 100, [.null, .null]), at: 0x60) }
        #expect(throws: error) { try pipeline.send(W.delete(oid: 100, old: ("K", [.null, .null])), at: 0x60) }
        #expect(error.description == "pgoutput change at 0/60 for public.users (OID 100) has 2 columns, its Relation message 3")
    }

    @Test func boundariesOutOfSequence() throws {
        var pipeline = Pipeline(proto: 3)
        try pipeline.send(users)
        #expect(throws: PgOutputAssemblyError.outOfSequence(.commit, lsn: LSN(7), .noTransaction)) {
            try pipeline.send(W.commit(commitLSN: 1, endLSN: 2, time: 0), at: 7)
        }
        #expect(throws: PgOutputAssemblyError.outOfSequence(.insert, lsn: LSN(8), .noTransaction)) {
            try pipeline.send(W.insert(oid: 100, [.null, .null, .null]), at: 8)
        }
        #expect(throws: PgOutputAssemblyError.outOfSequence(.message, lsn: LSN(8), .noTransaction)) {
            try pipeline.send(W.message(transactional: true, lsn: 8, prefix: "p", content: []), at: 8)
        }
        try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 5))
        #expect(throws: PgOutputAssemblyError.outOfSequence(.begin, lsn: LSN(9), .transactionOpen(xid: 5))) {
            try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 6), at: 9)
        }
        #expect(PgOutputAssemblyError.outOfSequence(.begin, lsn: LSN(9), .transactionOpen(xid: 5)).description
            == "pgoutput Begin at 0/9 out of sequence: transaction 5 is still open")
    }

    @Test func streamedChangeOutsideAStreamBlock() {
        var assembler = PgOutputAssembler()
        _ = try? assembler.consume(.relation(PgOutputRelation(oid: 1, namespace: "public", name: "t",
                                                              replicaIdentity: .default, columns: []), xid: nil), at: .zero)
        #expect(throws: PgOutputAssemblyError.outOfSequence(.insert, lsn: LSN(3), .noStream)) {
            try assembler.consume(.insert(relationOID: 1, new: [], xid: 44), at: LSN(3))
        }
        #expect(throws: PgOutputAssemblyError.outOfSequence(.streamStop, lsn: LSN(4), .noStream)) {
            try assembler.consume(.streamStop, at: LSN(4))
        }
    }
}

@Suite("pgoutput assembler: streamed transactions (protocol 2)")
struct PgOutputAssemblerStreamingTests {
    @Test func interleavedStreamsWithASubtransactionAbort() throws {
        var pipeline = Pipeline(proto: 2)
        try pipeline.send(W.streamStart(xid: 100, first: true))
        try pipeline.send(W.relation(oid: 100, name: "users", columns: [.init(name: "id", key: true)], xid: 100))
        try pipeline.send(W.insert(oid: 100, [.text("a")], xid: 100), at: 0x10)
        try pipeline.send(W.insert(oid: 100, [.text("b")], xid: 101), at: 0x11) // SAVEPOINT s1
        try pipeline.send(W.message(transactional: true, lsn: 0x12, prefix: "s1", content: [], xid: 101), at: 0x12)
        try pipeline.send(W.streamStop())
        try pipeline.send(W.streamStart(xid: 200, first: true))
        try pipeline.send(W.insert(oid: 100, [.text("x")], xid: 200), at: 0x20)
        try pipeline.send(W.streamStop())
        // A small transaction commits in between, whole.
        try pipeline.send(W.begin(finalLSN: 0x30, time: 0, xid: 300))
        try pipeline.send(W.insert(oid: 100, [.text("plain")]), at: 0x29)
        try pipeline.send(W.commit(commitLSN: 0x30, endLSN: 0x31, time: 0))
        try pipeline.send(W.streamStart(xid: 100, first: false))
        try pipeline.send(W.insert(oid: 100, [.text("c")], xid: 102), at: 0x40)
        try pipeline.send(W.delete(oid: 100, old: ("K", [.text("a")]), xid: 100), at: 0x41)
        try pipeline.send(W.streamStop())
        try pipeline.send(W.streamAbort(xid: 100, subxid: 101)) // ROLLBACK TO s1
        #expect(pipeline.transactions.map(\.xid) == [300])
        try pipeline.send(W.streamCommit(xid: 200, commitLSN: 0x50, endLSN: 0x51, time: 5))
        try pipeline.send(W.streamCommit(xid: 100, commitLSN: 0x60, endLSN: 0x61, time: 6))

        #expect(pipeline.transactions.map(\.xid) == [300, 200, 100])
        let streamed = pipeline.transactions[2]
        #expect(streamed.commitLSN == LSN(0x60))
        #expect(streamed.endLSN == LSN(0x61))
        #expect(streamed.commitTime == PostgresTimestamp(microsecondsSince2000: 6))
        #expect(try streamed.changes.all.map(\.lsn) == [LSN(0x10), LSN(0x40), LSN(0x41)])
        #expect(try streamed.changes.all.map(\.operation) == [.insert, .insert, .delete])
        #expect(try pipeline.transactions[1].changes.all.map(\.new) == [Row(columns: [Column(name: "id", typeOID: 25, isKey: true)],
                                                                   values: [pgText("x")])])
        guard case .transaction(_, let messages) = pipeline.events[2] else { Issue.record("not a transaction"); return }
        #expect(messages.isEmpty)
    }

    @Test func abortedStreamIsDropped() throws {
        var pipeline = Pipeline(proto: 2)
        try pipeline.send(users)
        try pipeline.send(W.streamStart(xid: 100, first: true))
        try pipeline.send(W.insert(oid: 100, [.null, .null, .null], xid: 100))
        try pipeline.send(W.streamStop())
        try pipeline.send(W.streamAbort(xid: 100, subxid: 100))
        #expect(pipeline.events.isEmpty)
        #expect(throws: PgOutputAssemblyError.unknownStreamedTransaction(xid: 100, lsn: LSN(9))) {
            try pipeline.send(W.streamCommit(xid: 100, commitLSN: 1, endLSN: 2, time: 0), at: 9)
        }
        // An abort of something never streamed loses nothing.
        try pipeline.send(W.streamAbort(xid: 500, subxid: 501))
    }

    @Test func laterSegmentWithoutTheFirstIsAnError() throws {
        var pipeline = Pipeline(proto: 2)
        #expect(throws: PgOutputAssemblyError.unknownStreamedTransaction(xid: 7, lsn: .zero)) {
            try pipeline.send(W.streamStart(xid: 7, first: false))
        }
    }

    @Test func transactionBoundariesInsideAStreamBlock() throws {
        var pipeline = Pipeline(proto: 2)
        try pipeline.send(W.streamStart(xid: 7, first: true))
        #expect(throws: PgOutputAssemblyError.outOfSequence(.begin, lsn: .zero, .streamOpen(xid: 7))) {
            try pipeline.send(W.begin(finalLSN: 1, time: 0, xid: 8))
        }
        #expect(throws: PgOutputAssemblyError.outOfSequence(.streamCommit, lsn: .zero, .streamOpen(xid: 7))) {
            try pipeline.send(W.streamCommit(xid: 7, commitLSN: 1, endLSN: 2, time: 0))
        }
    }
}

@Suite("pgoutput assembler: two-phase messages are refused")
struct PgOutputAssemblerTwoPhaseTests {
    /// ChangeRelay never asks for two_phase: taking a PREPARE's changes as committed would
    /// send effects of a transaction that may still roll back, so each two-phase message
    /// stops the stream, naming itself and its position.
    @Test(arguments: [
        W.beginPrepare(prepareLSN: 0x100, endLSN: 0x130, time: 0, xid: 9, gid: "tx-a"),
        W.prepare(prepareLSN: 0x100, endLSN: 0x130, time: 0, xid: 9, gid: "tx-a"),
        W.streamPrepare(prepareLSN: 0x80, endLSN: 0x90, time: 0, xid: 50, gid: "big"),
        W.commitPrepared(commitLSN: 0x200, endLSN: 0x230, time: 77, xid: 9, gid: "tx-a"),
        W.rollbackPrepared(prepareEndLSN: 0x130, rollbackEndLSN: 0x300, prepareTime: 0, rollbackTime: 1, xid: 9, gid: "tx-b"),
    ])
    func aTwoPhaseMessageIsRefusedByName(message: [UInt8]) throws {
        var pipeline = Pipeline(proto: 3)
        try pipeline.send(users)
        let type = try #require(PgOutputMessageType(rawValue: message[0]))
        #expect(throws: PgOutputAssemblyError.twoPhaseNotRequested(type, lsn: LSN(0x400))) {
            try pipeline.send(message, at: 0x400)
        }
        #expect(pipeline.events.isEmpty)
        #expect(PgOutputAssemblyError.twoPhaseNotRequested(type, lsn: LSN(0x400)).description.contains("two_phase"))
    }
}
