import Core
import Decoding
import Testing

private typealias W = PgOutputWire

private func decode(_ bytes: [UInt8], proto: Int = 1) throws(PgOutputDecodingError) -> PgOutputMessage {
    var decoder = PgOutputDecoder(protoVersion: proto)
    return try decoder.decode(bytes)
}

private func decodeError(_ bytes: [UInt8], proto: Int = 3) -> PgOutputDecodingError? {
    var decoder = PgOutputDecoder(protoVersion: proto)
    do {
        _ = try decoder.decode(bytes)
        return nil
    } catch {
        return error
    }
}

@Suite("pgoutput decoder: messages")
struct PgOutputDecoderMessageTests {
    let time = PostgresTimestamp(microsecondsSince2000: 817_077_727_123_456)

    @Test func begin() throws {
        let message = try decode(W.begin(finalLSN: 0x16_B374_D848, time: time.microseconds, xid: 742))
        #expect(message == .begin(finalLSN: LSN("16/B374D848")!, commitTime: time, xid: 742))
        #expect(message.messageType == .begin)
    }

    @Test func commit() throws {
        let message = try decode(W.commit(commitLSN: 0x100, endLSN: 0x130, time: time.microseconds))
        #expect(message == .commit(commitLSN: LSN(0x100), endLSN: LSN(0x130), commitTime: time))
    }

    @Test func origin() throws {
        #expect(try decode(W.origin(lsn: 0x42, name: "pg_16401")) == .origin(commitLSN: LSN(0x42), name: "pg_16401"))
    }

    @Test func relation() throws {
        let bytes = W.relation(oid: 16_384, name: "jobs", identity: "f", columns: [
            .init(name: "id", type: 2950, key: true),
            .init(name: "title", type: 1043, modifier: 104),
            .init(name: "status", key: true),
        ])
        let expected = PgOutputRelation(oid: 16_384, namespace: "public", name: "jobs", replicaIdentity: .full, columns: [
            Column(name: "id", typeOID: 2950, isKey: true),
            Column(name: "title", typeOID: 1043, typeModifier: 104),
            Column(name: "status", typeOID: 25, isKey: true),
        ])
        #expect(try decode(bytes) == .relation(expected, xid: nil))
    }

    @Test func relationInPgCatalogHasItsNamespaceRestored() throws {
        let message = try decode(W.relation(oid: 1, namespace: "", name: "pg_thing", identity: "n", columns: []))
        guard case .relation(let relation, _) = message else { Issue.record("not a relation"); return }
        #expect(relation.namespace == "pg_catalog")
        #expect(relation.replicaIdentity == .nothing)
        #expect(relation.columns.isEmpty)
    }

    @Test func type() throws {
        #expect(try decode(W.type(oid: 17_000, namespace: "public", name: "mood"))
            == .type(oid: 17_000, namespace: "public", name: "mood", xid: nil))
    }

    @Test func insertWithEveryValueKind() throws {
        let bytes = W.insert(oid: 16_384, [.text("42"), .null, .toast, .binary([0, 0, 0, 7]), .text("")])
        let message = try decode(bytes)
        #expect(message == .insert(relationOID: 16_384, new: [
            pgText("42"), .null, .unchangedToast, .binary([0, 0, 0, 7]), pgText(""),
        ], xid: nil))
    }

    @Test func insertValuesAreSlicesOfTheInput() throws {
        let bytes = W.insert(oid: 1, [.text("hello")])
        guard case .insert(_, let new, _) = try decode(bytes), case .text(let value) = new[0] else {
            Issue.record("not a text insert"); return
        }
        // Type, oid, 'N', count, kind, length: the value starts at byte 13 of the message.
        #expect(value.startIndex == 13)
        let valueAddress = value.withUnsafeBufferPointer { $0.baseAddress }
        let inputAddress = bytes.withUnsafeBufferPointer { $0.baseAddress.map { $0 + 13 } }
        #expect(valueAddress == inputAddress)
    }

    @Test func updateWithoutOldTuple() throws {
        #expect(try decode(W.update(oid: 5, [.text("a")]))
            == .update(relationOID: 5, old: nil, new: [pgText("a")], xid: nil))
    }

    @Test func updateWithKeyTuple() throws {
        #expect(try decode(W.update(oid: 5, old: ("K", [.text("1"), .null]), [.text("2"), .text("b")]))
            == .update(relationOID: 5, old: .key([pgText("1"), .null]), new: [pgText("2"), pgText("b")], xid: nil))
    }

    @Test func updateWithFullOldTuple() throws {
        #expect(try decode(W.update(oid: 5, old: ("O", [.text("1"), .text("a")]), [.text("1"), .toast]))
            == .update(relationOID: 5, old: .full([pgText("1"), pgText("a")]), new: [pgText("1"), .unchangedToast],
                       xid: nil))
    }

    @Test func deleteWithKeyAndFullTuple() throws {
        #expect(try decode(W.delete(oid: 9, old: ("K", [.text("1")])))
            == .delete(relationOID: 9, old: .key([pgText("1")]), xid: nil))
        #expect(try decode(W.delete(oid: 9, old: ("O", [.text("1"), .null])))
            == .delete(relationOID: 9, old: .full([pgText("1"), .null]), xid: nil))
    }

    @Test func truncateOptionsAndRelations() throws {
        #expect(try decode(W.truncate(oids: [10, 11, 12], options: 3))
            == .truncate(relationOIDs: [10, 11, 12], options: [.cascade, .restartIdentity], xid: nil))
        #expect(try decode(W.truncate(oids: [10], options: 0)) == .truncate(relationOIDs: [10], options: [], xid: nil))
    }

    @Test func logicalMessage() throws {
        let message = try decode(W.message(transactional: true, lsn: 0x99, prefix: "relay", content: [1, 2, 0, 3]))
        #expect(message == .message(PgOutputLogicalMessage(transactional: true, lsn: LSN(0x99), prefix: "relay",
                                                           content: [1, 2, 0, 3]), xid: nil))
        let plain = try decode(W.message(transactional: false, lsn: 0x99, prefix: "", content: []))
        #expect(plain == .message(PgOutputLogicalMessage(transactional: false, lsn: LSN(0x99), prefix: "", content: []),
                                  xid: nil))
    }

    @Test func streamControlMessages() throws {
        #expect(try decode(W.streamStart(xid: 900, first: true), proto: 2) == .streamStart(xid: 900, firstSegment: true))
        #expect(try decode(W.streamStart(xid: 900, first: false), proto: 2) == .streamStart(xid: 900, firstSegment: false))
        #expect(try decode(W.streamCommit(xid: 900, commitLSN: 0x500, endLSN: 0x530, time: time.microseconds), proto: 2)
            == .streamCommit(xid: 900, commitLSN: LSN(0x500), endLSN: LSN(0x530), commitTime: time))
        #expect(try decode(W.streamAbort(xid: 900, subxid: 901), proto: 2) == .streamAbort(xid: 900, subxid: 901))
    }

    @Test func streamStopAfterStart() throws {
        var decoder = PgOutputDecoder(protoVersion: 2)
        _ = try decoder.decode(W.streamStart(xid: 900, first: true))
        #expect(decoder.streamXID == 900)
        #expect(try decoder.decode(W.streamStop()) == .streamStop)
        #expect(decoder.streamXID == nil)
    }

    @Test func dataMessagesInsideAStreamCarryTheirXID() throws {
        var decoder = PgOutputDecoder(protoVersion: 2)
        _ = try decoder.decode(W.streamStart(xid: 900, first: true))
        let relation = try decoder.decode(W.relation(oid: 7, name: "t", columns: [.init(name: "a")], xid: 900))
        guard case .relation(_, let relationXID) = relation else { Issue.record("not a relation"); return }
        #expect(relationXID == 900)
        #expect(try decoder.decode(W.type(oid: 8, namespace: "public", name: "e", xid: 900))
            == .type(oid: 8, namespace: "public", name: "e", xid: 900))
        #expect(try decoder.decode(W.insert(oid: 7, [.text("x")], xid: 901))
            == .insert(relationOID: 7, new: [pgText("x")], xid: 901))
        #expect(try decoder.decode(W.update(oid: 7, [.text("y")], xid: 901))
            == .update(relationOID: 7, old: nil, new: [pgText("y")], xid: 901))
        #expect(try decoder.decode(W.delete(oid: 7, old: ("K", [.text("y")]), xid: 900))
            == .delete(relationOID: 7, old: .key([pgText("y")]), xid: 900))
        #expect(try decoder.decode(W.truncate(oids: [7], options: 1, xid: 900))
            == .truncate(relationOIDs: [7], options: .cascade, xid: 900))
        let logical = try decoder.decode(W.message(transactional: true, lsn: 1, prefix: "p", content: [], xid: 902))
        #expect(logical == .message(PgOutputLogicalMessage(transactional: true, lsn: LSN(1), prefix: "p", content: []),
                                    xid: 902))
        _ = try decoder.decode(W.streamStop())
        #expect(try decoder.decode(W.insert(oid: 7, [.text("z")])) == .insert(relationOID: 7, new: [pgText("z")], xid: nil))
    }

    @Test func twoPhaseMessages() throws {
        let prepare = PgOutputPrepare(prepareLSN: LSN(0x700), endLSN: LSN(0x730), prepareTime: time, xid: 55, gid: "gid-1")
        #expect(try decode(W.beginPrepare(prepareLSN: 0x700, endLSN: 0x730, time: time.microseconds, xid: 55, gid: "gid-1"),
                           proto: 3) == .beginPrepare(prepare))
        #expect(try decode(W.prepare(prepareLSN: 0x700, endLSN: 0x730, time: time.microseconds, xid: 55, gid: "gid-1"),
                           proto: 3) == .prepare(prepare))
        #expect(try decode(W.streamPrepare(prepareLSN: 0x700, endLSN: 0x730, time: time.microseconds, xid: 55,
                                           gid: "gid-1"), proto: 3) == .streamPrepare(prepare))
        #expect(try decode(W.commitPrepared(commitLSN: 0x800, endLSN: 0x830, time: time.microseconds, xid: 55, gid: "gid-1"),
                           proto: 3)
            == .commitPrepared(commitLSN: LSN(0x800), endLSN: LSN(0x830), commitTime: time, xid: 55, gid: "gid-1"))
        let rollbackTime = PostgresTimestamp(microsecondsSince2000: time.microseconds + 5)
        #expect(try decode(W.rollbackPrepared(prepareEndLSN: 0x730, rollbackEndLSN: 0x900, prepareTime: time.microseconds,
                                              rollbackTime: rollbackTime.microseconds, xid: 55, gid: "gid-1"), proto: 3)
            == .rollbackPrepared(prepareEndLSN: LSN(0x730), rollbackEndLSN: LSN(0x900), prepareTime: time,
                                 rollbackTime: rollbackTime, xid: 55, gid: "gid-1"))
    }

    @Test func negativeTimestampsSurvive() throws {
        let message = try decode(W.begin(finalLSN: 1, time: -1, xid: 1))
        #expect(message == .begin(finalLSN: LSN(1), commitTime: PostgresTimestamp(microsecondsSince2000: -1), xid: 1))
    }

    @Test func everyMessageTypeHasAName() {
        for type in PgOutputMessageType.allCases {
            #expect(!type.description.isEmpty)
        }
        #expect(PgOutputMessageType.allCases.count == 19)
    }
}

@Suite("pgoutput decoder: errors")
struct PgOutputDecoderErrorTests {
    @Test func truncatedInsertNamesTypeOffsetAndSizes() throws {
        // Inside a stream block (xid before the oid): the first value's length starts at byte 13.
        var decoder = PgOutputDecoder(protoVersion: 2)
        _ = try decoder.decode(W.streamStart(xid: 3, first: true))
        let bytes = Array(W.insert(oid: 16_384, [.text("abc")], xid: 3).prefix(15))
        #expect(throws: PgOutputDecodingError(messageType: UInt8(ascii: "I"), offset: 13,
                                               reason: .truncated(needed: 4, remaining: 2))) {
            try decoder.decode(bytes)
        }
        let error = decodeError(Array(W.insert(oid: 1, [.text("abc")]).prefix(11)))
        #expect(error?.description == "pgoutput Insert ('I') at offset 9: truncated: needed 4 bytes, 2 left")
    }

    @Test func truncatedValueBytes() {
        let error = decodeError(Array(W.insert(oid: 1, [.text("abcdef")]).prefix(15)))
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "I"), offset: 13,
                                               reason: .truncated(needed: 6, remaining: 2)))
    }

    @Test func emptyMessage() {
        let error = decodeError([])
        #expect(error == PgOutputDecodingError(messageType: nil, offset: 0, reason: .truncated(needed: 1, remaining: 0)))
        #expect(error?.description == "pgoutput empty message at offset 0: truncated: needed 1 byte, 0 left")
    }

    @Test func unknownMessageType() {
        let error = decodeError([UInt8(ascii: "Z"), 1, 2])
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "Z"), offset: 0, reason: .unknownMessageType))
        #expect(error?.description == "pgoutput unknown message ('Z') at offset 0: unknown message type")
        #expect(decodeError([0x05])?.description == "pgoutput unknown message (0x05) at offset 0: unknown message type")
    }

    @Test func messagesFromANewerProtocolVersion() {
        let stream = decodeError(W.streamStart(xid: 1, first: true), proto: 1)
        #expect(stream?.reason == .requiresProtocolVersion(needed: 2, negotiated: 1))
        let prepare = decodeError(W.beginPrepare(prepareLSN: 1, endLSN: 2, time: 0, xid: 1, gid: "g"), proto: 2)
        #expect(prepare?.reason == .requiresProtocolVersion(needed: 3, negotiated: 2))
        #expect(prepare?.description
            == "pgoutput Begin Prepare ('b') at offset 0: needs protocol version 3, the stream was started with version 2")
    }

    @Test func unknownTupleKind() {
        var bytes = W.insert(oid: 1, [.null, .text("a")])
        bytes[9] = UInt8(ascii: "x")
        let error = decodeError(bytes)
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "I"), offset: 9, reason: .unknownTupleKind(0x78)))
        #expect(error?.description
            == "pgoutput Insert ('I') at offset 9: unknown tuple column kind 'x' (expected 'n', 'u', 't' or 'b')")
    }

    @Test func unexpectedTupleMarkers() {
        var insert = W.insert(oid: 1, [.null])
        insert[5] = UInt8(ascii: "K")
        #expect(decodeError(insert) == PgOutputDecodingError(
            messageType: UInt8(ascii: "I"), offset: 5, reason: .unexpectedTupleMarker(found: 0x4B, expected: [0x4E])))

        var update = W.update(oid: 1, old: ("K", [.null]), [.null])
        update[9] = UInt8(ascii: "O") // where 'N' must follow the old tuple
        let error = decodeError(update)
        #expect(error?.offset == 9)
        #expect(error?.description == "pgoutput Update ('U') at offset 9: unexpected tuple marker 'O' (expected 'N')")

        var delete = W.delete(oid: 1, old: ("K", [.null]))
        delete[5] = UInt8(ascii: "N")
        #expect(decodeError(delete)?.reason == .unexpectedTupleMarker(found: 0x4E, expected: [0x4B, 0x4F]))
    }

    @Test func unterminatedString() {
        let bytes = Array(W.origin(lsn: 1, name: "origin").dropLast())
        let error = decodeError(bytes)
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "O"), offset: 9, reason: .unterminatedString))
        #expect(error?.description == "pgoutput Origin ('O') at offset 9: bad string: no NUL terminator")
    }

    /// A SQL_ASCII database sends its names unconverted: bytes that are not UTF-8 become
    /// U+FFFD, one per maximal subpart, as wal2json's records do, and the stream goes on.
    @Test func aNameThatIsNotUTF8IsRepairedNotRefused() throws {
        var bytes = W.relation(oid: 1, name: "abc", columns: [.init(name: "xyz")])
        bytes[13] = 0xFF // the 'b' of the relation name
        let at = bytes.firstIndex(of: UInt8(ascii: "y"))!
        bytes[at] = 0xE2 // "x", then E2 'z' – a lead byte its continuation does not follow
        guard case .relation(let relation, _) = try decode(bytes) else { Issue.record("not a relation"); return }
        #expect(relation.name == "a\u{FFFD}c")
        #expect(relation.columns.map(\.name) == ["x\u{FFFD}z"])
    }

    @Test func unknownReplicaIdentity() {
        let error = decodeError(W.relation(oid: 1, name: "t", identity: "q", columns: []))
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "R"), offset: 14,
                                               reason: .unknownReplicaIdentity(0x71)))
    }

    @Test func negativeLengths() {
        var value = W.insert(oid: 1, [.text("abc")])
        value.replaceSubrange(9..<13, with: [0xFF, 0xFF, 0xFF, 0xFE])
        let error = decodeError(value)
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "I"), offset: 9, reason: .negativeLength(-2)))
        #expect(error?.description == "pgoutput Insert ('I') at offset 9: negative length -2")

        var truncate = W.truncate(oids: [1], options: 0)
        truncate.replaceSubrange(1..<5, with: [0x80, 0, 0, 0])
        #expect(decodeError(truncate)?.reason == .negativeLength(Int32.min))

        var message = W.message(transactional: false, lsn: 1, prefix: "p", content: [1])
        message.replaceSubrange(12..<16, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(decodeError(message)?.reason == .negativeLength(-1))
    }

    @Test func trailingBytes() {
        let error = decodeError(W.commit(commitLSN: 1, endLSN: 2, time: 3) + [0, 0])
        #expect(error == PgOutputDecodingError(messageType: UInt8(ascii: "C"), offset: 26, reason: .trailingBytes(2)))
        #expect(error?.description == "pgoutput Commit ('C') at offset 26: 2 trailing bytes after the message")
        #expect(decodeError(W.streamStop() + [1], proto: 2) != nil)
    }

    @Test func streamBlocksDoNotNest() throws {
        var decoder = PgOutputDecoder(protoVersion: 2)
        #expect(throws: PgOutputDecodingError(messageType: UInt8(ascii: "E"), offset: 0, reason: .noStreamStarted)) {
            try decoder.decode(W.streamStop())
        }
        _ = try decoder.decode(W.streamStart(xid: 10, first: true))
        #expect(throws: PgOutputDecodingError(messageType: UInt8(ascii: "S"), offset: 1,
                                               reason: .streamAlreadyStarted(openXID: 10))) {
            try decoder.decode(W.streamStart(xid: 11, first: true))
        }
        #expect(decoder.streamXID == 10)
    }

    @Test func aFailedMessageLeavesTheStreamStateAlone() throws {
        var decoder = PgOutputDecoder(protoVersion: 2)
        #expect(throws: PgOutputDecodingError.self) { try decoder.decode(Array(W.streamStart(xid: 4, first: true).dropLast())) }
        #expect(decoder.streamXID == nil)
        #expect(try decoder.decode(W.insert(oid: 1, [.null])) == .insert(relationOID: 1, new: [.null], xid: nil))
    }

    @Test func hugeColumnCountDoesNotReserveBeyondTheMessage() {
        let bytes = PgOutputFixture("I").int32(1).char("N").int16(0xFFFF).char("n").bytes
        #expect(decodeError(bytes)?.reason == .truncated(needed: 1, remaining: 0))
    }
}
