import Core
import Decoding
import Replication

/// A table and the columns a COPY fills: planned deliveries (`DeliveryRows.target`) and
/// every table a handler plans rows for.
public struct CopyTarget: Sendable, Hashable {
    public var table: TableName
    public var columns: [String]

    public init(table: TableName, columns: [String]) {
        self.table = table
        self.columns = columns
    }

    /// `COPY "schema"."table" ("a", "b") FROM STDIN`, for rows in COPY's text format.
    public var statement: String {
        "COPY " + table.quoted
            + " (" + columns.map(quoteIdentifier).joined(separator: ", ") + ") FROM STDIN"
    }
}
