import Core

/// A logical decoding message (`pg_logical_emit_message`) as wal2json reports it.
public struct Wal2JsonMessage: Sendable, Hashable {
    public var lsn: LSN
    /// Nil for a non-transactional message, which wal2json prints with `"xid":null`.
    public var xid: UInt32?
    public var transactional: Bool
    public var prefix: String
    public var content: String

    public init(lsn: LSN, xid: UInt32?, transactional: Bool, prefix: String, content: String) {
        self.lsn = lsn
        self.xid = xid
        self.transactional = transactional
        self.prefix = prefix
        self.content = content
    }
}

/// What one wal2json record completed.
public enum Wal2JsonEvent: Sendable, Hashable {
    case transaction(Transaction)
    case message(Wal2JsonMessage)
}

/// How the wal2json decoder reports one table's change: what pgoutput would have said of it.
public struct Wal2JsonRoute: Sendable, Hashable {
    /// The relation the change is reported under: the table itself, or the partitioned
    /// ancestor a publication `WITH (publish_via_partition_root = true)` names.
    public var table: TableName
    /// That relation's columns in its attribute order as of the change, generated ones
    /// left out; nil when unknown (rows then keep wal2json's order).
    public var columns: [String]?
    /// The changed table's generated columns as of the change: pgoutput never sends them.
    public var generated: Set<String>
    /// What the publication publishes (`WITH (publish = '…')`): pgoutput sends nothing else.
    public var actions: PublishedActions
    /// The publication's column list for the reported relation (PostgreSQL 15), nil when it
    /// has none: pgoutput sends only those columns.
    public var columnList: Set<String>?

    public init(table: TableName, columns: [String]?, generated: Set<String> = [], actions: PublishedActions = .all,
                columnList: Set<String>? = nil) {
        self.table = table
        self.columns = columns
        self.generated = generated
        self.actions = actions
        self.columnList = columnList
    }
}

/// The columns of one wal2json record: its `columns` (an INSERT's or UPDATE's new row), or
/// its `identity` (a DELETE's).
public struct SeenColumns: Sendable, Hashable {
    public enum Extent: Sendable, Hashable {
        /// Every column of the table (an INSERT).
        case whole
        /// Every column but unchanged TOAST values (an UPDATE's new row).
        case withoutUnchangedToast
        /// The replica identity only (a DELETE).
        case identity
    }

    public var names: [String]
    public var extent: Extent

    public init(names: [String], extent: Extent) {
        self.names = names
        self.extent = extent
    }
}

/// A publication's `publish` option.
public struct PublishedActions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let insert = PublishedActions(rawValue: 1)
    public static let update = PublishedActions(rawValue: 2)
    public static let delete = PublishedActions(rawValue: 4)
    public static let truncate = PublishedActions(rawValue: 8)
    public static let all: PublishedActions = [.insert, .update, .delete, .truncate]

    /// The action of a wal2json record's code (`I`, `U`, `D`, `T`).
    static func of(code: UInt8) -> PublishedActions {
        switch code {
        case UInt8(ascii: "I"): .insert
        case UInt8(ascii: "U"): .update
        case UInt8(ascii: "D"): .delete
        default: .truncate
        }
    }
}

/// Turns wal2json 2.5 `format-version 2` records (one per XLogData message, options
/// `include-xids`, `include-timestamp`, `include-lsn`, `include-type-oids`, `include-pk`, and
/// `include-types` off)
/// into the same `Transaction`s the pgoutput decoder produces.
///
/// Values are normalised to Postgres' text output so both plugins yield the same
/// `TupleValue.text`: a number keeps its JSON token text, `true`/`false` become `t`/`f`,
/// bytea gets back the `\x` wal2json strips, strings (json, jsonb, arrays, timestamps, …)
/// are their decoded content, and JSON null is `.null`. wal2json prints NaN and ±Infinity
/// of float and numeric columns as null, so those arrive as `.null` here (pgoutput gives
/// the text `NaN`). Text values share the record's bytes when they contain no escapes.
///
/// To look like pgoutput, an UPDATE's `identity` is dropped when it is only the key and
/// the key did not change (pgoutput sends no old tuple then; wal2json repeats the key).
/// An identity holding every column of the table is REPLICA IDENTITY FULL and is kept.
///
/// wal2json knows no publications and names the leaf partition: the router says, per
/// change, whether the table is published, under which relation, with which columns and
/// which generated columns to leave out, all as of the change's position. Rows of the
/// schema-history table update `history` the moment they are decoded, so a change later
/// in the same transaction as a DDL already sees its new shape.
///
/// Column typmods are not in wal2json output, so `Column.typeModifier` is -1; `isKey` comes
/// from `pk` when it lists columns, else from a key-only `identity` (pgoutput instead marks
/// every column of a REPLICA IDENTITY FULL table).
///
/// Use one per replication connection: after a reconnect the server sends again every
/// transaction not acknowledged, from its `B`, so a half-read one must not carry over.
public struct Wal2JsonDecoder: Sendable {
    /// The route of a change of `table` at `lsn`; nil drops the change (not published).
    /// `seen` gives the columns the record carries, for a router that keeps shapes of its own
    /// and must tell when one is stale; asked only then, it costs the others nothing.
    public typealias Router = @Sendable (_ table: TableName, _ lsn: LSN, _ xid: UInt32?, _ history: SchemaHistory,
                                         _ seen: () -> SeenColumns) -> Wal2JsonRoute?

    private struct OpenTransaction: Sendable {
        var xid: UInt32
        var commitTime: PostgresTimestamp
        var changes = TransactionChanges()
        var messages: [LogicalMessage] = []
    }

    private let router: Router?
    private let spillSettings: SpillSettings
    private let baseTypes: BaseTypes
    private var open: OpenTransaction?
    /// Every table's shape as of any position: loaded at start, extended by the stream.
    public private(set) var history: SchemaHistory

    /// Without a router every change is reported as wal2json names it, with its columns in
    /// wal2json's order, and an unchanged TOASTed column is simply absent from the row.
    /// With one, an UPDATE reports such columns as `.unchangedToast`, in table order, and
    /// a DELETE's key-only `identity` is told from a FULL one by the table's columns.
    /// wal2json sends a transaction whole at its commit: past `spill.threshold` bytes its
    /// changes move to a spill file.
    /// A column's type is its base type (`baseTypes`) once its value is read: wal2json quotes a
    /// domain's values as the text Postgres prints, whatever the base type.
    public init(router: Router? = nil, history: SchemaHistory = SchemaHistory(), spill: SpillSettings = .default,
                baseTypes: BaseTypes = .unresolved) {
        self.router = router
        self.history = history
        spillSettings = spill
        self.baseTypes = baseTypes
    }

    /// Whether a `B` has been seen without its `C`: the stream position is then mid-transaction
    /// and a keepalive must not be acknowledged past the last commit.
    public var isInTransaction: Bool { open != nil }

    /// Decodes one record; returns the transaction its `C` record completed, nil otherwise.
    /// Messages are skipped.
    public mutating func decode(_ record: ArraySlice<UInt8>, at lsn: LSN) throws(Wal2JsonDecodingError) -> Transaction? {
        guard case .transaction(let transaction) = try decodeEvent(record, at: lsn) else { return nil }
        return transaction
    }

    /// Decodes one record; returns a completed transaction or a message, nil for records
    /// that only advance the open transaction. A transactional message is returned when it
    /// arrives, before its transaction's `C` (wal2json only sends committed transactions).
    /// `lsn` is the XLogData start position, used in errors and as a change's position when
    /// the record has no `lsn` field (the walsender stamps a change's XLogData with its LSN).
    public mutating func decodeEvent(_ record: ArraySlice<UInt8>, at lsn: LSN) throws(Wal2JsonDecodingError) -> Wal2JsonEvent? {
        let parsed = record.withUnsafeBufferPointer { buffer in
            Result { () throws(RecordFailure) in
                var parser = RecordParser(scanner: JSONScanner(buffer))
                return try parser.parseRecord()
            }
        }
        switch parsed {
        case .failure(let failure):
            throw failure.error(at: lsn)
        case .success(let fields):
            do {
                return try apply(fields, record: record, lsn: lsn)
            } catch {
                throw error.error(at: lsn)
            }
        }
    }

    private mutating func apply(_ fields: RecordFields, record: ArraySlice<UInt8>, lsn: LSN) throws(RecordFailure) -> Wal2JsonEvent? {
        let action = try fields.require(fields.action, "action")
        guard action.count == 1, let code = action.utf8.first else {
            throw RecordFailure(field: "action", table: fields.qualifiedTable, reason: .unknownAction(action))
        }
        switch code {
        case UInt8(ascii: "B"):
            if let open { throw RecordFailure(field: nil, table: nil, reason: .beginInsideTransaction(openXID: open.xid)) }
            let xid = try fields.require(fields.xid ?? nil, "xid")
            let commitTime = try fields.require(fields.timestamp ?? nil, "timestamp")
            open = OpenTransaction(xid: xid, commitTime: commitTime)
            return nil
        case UInt8(ascii: "I"), UInt8(ascii: "U"), UInt8(ascii: "D"), UInt8(ascii: "T"):
            guard open != nil else {
                throw RecordFailure(field: nil, table: fields.qualifiedTable, reason: .changeOutsideTransaction)
            }
            guard let change = try makeChange(code, fields, record: record, lsn: lsn) else { return nil }
            open!.changes.append(change)
            if open!.changes.memoryBytes > spillSettings.threshold {
                do {
                    try open!.changes.spill(spillSettings)
                } catch {
                    throw RecordFailure(field: nil, table: fields.qualifiedTable, reason: .spillFailed(error))
                }
            }
            return nil
        case UInt8(ascii: "M"):
            let transactional = try fields.require(fields.transactional, "transactional")
            if transactional, open == nil {
                throw RecordFailure(field: nil, table: nil, reason: .changeOutsideTransaction)
            }
            let prefix = try fields.require(fields.prefix, "prefix")
            if transactional {
                // Handed on with its transaction, at the commit; another application's is dropped.
                if LogicalMessage.isChangeRelays(prefix: prefix) {
                    open!.messages.append(LogicalMessage(lsn: fields.lsn ?? lsn, prefix: prefix,
                                                         content: Array(try fields.require(fields.content, "content").utf8)))
                }
                return nil
            }
            return .message(Wal2JsonMessage(
                lsn: fields.lsn ?? lsn, xid: fields.xid ?? nil, transactional: transactional,
                prefix: prefix, content: try fields.require(fields.content, "content")))
        case UInt8(ascii: "C"):
            guard let transaction = open else {
                throw RecordFailure(field: nil, table: nil, reason: .changeOutsideTransaction)
            }
            if let xid = fields.xid ?? nil, xid != transaction.xid {
                throw RecordFailure(field: "xid", table: nil, reason: .xidMismatch(begin: transaction.xid, commit: xid))
            }
            let commitLSN = try fields.require(fields.lsn, "lsn")
            let endLSN = try fields.require(fields.nextLSN, "nextlsn")
            open = nil
            return .transaction(Transaction(
                xid: transaction.xid, commitLSN: commitLSN, endLSN: endLSN,
                commitTime: transaction.commitTime, changes: transaction.changes, messages: transaction.messages))
        default:
            throw RecordFailure(field: "action", table: fields.qualifiedTable, reason: .unknownAction(action))
        }
    }

    /// The change as pgoutput would report it, or nil when its table is not published.
    private mutating func makeChange(_ code: UInt8, _ fields: RecordFields, record: ArraySlice<UInt8>, lsn: LSN) throws(RecordFailure) -> Change? {
        let name = TableName(schema: try fields.require(fields.schema, "schema"), name: try fields.require(fields.table, "table"))
        let lsn = fields.lsn ?? lsn
        if (name == SchemaHistory.table && code == UInt8(ascii: "I"))
            || (name == SchemaHistory.publicationTable && (code == UInt8(ascii: "I") || code == UInt8(ascii: "U"))) {
            let entry = try layOut(code, fields, record: record, lsn: lsn, table: name, route: nil)
            do { try history.record(entry) } catch {
                throw RecordFailure(field: nil, table: fields.qualifiedTable, reason: .schemaHistory(error))
            }
        }
        guard let router else { return try layOut(code, fields, record: record, lsn: lsn, table: name, route: nil) }
        let seen = {
            switch code {
            case UInt8(ascii: "I"): SeenColumns(names: fields.columns?.map(\.name) ?? [], extent: .whole)
            case UInt8(ascii: "U"): SeenColumns(names: fields.columns?.map(\.name) ?? [], extent: .withoutUnchangedToast)
            default: SeenColumns(names: fields.identity?.map(\.name) ?? [], extent: .identity)
            }
        }
        guard let route = router(name, lsn, open?.xid, history, seen), route.actions.contains(.of(code: code)) else { return nil }
        // pgoutput sends a partition's truncate only when the partition itself is what is published.
        if code == UInt8(ascii: "T"), route.table != name { return nil }
        return try layOut(code, fields, record: record, lsn: lsn, table: name, route: route)
    }

    private func layOut(_ code: UInt8, _ fields: RecordFields, record: ArraySlice<UInt8>, lsn: LSN, table: TableName,
                        route: Wal2JsonRoute?) throws(RecordFailure) -> Change {
        let reported = route?.table ?? table
        var change = Change(lsn: lsn, schema: reported.schema, table: reported.name, operation: .truncate)
        guard code != UInt8(ascii: "T") else { return change }

        let resolve = { (value: ValueRef) -> TupleValue in
            switch value {
            case .null: .null
            case .text(let text): .text(text)
            case .record(let range):
                .text(record[(record.startIndex + range.lowerBound)..<(record.startIndex + range.upperBound)])
            case .decoded(let range): .text(fields.decoded[range])
            }
        }
        if code == UInt8(ascii: "D") {
            _ = try fields.require(fields.identity, "identity")
        } else {
            _ = try fields.require(fields.columns, "columns")
        }
        let generated = route?.generated ?? []
        let listed = route?.columnList
        func isSent(_ name: String) -> Bool { !generated.contains(name) && listed.map { $0.contains(name) } ?? true }
        let sent = { (list: [ParsedColumn]) in generated.isEmpty && listed == nil ? list : list.filter { isSent($0.name) } }
        let identity = sent(fields.identity ?? [])
        let columns = sent(fields.columns ?? [])
        // A partition's own generated column under a root's plain one: the root's shape names
        // it, but wal2json never sends a generated column, so it is left out rather than said
        // to be an unchanged TOAST value.
        let known = route?.columns.map { known in generated.isEmpty && listed == nil ? known : known.filter(isSent) }
        // wal2json does not say whether the identity is FULL: it is when every column the row
        // has is in it. Decided on what wal2json sent, before a column list or generated
        // columns are left out (a publication carrying only the key made every sent column an
        // identity column, read as FULL: an old row where pgoutput sends none), and on the
        // shape, which knows the unchanged TOAST columns the record leaves out. A table whose
        // every column is in its key reads as FULL either way: only the catalog could tell.
        let rawIdentity = fields.identity ?? []
        func inIdentity(_ name: String) -> Bool { rawIdentity.contains { $0.name == name } }
        let identityIsKey = (route?.columns?.contains { !inIdentity($0) } ?? false)
            || (fields.columns ?? []).contains { !inIdentity($0.name) }
        let keys: [ParsedColumn] = if let pk = fields.pk, !pk.isEmpty { pk } else if identityIsKey { identity } else { [] }
        func isKey(_ name: String) -> Bool { keys.contains { $0.name == name } }

        func row(_ parsed: [ParsedColumn]) -> Row {
            Row(columns: parsed.map { Column(name: $0.name, typeOID: baseTypes.base(of: $0.typeOID), isKey: isKey($0.name)) },
                values: parsed.map { resolve($0.value) })
        }
        /// A partition's columns can stand in another order than its root's.
        let reordered = reported != table
        func ordered(_ row: Row) -> Row {
            guard reordered, let known else { return row }
            return Self.ordered(row, as: known)
        }

        switch code {
        case UInt8(ascii: "I"):
            change.operation = .insert
            change.new = ordered(row(columns))
        case UInt8(ascii: "U"):
            change.operation = .update
            var new = row(columns)
            if let known { new = Self.mergeUnchangedToast(new, known: known, identity: identity, isKey: isKey) }
            change.new = new
            if fields.identity != nil {
                let old = row(identity)
                let keyUnchanged = identityIsKey && zip(old.columns, old.values).allSatisfy { column, value in
                    new[column.name] == value
                }
                change.old = keyUnchanged ? nil : ordered(old)
            }
        default:
            change.operation = .delete
            change.old = ordered(row(identity))
        }
        return change
    }

    /// The row's columns in `order`; columns `order` does not name go last. A key-only
    /// old row holds a subset of `order`, so only its own columns are placed.
    private static func ordered(_ row: Row, as order: [String]) -> Row {
        laidOut(row, in: order) { _ in nil }
    }

    /// Lays the received columns out in table order, marking the ones wal2json omitted
    /// (unchanged TOAST) and appending any the caller's list does not know yet.
    private static func mergeUnchangedToast(_ new: Row, known: [String], identity: [ParsedColumn], isKey: (String) -> Bool) -> Row {
        laidOut(new, in: known) { name in
            // The type is only knowable from a FULL identity; the value is never rendered anyway.
            Column(name: name, typeOID: identity.first { $0.name == name }?.typeOID ?? 0, isKey: isKey(name))
        }
    }

    /// The row's columns in `order`, then those `order` does not name. A name in `order` the
    /// row lacks is skipped, or placed as an unchanged TOAST value when `omitted` gives its column.
    private static func laidOut(_ row: Row, in order: [String], omitted: (String) -> Column?) -> Row {
        if row.columns.count == order.count, zip(row.columns, order).allSatisfy({ $0.name == $1 }) { return row }
        var columns: [Column] = []
        var values: [TupleValue] = []
        columns.reserveCapacity(max(order.count, row.columns.count))
        values.reserveCapacity(columns.capacity)
        for name in order {
            if let index = row.columns.firstIndex(where: { $0.name == name }) {
                columns.append(row.columns[index])
                values.append(row.values[index])
            } else if let column = omitted(name) {
                columns.append(column)
                values.append(.unchangedToast)
            }
        }
        for (column, value) in zip(row.columns, row.values) where !order.contains(column.name) {
            columns.append(column)
            values.append(value)
        }
        return Row(columns: columns, values: values)
    }
}

// MARK: - Record parsing

/// A decoded value before the record's side buffer is final: ranges point into the record
/// or into `RecordFields.decoded` (unescaped strings, bytea with its `\x` restored).
private enum ValueRef {
    case null
    case text(ArraySlice<UInt8>)
    case record(Range<Int>)
    case decoded(Range<Int>)
}

private struct ParsedColumn {
    var name: String
    var typeOID: UInt32
    var value: ValueRef
}

private struct RecordFields {
    var action: String?
    /// Outer nil: absent; inner nil: JSON null (non-transactional messages).
    var xid: UInt32??
    var timestamp: PostgresTimestamp??
    var lsn: LSN?
    var nextLSN: LSN?
    var schema: String?
    var table: String?
    var columns: [ParsedColumn]?
    var identity: [ParsedColumn]?
    var pk: [ParsedColumn]?
    var transactional: Bool?
    var prefix: String?
    var content: String?
    var decoded: [UInt8] = []

    var qualifiedTable: String? {
        guard let schema, let table else { return table }
        return schema + "." + table
    }

    func require<Value>(_ value: Value?, _ field: String) throws(RecordFailure) -> Value {
        guard let value else { throw RecordFailure(field: field, table: qualifiedTable, reason: .missingField) }
        return value
    }
}

private struct RecordFailure: Error {
    var field: String?
    var table: String?
    var reason: Wal2JsonDecodingError.Reason

    func error(at lsn: LSN) -> Wal2JsonDecodingError {
        Wal2JsonDecodingError(lsn: lsn, field: field, table: table, reason: reason)
    }
}

private struct RecordParser {
    private static let trueText: ArraySlice<UInt8> = [UInt8(ascii: "t")]
    private static let falseText: ArraySlice<UInt8> = [UInt8(ascii: "f")]
    private static let byteaOID: UInt32 = 17

    private enum PendingValue {
        case null
        case bool(Bool)
        case number(Range<Int>)
        case string(JSONScanner.StringToken)
    }

    var scanner: JSONScanner
    private var fields = RecordFields()

    init(scanner: JSONScanner) { self.scanner = scanner }

    mutating func parseRecord() throws(RecordFailure) -> RecordFields {
        var seen: UInt32 = 0
        if try json({ s throws(JSONParseError) in try s.beginContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) }) {
            repeat {
                let key = try json { s throws(JSONParseError) in try s.scanString() }
                try json { s throws(JSONParseError) in try s.expect(UInt8(ascii: ":")) }
                if let index = Self.fieldNames.firstIndex(where: { scanner.token(key, equals: $0) }) {
                    let name = Self.fieldNameStrings[index]
                    guard seen & 1 << index == 0 else { throw failure(name, .duplicateField) }
                    seen |= 1 << index
                    try parseField(index, name)
                } else {
                    try json { s throws(JSONParseError) in try s.skipValue() }
                }
            } while try json({ s throws(JSONParseError) in try s.nextElement(close: UInt8(ascii: "}")) })
        }
        try json { s throws(JSONParseError) in try s.expectEnd() }
        return fields
    }

    /// The fields ChangeRelay reads; any other (`origin`, `type`, …) is validated and skipped.
    private static let fieldNames: [StaticString] = [
        "action", "xid", "timestamp", "lsn", "nextlsn", "schema", "table",
        "columns", "identity", "pk", "transactional", "prefix", "content",
    ]
    private static let fieldNameStrings = fieldNames.map { "\($0)" }

    private mutating func parseField(_ index: Int, _ name: String) throws(RecordFailure) {
        switch index {
        case 0: fields.action = try string(name)
        case 1: fields.xid = .some(try nullable(name) { p throws(RecordFailure) in try p.xid(name) })
        case 2: fields.timestamp = .some(try nullable(name) { p throws(RecordFailure) in try p.timestamp(name) })
        case 3: fields.lsn = try lsn(name)
        case 4: fields.nextLSN = try lsn(name)
        case 5: fields.schema = try string(name)
        case 6: fields.table = try string(name)
        case 7: fields.columns = try columnList(name, withValues: true)
        case 8: fields.identity = try columnList(name, withValues: true)
        case 9: fields.pk = try columnList(name, withValues: false)
        case 10: fields.transactional = try bool(name)
        case 11: fields.prefix = try string(name)
        // Another application's binary message comes as its raw bytes (cut at the first zero):
        // taken as they are, so it cannot stop the stream; ChangeRelay's own are ASCII.
        default: fields.content = try string(name, bytes: .any)
        }
    }

    private mutating func columnList(_ field: @autoclosure () -> String, withValues: Bool) throws(RecordFailure) -> [ParsedColumn] {
        guard try peek() == UInt8(ascii: "[") else { throw failure(field(), .wrongType(expected: "array")) }
        var result: [ParsedColumn] = []
        if try json({ s throws(JSONParseError) in try s.beginContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]")) }) {
            repeat {
                result.append(try column(in: field(), at: result.count, withValue: withValues))
            } while try json({ s throws(JSONParseError) in try s.nextElement(close: UInt8(ascii: "]")) })
        }
        return result
    }

    private mutating func column(in list: @autoclosure () -> String, at index: Int, withValue: Bool) throws(RecordFailure) -> ParsedColumn {
        func path(_ member: String = "") -> String { "\(list())[\(index)]" + member }
        guard try peek() == UInt8(ascii: "{") else { throw failure(path(), .wrongType(expected: "object")) }
        var name: String?
        var typeOID: UInt32?
        var value: PendingValue?
        if try json({ s throws(JSONParseError) in try s.beginContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) }) {
            repeat {
                let key = try json { s throws(JSONParseError) in try s.scanString() }
                try json { s throws(JSONParseError) in try s.expect(UInt8(ascii: ":")) }
                if scanner.token(key, equals: "name") {
                    guard name == nil else { throw failure(path(".name"), .duplicateField) }
                    name = try string(path(".name"))
                } else if scanner.token(key, equals: "typeoid") {
                    guard typeOID == nil else { throw failure(path(".typeoid"), .duplicateField) }
                    typeOID = try oid(path(".typeoid"))
                } else if withValue, scanner.token(key, equals: "value") {
                    guard value == nil else { throw failure(path(".value"), .duplicateField) }
                    value = try pendingValue(path(".value"))
                } else {
                    try json { s throws(JSONParseError) in try s.skipValue() }
                }
            } while try json({ s throws(JSONParseError) in try s.nextElement(close: UInt8(ascii: "}")) })
        }
        guard let name else { throw failure(path(".name"), .missingField) }
        guard withValue else { return ParsedColumn(name: name, typeOID: typeOID ?? 0, value: .null) }
        guard let typeOID else { throw failure(path(".typeoid"), .missingField) }
        guard let value else { throw failure(path(".value"), .missingField) }
        return ParsedColumn(name: name, typeOID: typeOID, value: resolve(value, typeOID: typeOID))
    }

    private mutating func pendingValue(_ path: @autoclosure () -> String) throws(RecordFailure) -> PendingValue {
        switch try peek() {
        case UInt8(ascii: "\""):
            return .string(try json { s throws(JSONParseError) in try s.scanString() })
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try json { s throws(JSONParseError) in try s.scanNumber() })
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            switch try json({ s throws(JSONParseError) in try s.scanLiteral() }) {
            case .true: return .bool(true)
            case .false: return .bool(false)
            case .null: return .null
            }
        default:
            try json { s throws(JSONParseError) in try s.skipValue() }
            throw failure(path(), .wrongType(expected: "string, number, boolean or null"))
        }
    }

    private mutating func resolve(_ value: PendingValue, typeOID: UInt32) -> ValueRef {
        switch value {
        case .null: return .null
        case .bool(let flag): return .text(flag ? Self.trueText : Self.falseText)
        case .number(let range): return .record(range)
        case .string(let token):
            guard typeOID == Self.byteaOID || token.hasEscapes else { return .record(token.content) }
            let start = fields.decoded.count
            if typeOID == Self.byteaOID { fields.decoded.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x")]) }
            scanner.unescape(token, into: &fields.decoded)
            return .decoded(start..<fields.decoded.count)
        }
    }

    // MARK: Typed field readers

    private mutating func string(_ field: @autoclosure () -> String,
                                 bytes: JSONScanner.StringBytes = .utf8) throws(RecordFailure) -> String {
        guard try peek() == UInt8(ascii: "\"") else { throw failure(field(), .wrongType(expected: "string")) }
        return scanner.string(try json { s throws(JSONParseError) in try s.scanString(bytes: bytes) })
    }

    private mutating func bool(_ field: @autoclosure () -> String) throws(RecordFailure) -> Bool {
        let next = try peek()
        guard next == UInt8(ascii: "t") || next == UInt8(ascii: "f") else { throw failure(field(), .wrongType(expected: "boolean")) }
        return try json { s throws(JSONParseError) in try s.scanLiteral() } == .true
    }

    /// Runs `read` unless the value is JSON null.
    private mutating func nullable<Value>(_ field: @autoclosure () -> String, _ read: (inout RecordParser) throws(RecordFailure) -> Value) throws(RecordFailure) -> Value? {
        guard try peek() == UInt8(ascii: "n") else { return try read(&self) }
        guard try json({ s throws(JSONParseError) in try s.scanLiteral() }) == .null else {
            throw failure(field(), .wrongType(expected: "number, string or null"))
        }
        return nil
    }

    private mutating func unsignedInteger(_ field: @autoclosure () -> String) throws(RecordFailure) -> (negative: Bool, magnitude: UInt64) {
        let next = try peek()
        guard next == UInt8(ascii: "-") || next &- UInt8(ascii: "0") < 10 else { throw failure(field(), .wrongType(expected: "number")) }
        let range = try json { s throws(JSONParseError) in try s.scanNumber() }
        let negative = scanner.input[range.lowerBound] == UInt8(ascii: "-")
        var magnitude: UInt64 = 0
        for index in (negative ? range.lowerBound + 1 : range.lowerBound)..<range.upperBound {
            let digit = scanner.input[index] &- UInt8(ascii: "0")
            guard digit < 10, magnitude <= UInt64(UInt32.max) else {
                throw failure(field(), .invalidValue("\(scanner.text(range)) is not a 32-bit integer"))
            }
            magnitude = magnitude * 10 + UInt64(digit)
        }
        return (negative, magnitude)
    }

    private mutating func xid(_ field: @autoclosure () -> String) throws(RecordFailure) -> UInt32 {
        let (negative, magnitude) = try unsignedInteger(field())
        guard !negative, let xid = UInt32(exactly: magnitude) else {
            throw failure(field(), .invalidValue("\(negative ? "-" : "")\(magnitude) is not a transaction id"))
        }
        return xid
    }

    /// wal2json prints type OIDs with `%d`, so an OID past 2^31 arrives negative.
    private mutating func oid(_ field: @autoclosure () -> String) throws(RecordFailure) -> UInt32 {
        let (negative, magnitude) = try unsignedInteger(field())
        if negative, magnitude <= 1 << 31 { return UInt32(truncatingIfNeeded: -Int64(magnitude)) }
        guard !negative, let oid = UInt32(exactly: magnitude) else {
            throw failure(field(), .invalidValue("\(negative ? "-" : "")\(magnitude) is not a type OID"))
        }
        return oid
    }

    /// Reads `X/X` straight from the record bytes: every record carries one, and going
    /// through a String and `LSN.init?(_:)` cost more than the rest of a small record.
    private mutating func lsn(_ field: @autoclosure () -> String) throws(RecordFailure) -> LSN {
        guard try peek() == UInt8(ascii: "\"") else { throw failure(field(), .wrongType(expected: "string")) }
        let token = try json { s throws(JSONParseError) in try s.scanString() }
        var halves: (UInt64, UInt64) = (0, 0)
        var digits = 0
        var sawSlash = false
        var valid = !token.hasEscapes
        for index in token.content where valid {
            let byte = scanner.input[index]
            if byte == UInt8(ascii: "/"), !sawSlash, digits > 0 {
                sawSlash = true
                digits = 0
                continue
            }
            let nibble: UInt8 = switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            default: 0xFF
            }
            digits += 1
            valid = nibble != 0xFF && digits <= 8
            if sawSlash { halves.1 = halves.1 << 4 | UInt64(nibble) } else { halves.0 = halves.0 << 4 | UInt64(nibble) }
        }
        guard valid, sawSlash, digits > 0 else {
            throw failure(field(), .invalidValue("\"\(scanner.string(token))\" is not an LSN"))
        }
        return LSN(halves.0 << 32 | halves.1)
    }

    private mutating func timestamp(_ field: @autoclosure () -> String) throws(RecordFailure) -> PostgresTimestamp {
        guard try peek() == UInt8(ascii: "\"") else { throw failure(field(), .wrongType(expected: "string")) }
        let token = try json { s throws(JSONParseError) in try s.scanString() }
        let parsed: PostgresTimestamp? = if token.hasEscapes {
            nil
        } else {
            PostgresTimestamp(wal2jsonText: UnsafeBufferPointer(rebasing: scanner.input[token.content]))
        }
        guard let parsed else {
            throw failure(field(), .invalidValue("\"\(scanner.string(token))\" is not an ISO timestamptz"))
        }
        return parsed
    }

    // MARK: Plumbing

    private mutating func peek() throws(RecordFailure) -> UInt8 {
        try json { s throws(JSONParseError) in try s.peek() }
    }

    private mutating func json<Value>(_ body: (inout JSONScanner) throws(JSONParseError) -> Value) throws(RecordFailure) -> Value {
        do {
            return try body(&scanner)
        } catch {
            throw RecordFailure(field: nil, table: fields.qualifiedTable, reason: .invalidJSON(error))
        }
    }

    private func failure(_ field: String, _ reason: Wal2JsonDecodingError.Reason) -> RecordFailure {
        RecordFailure(field: field, table: fields.qualifiedTable, reason: reason)
    }
}
