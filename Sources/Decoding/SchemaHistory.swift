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

    public var description: String {
        "changerelay.schema_history row \(id ?? "without an id") cannot be read: \(reason)"
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
public struct SchemaHistory: Sendable {
    public static let table = TableName(schema: "changerelay", name: "schema_history")

    private struct Entry: Sendable {
        var position: LSN
        var shape: TableShape
    }

    private var entries: [TableName: [Entry]] = [:]
    private var ids: Set<Int64> = []

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

    /// Adds the row a streamed INSERT into the history table carries; other operations
    /// on it (an operator's clean-up) change nothing already known.
    public mutating func record(_ change: Change) throws(SchemaHistoryError) {
        guard change.operation == .insert, let row = change.new else { return }
        func text(_ name: String) -> ArraySlice<UInt8>? {
            if case .text(let bytes)? = row[name] { return bytes }
            return nil
        }
        let string = { (name: String) in text(name).map { String(decoding: $0, as: UTF8.self) } }
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
