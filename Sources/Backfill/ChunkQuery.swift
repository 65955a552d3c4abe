import Core
import Decoding

/// The SELECT of one chunk: the next `limit` rows past the cursor in primary-key order, up
/// to the request's highest key, narrowed by the operator's WHERE and the publication's row
/// filter. Keyset pagination, so every chunk is an index range scan however far the
/// backfill has come.
public struct ChunkQuery: Sendable, Hashable {
    public var sql: String
    public var parameters: [String?]

    /// `through`: the highest key to read (`highestKey`), nil for no bound, empty when
    /// no row matched when the backfill started: then nothing is read.
    public init(table: BackfillTable, where condition: String?, after cursor: [String]?, through high: [String]?, limit: Int) {
        let keys = "(" + table.keyColumns.map(quoteIdentifier).joined(separator: ", ") + ")"
        var conditions: [String] = []
        var parameters: [String?] = []
        func placeholders(for values: [String]) -> String {
            let first = parameters.count + 1
            parameters += values
            return "(" + table.keyColumns.enumerated().map { index, column in
                let type = table.columns.first { $0.name == column }?.typeName ?? "text"
                return "$\(first + index)::\(type)"
            }.joined(separator: ", ") + ")"
        }
        if let cursor, cursor.count == table.keyColumns.count {
            conditions.append(keys + " > " + placeholders(for: cursor))
        }
        if let high {
            conditions.append(high.count == table.keyColumns.count ? keys + " <= " + placeholders(for: high) : "false")
        }
        conditions += Self.narrowing(table, where: condition)
        sql = Self.select(table, conditions: conditions, order: table.keyColumns.map(quoteIdentifier).joined(separator: ", "))
            + " LIMIT \(limit)"
        self.parameters = parameters
    }

    /// The highest key among the rows the request covers now: where a backfill ends, so that
    /// it reads the rows that exist when it starts and not those the stream hands on since.
    /// Its one row (none for no row) holds the key's values in key order.
    public static func highestKey(table: BackfillTable, where condition: String?) -> String {
        let narrowing = narrowing(table, where: condition)
        return "SELECT " + table.keyColumns.map(quoteIdentifier).joined(separator: ", ") + " FROM " + table.name.quoted
            + (narrowing.isEmpty ? "" : " WHERE " + narrowing.joined(separator: " AND "))
            + " ORDER BY " + table.keyColumns.map { quoteIdentifier($0) + " DESC" }.joined(separator: ", ") + " LIMIT 1"
    }

    private static func narrowing(_ table: BackfillTable, where condition: String?) -> [String] {
        [condition, table.rowFilter].compactMap { $0.map { "(" + $0 + ")" } }
    }

    private static func select(_ table: BackfillTable, conditions: [String], order: String) -> String {
        "SELECT " + table.columns.map { quoteIdentifier($0.name) }.joined(separator: ", ") + " FROM " + table.name.quoted
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")) + " ORDER BY " + order
    }

    /// The cursor after a chunk: its last row's key values.
    public static func cursor(after rows: [[String?]], table: BackfillTable) -> [String]? {
        guard let last = rows.last else { return nil }
        var cursor: [String] = []
        for column in table.keyColumns {
            guard let index = table.columns.firstIndex(where: { $0.name == column }), let value = last[index] else { return nil }
            cursor.append(value)
        }
        return cursor
    }
}
