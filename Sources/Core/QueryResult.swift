/// Rows of a result in text format; NULL is nil.
public struct QueryResult: Sendable {
    public var columns: [String]
    public var rows: [[String?]]

    public init(columns: [String], rows: [[String?]]) {
        self.columns = columns
        self.rows = rows
    }

    /// The first row's value of `column`, for single-row lookups.
    public func value(_ column: String, row: Int = 0) -> String? {
        guard row < rows.count, let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }
}
