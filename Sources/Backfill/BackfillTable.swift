import Decoding

/// What a backfill needs to know of its table, read from the source's catalog when a chunk
/// is read (a column added between chunks is read by the next one).
public struct BackfillTable: Sendable, Hashable {
    public struct Column: Sendable, Hashable {
        public var name: String
        public var typeOID: UInt32
        public var typeModifier: Int32
        /// `format_type` of the column's type: what a cursor value is cast to.
        public var typeName: String
        /// Flagged as the stream flags it: part of the replica identity (every column under FULL).
        public var isIdentity: Bool

        public init(name: String, typeOID: UInt32, typeModifier: Int32 = -1, typeName: String, isIdentity: Bool) {
            self.name = name
            self.typeOID = typeOID
            self.typeModifier = typeModifier
            self.typeName = typeName
            self.isIdentity = isIdentity
        }
    }

    public var name: TableName
    /// The published columns, in the table's order: what the stream sends of a row.
    public var columns: [Column]
    /// The primary key's columns, in key order.
    public var keyColumns: [String]
    /// The publication's row filter (PG15), so a backfill reads only rows the stream would send.
    public var rowFilter: String?

    public init(name: TableName, columns: [Column], keyColumns: [String], rowFilter: String? = nil) {
        self.name = name
        self.columns = columns
        self.keyColumns = keyColumns
        self.rowFilter = rowFilter
    }

    /// The row of one result line (text values in `columns` order; nil is NULL), as the stream would carry it.
    public func row(_ values: [String?]) -> Row {
        Row(columns: columns.map { Decoding.Column(name: $0.name, typeOID: $0.typeOID, typeModifier: $0.typeModifier,
                                                   isKey: $0.isIdentity) },
            values: values.map { value in value.map { .text(ArraySlice($0.utf8)) } ?? .null })
    }
}
