import Core
import Decoding
import Handlers
import Testing

/// Under REPLICA IDENTITY FULL a record is named by its primary key: pgoutput marks every
/// column a key column (wal2json none), and a key built from all of them changes with any of
/// them. Under any other identity its own columns name it.
@Suite struct PrimaryKeysTests {
    static func change(_ operation: Change.Operation, new: [(String, TupleValue)]?, old: [(String, TupleValue)]? = nil) -> Change {
        func row(_ pairs: [(String, TupleValue)]) -> Row {
            Row(columns: pairs.map { Column(name: $0.0, typeOID: 25, isKey: true) }, values: pairs.map(\.1))
        }
        return Change(lsn: LSN(0), schema: "public", table: "chat_sessions", operation: operation, new: new.map(row), old: old.map(row))
    }

    static func text(_ value: String) -> TupleValue { .text(ArraySlice(value.utf8)) }

    static let keys = PrimaryKeys(["public.chat_sessions": ["id"]])

    @Test func anInsertAnUpdateAndADeleteOfOneRecordShareItsKey() {
        let inserted = Self.change(.insert, new: [("id", Self.text("7")), ("status", Self.text("active"))])
        let updated = Self.change(.update, new: [("id", Self.text("7")), ("status", Self.text("ended"))],
                                  old: [("id", Self.text("7")), ("status", Self.text("active"))])
        let deleted = Self.change(.delete, new: nil, old: [("id", Self.text("7")), ("status", Self.text("ended"))])
        #expect([inserted, updated, deleted].map(Self.keys.recordKey) == ["id=7", "id=7", "id=7"])
        #expect(inserted.keyText != updated.keyText)
    }

    /// A log line or a handler's error names a row sent whole by its `id`, not by every value
    /// it holds; a row with a narrower identity, or no `id`, by its identity.
    @Test func aRowSentWholeIsNamedInLogsByItsID() {
        let whole = Self.change(.insert, new: [("id", Self.text("7")), ("email", Self.text("ada@example.com"))])
        #expect(whole.loggedKey == "id=7")
        #expect(whole.keyText == "id=7,email=ada@example.com", "keys and ordering keep the whole identity")
        let noID = Self.change(.insert, new: [("a", Self.text("1")), ("b", Self.text("2"))])
        #expect(noID.loggedKey == "a=1,b=2")
        let narrow = Change(lsn: LSN(0), schema: "public", table: "t", operation: .insert,
                            new: Row(columns: [Column(name: "code", typeOID: 25, isKey: true), Column(name: "id", typeOID: 25, isKey: false)],
                                     values: [Self.text("x"), Self.text("9")]))
        #expect(narrow.loggedKey == "code=x")
    }

    /// A table not known, or a row without the key's values, falls back to the replica identity.
    @Test func withoutTheKeysValuesTheReplicaIdentityNamesTheRecord() {
        let unknown = Change(lsn: LSN(0), schema: "public", table: "other", operation: .insert,
                             new: Row(columns: [Column(name: "a", typeOID: 25, isKey: true)], values: [Self.text("1")]))
        #expect(Self.keys.recordKey(of: unknown) == "a=1")
        let toasted = Self.change(.update, new: [("id", .unchangedToast), ("status", Self.text("ended"))])
        #expect(Self.keys.recordKey(of: toasted) == toasted.keyText)
        let missing = Self.change(.insert, new: [("status", Self.text("ended"))])
        #expect(Self.keys.recordKey(of: missing) == "status=ended")
    }

    /// Under USING INDEX only the index's columns are keys, and a DELETE carries those alone:
    /// every change of the record is named by them, not by the primary key, whatever the
    /// table's identity was when the service started.
    @Test func anIdentityOtherThanTheWholeRowNamesTheRecordByItsOwnColumns() {
        func row(_ pairs: [(String, String, Bool)]) -> Row {
            Row(columns: pairs.map { Column(name: $0.0, typeOID: 25, isKey: $0.2) }, values: pairs.map { Self.text($0.1) })
        }
        let updated = Change(lsn: LSN(0), schema: "public", table: "chat_sessions", operation: .update,
                             new: row([("id", "7", false), ("a", "10", true), ("v", "x", false)]))
        let deleted = Change(lsn: LSN(0), schema: "public", table: "chat_sessions", operation: .delete,
                             old: row([("a", "10", true)]))
        #expect([updated, deleted].map(Self.keys.recordKey) == ["a=10", "a=10"])
    }

    /// wal2json 2.5 sends no `pk` for a REPLICA IDENTITY FULL table: no column is a key, and
    /// the primary key read at start names the record, as through pgoutput.
    @Test func aRowWithNoKeyColumnIsNamedByThePrimaryKey() {
        let updated = Change(lsn: LSN(0), schema: "public", table: "chat_sessions", operation: .update,
                             new: Row(columns: ["id", "status"].map { Column(name: $0, typeOID: 25, isKey: false) },
                                      values: [Self.text("7"), Self.text("ended")]))
        #expect(Self.keys.recordKey(of: updated) == "id=7")
    }

    /// An UPDATE names the key it moved its record from only when the key changed: under a
    /// key identity (the old key sent because it changed), under FULL (the old row always
    /// sent, only its primary key compared), and never for an insert, a delete or an UPDATE
    /// without an old row.
    @Test func onlyAnUpdateThatChangedTheKeyHasAFormerKey() {
        func row(_ pairs: [(String, String, Bool)]) -> Row {
            Row(columns: pairs.map { Column(name: $0.0, typeOID: 25, isKey: $0.2) }, values: pairs.map { Self.text($0.1) })
        }
        func update(new: Row?, old: Row?) -> Change {
            Change(lsn: LSN(0), schema: "public", table: "chat_sessions", operation: .update, new: new, old: old)
        }
        let movedByKey = update(new: row([("id", "8", true), ("status", "x", false)]), old: row([("id", "7", true)]))
        #expect(Self.keys.formerRecordKey(of: movedByKey) == "id=7")
        let movedWhole = Self.change(.update, new: [("id", Self.text("8")), ("status", Self.text("x"))],
                                     old: [("id", Self.text("7")), ("status", Self.text("x"))])
        #expect(Self.keys.formerRecordKey(of: movedWhole) == "id=7")
        let keptWhole = Self.change(.update, new: [("id", Self.text("7")), ("status", Self.text("y"))],
                                    old: [("id", Self.text("7")), ("status", Self.text("x"))])
        #expect(Self.keys.formerRecordKey(of: keptWhole) == nil, "another column changed, not the key")
        let noOld = update(new: row([("id", "7", true), ("status", "x", false)]), old: nil)
        #expect(Self.keys.formerRecordKey(of: noOld) == nil)
        let keptKeySentAnyway = update(new: row([("id", "7", true), ("status", "x", false)]), old: row([("id", "7", true)]))
        #expect(Self.keys.formerRecordKey(of: keptKeySentAnyway) == nil)
        let deleted = Self.change(.delete, new: nil, old: [("id", Self.text("7"))])
        let inserted = Self.change(.insert, new: [("id", Self.text("7"))])
        #expect(Self.keys.formerRecordKey(of: deleted) == nil && Self.keys.formerRecordKey(of: inserted) == nil)
        // wal2json marks no column a key under FULL: the primary key read at start decides.
        let unmarked = update(new: Row(columns: ["id", "status"].map { Column(name: $0, typeOID: 25, isKey: false) },
                                       values: [Self.text("8"), Self.text("x")]),
                              old: Row(columns: ["id", "status"].map { Column(name: $0, typeOID: 25, isKey: false) },
                                       values: [Self.text("7"), Self.text("x")]))
        #expect(Self.keys.formerRecordKey(of: unmarked) == "id=7")
    }

    /// A key stored out of line and left as it was is not in the new row (an unchanged TOAST
    /// value) but in the old one, which the server sends for it: the record keeps its key,
    /// under a key identity and under FULL. Read as `?`, every such record of the table shared
    /// one ordering key, and an UPDATE could go before its own INSERT.
    @Test func aKeyLeftInToastIsTakenFromTheOldRow() {
        let long = String(repeating: "k", count: 3000)
        let byKey = Change(lsn: LSN(0), schema: "public", table: "bigpk", operation: .update,
                           new: Row(columns: [Column(name: "k", typeOID: 25, isKey: true), Column(name: "v", typeOID: 23, isKey: false)],
                                    values: [.unchangedToast, Self.text("11")]),
                           old: Row(columns: [Column(name: "k", typeOID: 25, isKey: true), Column(name: "v", typeOID: 23, isKey: false)],
                                    values: [Self.text(long), .null]))
        let inserted = Change(lsn: LSN(0), schema: "public", table: "bigpk", operation: .insert,
                              new: Row(columns: [Column(name: "k", typeOID: 25, isKey: true), Column(name: "v", typeOID: 23, isKey: false)],
                                       values: [Self.text(long), Self.text("10")]))
        #expect(byKey.keyText == inserted.keyText && byKey.keyText?.contains("?") == false)
        #expect(PrimaryKeys().formerRecordKey(of: byKey) == nil, "the key did not change")
        let keys = PrimaryKeys(["public.chat_sessions": ["k"]])
        let whole = Self.change(.update, new: [("k", .unchangedToast), ("status", Self.text("ended"))],
                                old: [("k", Self.text(long)), ("status", Self.text("active"))])
        let insertedWhole = Self.change(.insert, new: [("k", Self.text(long)), ("status", Self.text("active"))])
        #expect(keys.recordKey(of: whole) == keys.recordKey(of: insertedWhole))
        #expect(keys.recordKey(of: whole)?.contains("?") == false)
        #expect(keys.formerRecordKey(of: whole) == nil)
    }

    /// A USING INDEX identity read at start names the record by the index's columns, whichever
    /// columns the stream marks: wal2json marks the primary key's (`id`), and its DELETE
    /// carries only the index's (`email`), which no key was then made of.
    @Test func aUsingIndexIdentityReadAtStartNamesTheRecordWhateverTheStreamMarks() {
        let keys = PrimaryKeys(["public.indexed": ["id"]], identities: ["public.indexed": ["email"]])
        func change(_ operation: Change.Operation, new: Row? = nil, old: Row? = nil) -> Change {
            Change(lsn: LSN(0), schema: "public", table: "indexed", operation: operation, new: new, old: old)
        }
        let marked = Row(columns: [Column(name: "id", typeOID: 23, isKey: true), Column(name: "email", typeOID: 25, isKey: false)],
                         values: [Self.text("1"), Self.text("a@example.com")])
        let identityOnly = Row(columns: [Column(name: "email", typeOID: 25, isKey: false)], values: [Self.text("a@example.com")])
        let records = [change(.insert, new: marked), change(.update, new: marked), change(.delete, old: identityOnly)]
        #expect(records.map(keys.recordKey) == ["email=a@example.com", "email=a@example.com", "email=a@example.com"])
        // A row without the index's columns (the identity switched since the start) falls back as before.
        let withoutIndex = change(.delete, old: Row(columns: [Column(name: "id", typeOID: 23, isKey: true)], values: [Self.text("1")]))
        #expect(keys.recordKey(of: withoutIndex) == "id=1")
    }

    /// A composite primary key declared in another order than the table's columns names a
    /// record the same way from a new row (its flagged columns, in the row's order) and from
    /// an old key (all flagged, read by the primary key's columns): a key-changing UPDATE's
    /// former key is then the key its record's earlier changes had.
    @Test func aCompositeKeyDeclaredInAnotherOrderIsWrittenInTheRowsOrder() {
        let keys = PrimaryKeys(["public.pairs": ["b", "a"]])
        func row(_ values: [String], keys flagged: Set<String>) -> Row {
            let names = ["a", "b", "c"].prefix(values.count)
            return Row(columns: names.map { Column(name: $0, typeOID: 23, isKey: flagged.contains($0)) }, values: values.map(Self.text))
        }
        func change(_ operation: Change.Operation, new: Row? = nil, old: Row? = nil) -> Change {
            Change(lsn: LSN(0), schema: "public", table: "pairs", operation: operation, new: new, old: old)
        }
        let inserted = change(.insert, new: row(["1", "2", "x"], keys: ["a", "b"]))
        let moved = change(.update, new: row(["1", "3", "x"], keys: ["a", "b"]), old: row(["1", "2"], keys: ["a", "b"]))
        let deleted = change(.delete, old: row(["1", "3"], keys: ["a", "b"]))
        #expect(keys.recordKey(of: inserted) == "a=1,b=2")
        #expect(keys.formerRecordKey(of: moved) == "a=1,b=2")
        #expect(keys.recordKey(of: moved) == "a=1,b=3" && keys.recordKey(of: deleted) == "a=1,b=3")
    }
}
