import Core

/// A table's shape at one point of the WAL, as `sql/010_schema_history.sql` records it.
public struct TableShape: Sendable, Hashable {
    /// Every column that was not dropped, in attribute order.
    public var columns: [String]
    public var generated: Set<String>
    /// The partitioned tables above it, parent first.
    public var ancestors: [TableName]
    /// Every table below a partitioned table.
    public var partitions: Set<TableName>

    public init(columns: [String], generated: Set<String> = [], ancestors: [TableName] = [], partitions: Set<TableName> = []) {
        self.columns = columns
        self.generated = generated
        self.ancestors = ancestors
        self.partitions = partitions
    }

    /// The columns pgoutput sends: never the generated ones.
    public var sentColumns: [String] { generated.isEmpty ? columns : columns.filter { !generated.contains($0) } }
}

/// A schema-history row that cannot be read. It stops the stream (it names the row):
/// laying changes out with a shape the service cannot read would print wrong lines.
public struct SchemaHistoryError: Error, Sendable, Hashable, CustomStringConvertible {
    public var id: String?
    public var reason: String
    /// The history table the row is in.
    public var table: TableName

    public init(id: String?, reason: String, table: TableName = SchemaHistory.table) {
        self.id = id
        self.reason = reason
        self.table = table
    }

    public var description: String {
        "\(table) row \(id ?? "without an id") cannot be read: \(reason)"
    }
}

/// Each table's shape as of any WAL position: what wal2json's output needs to look
/// like pgoutput's when the stream is read long after the DDL that changed the table.
///
/// An entry recorded at `position` applies to changes above it. The DDL that recorded
/// it holds a lock on the table from before that position to its commit, so no other
/// transaction's change to the table lies between; a change later in the DDL's own
/// transaction lies above it, an earlier one below. A change older than every entry of
/// its table gets the oldest one (the baseline, taken when 010 was installed).
///
/// Entries arrive twice over: loaded at start, and as the stream carries their rows.
/// Their ids make the second arrival a no-op.
///
/// It holds each publication's membership too (`changerelay.publication_history`, sql/028):
/// an entry applies to its own transaction's changes above its position and to other
/// transactions' changes above the position it settled at (its commit), the oldest (the
/// baseline) to every change before those.
public struct SchemaHistory: Sendable {
    public static let table = TableName(schema: "changerelay", name: "schema_history")
    public static let publicationTable = TableName(schema: "changerelay", name: "publication_history")

    private struct Entry: Sendable {
        var position: LSN
        var shape: TableShape
    }

    private var entries: [TableName: [Entry]] = [:]
    private var ids: Set<Int64> = []
    private struct PublicationEntry: Sendable {
        var id: Int64
        var position: LSN
        var xid: UInt32?
        var settled: LSN?
        var membership: PublicationMembership

        func applies(at lsn: LSN, xid changeXID: UInt32?) -> Bool {
            if let xid, xid == changeXID { return position < lsn }
            return settled.map { $0 < lsn } ?? false
        }
    }

    private var publications: [String: [PublicationEntry]] = [:]
    /// The publication of the entry recorded last under each id: a streamed settlement names
    /// only the id.
    private var publicationIDs: [Int64: String] = [:]

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }

    /// Adds one row of `changerelay.schema_history`; `shape` is its jsonb text.
    public mutating func record(id: String?, position: String?, schema: String?, table: String?,
                                shape: some Collection<UInt8>) throws(SchemaHistoryError) {
        func failure(_ reason: String) -> SchemaHistoryError { SchemaHistoryError(id: id, reason: reason) }
        guard let id, let number = Int64(id) else { throw failure("its id is not a number") }
        guard !ids.contains(number) else { return }
        guard let position, let lsn = LSN(position) else { throw failure("position '\(position ?? "null")' is not an LSN") }
        guard let schema, let table else { throw failure("it names no table") }
        let json: JSONValue
        do { json = try JSONParser.parse(shape) } catch { throw failure("shape is not JSON: \(error)") }
        let parsed = try Self.shape(json, failure)
        ids.insert(number)
        let name = TableName(schema: schema, name: table)
        var list = entries[name, default: []]
        let index = list.firstIndex { $0.position > lsn } ?? list.endIndex
        list.insert(Entry(position: lsn, shape: parsed), at: index)
        entries[name] = list
    }

    /// Adds one row of `changerelay.publication_history`; `membership` is its jsonb text.
    /// A row read from the table (`committed`) without `settled_at`, whose settlement trigger
    /// did not fire, counts for every transaction from its position.
    public mutating func recordPublication(id: String?, position: String?, publication: String?, membership: some Collection<UInt8>,
                                           xid: String?, settledAt: String?, committed: Bool) throws(SchemaHistoryError) {
        func failure(_ reason: String) -> SchemaHistoryError {
            SchemaHistoryError(id: id, reason: reason, table: Self.publicationTable)
        }
        guard let id, let number = Int64(id) else { throw failure("its id is not a number") }
        guard let position, let lsn = LSN(position) else { throw failure("position '\(position ?? "null")' is not an LSN") }
        guard let publication else { throw failure("it names no publication") }
        // The same row again (loaded, then streamed); an id the table numbered again after 028
        // was rolled back and applied anew is another row, at another position.
        if let known = publicationIDs[number], publications[known]?.contains(where: { $0.id == number && $0.position == lsn }) == true {
            return
        }
        let settled: LSN?
        if let settledAt {
            guard let parsed = LSN(settledAt) else { throw failure("settled_at '\(settledAt)' is not an LSN") }
            settled = parsed
        } else {
            settled = committed ? lsn : nil
        }
        let json: JSONValue
        do { json = try JSONParser.parse(membership) } catch { throw failure("membership is not JSON: \(error)") }
        let parsed = try PublicationMembership(json: json, failure)
        publicationIDs[number] = publication
        var list = publications[publication, default: []]
        let index = list.firstIndex { $0.position > lsn } ?? list.endIndex
        list.insert(PublicationEntry(id: number, position: lsn, xid: xid.flatMap { UInt32($0) }, settled: settled,
                                     membership: parsed), at: index)
        publications[publication] = list
    }

    /// The deferred trigger's update, as its transaction commits: from here on the entry
    /// counts for every transaction.
    public mutating func settlePublication(id: String?, settledAt: String?) throws(SchemaHistoryError) {
        guard let id, let number = Int64(id), let publication = publicationIDs[number] else { return }
        guard let settledAt, let lsn = LSN(settledAt) else {
            throw SchemaHistoryError(id: id, reason: "settled_at '\(settledAt ?? "null")' is not an LSN", table: Self.publicationTable)
        }
        guard let index = publications[publication]?.lastIndex(where: { $0.id == number }) else { return }
        publications[publication]?[index].settled = lsn
    }

    /// Adds the row a streamed INSERT into one of the history tables carries, and a streamed
    /// settlement of a publication entry; other operations on them (an operator's clean-up)
    /// change nothing already known.
    public mutating func record(_ change: Change) throws(SchemaHistoryError) {
        guard let row = change.new else { return }
        func text(_ name: String) -> ArraySlice<UInt8>? {
            if case .text(let bytes)? = row[name] { return bytes }
            return nil
        }
        let string = { (name: String) in text(name).map { String(decoding: $0, as: UTF8.self) } }
        if change.schema == Self.publicationTable.schema, change.table == Self.publicationTable.name {
            switch change.operation {
            case .insert:
                guard let membership = text("membership") else {
                    throw SchemaHistoryError(id: string("id"), reason: "the streamed row has no membership", table: Self.publicationTable)
                }
                try recordPublication(id: string("id"), position: string("position"), publication: string("publication"),
                                      membership: membership, xid: string("xid"), settledAt: string("settled_at"),
                                      committed: false)
            case .update:
                if string("settled_at") != nil { try settlePublication(id: string("id"), settledAt: string("settled_at")) }
            default:
                break
            }
            return
        }
        guard change.operation == .insert else { return }
        guard let shape = text("shape") else {
            throw SchemaHistoryError(id: string("id"), reason: "the streamed row has no shape")
        }
        try record(id: string("id"), position: string("position"), schema: string("schema_name"),
                   table: string("table_name"), shape: shape)
    }

    /// The table's shape at `lsn`, nil when the history has no entry for it.
    public func shape(of table: TableName, at lsn: LSN) -> TableShape? {
        guard let list = entries[table], let oldest = list.first else { return nil }
        return list.last { $0.position < lsn }?.shape ?? oldest.shape
    }

    /// What `publication` published for a change at `lsn` of transaction `xid`, nil when the
    /// history has no entry for it.
    public func membership(of publication: String, at lsn: LSN, xid: UInt32?) -> PublicationMembership? {
        guard let list = publications[publication], let oldest = list.first else { return nil }
        return (list.last { $0.applies(at: lsn, xid: xid) } ?? oldest).membership
    }


    /// The partitioned tables `table` belonged to at `lsn`, parent first; nil when the
    /// history does not know it. An ancestor whose own shape at `lsn` no longer lists the
    /// table (it was detached) does not count.
    public func ancestors(of table: TableName, at lsn: LSN) -> [TableName]? {
        guard let shape = shape(of: table, at: lsn) else { return nil }
        return shape.ancestors.filter { ancestor in
            self.shape(of: ancestor, at: lsn)?.partitions.contains(table) ?? false
        }
    }

    private static func shape(_ json: JSONValue, _ failure: (String) -> SchemaHistoryError) throws(SchemaHistoryError) -> TableShape {
        func names(_ key: String) throws(SchemaHistoryError) -> [String] {
            guard case .array(let items)? = json[key] else { throw failure("shape.\(key) is not an array") }
            var result: [String] = []
            for item in items {
                guard case .string(let name) = item else { throw failure("shape.\(key) holds a non-string") }
                result.append(name)
            }
            return result
        }
        func tables(_ key: String) throws(SchemaHistoryError) -> [TableName] {
            guard case .array(let items)? = json[key] else { throw failure("shape.\(key) is not an array") }
            var result: [TableName] = []
            for item in items {
                guard case .array(let pair) = item, pair.count == 2, case .string(let schema) = pair[0],
                      case .string(let name) = pair[1] else { throw failure("shape.\(key) holds something other than [schema, name]") }
                result.append(TableName(schema: schema, name: name))
            }
            return result
        }
        let columns = try names("columns")
        let generated = Set(try names("generated"))
        guard generated.isSubset(of: columns) else { throw failure("shape.generated names a column not in shape.columns") }
        return TableShape(columns: columns, generated: generated, ancestors: try tables("ancestors"),
                          partitions: Set(try tables("partitions")))
    }
}
