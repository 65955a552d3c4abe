import Core
import Decoding

/// The SELECT of one chunk: the next `limit` rows past the cursor in primary-key order,
/// narrowed by the operator's WHERE and the publication's row filter. Keyset pagination, so
/// every chunk is an index range scan however far the backfill has come.
public struct ChunkQuery: Sendable, Hashable {
    public var sql: String
    public var parameters: [String?]

    public init(table: BackfillTable, where condition: String?, after cursor: [String]?, limit: Int) {
        let quotedTable = table.name.quoted
        let keys = table.keyColumns.map(quoteIdentifier)
        var conditions: [String] = []
        var parameters: [String?] = []
        if let cursor, cursor.count == table.keyColumns.count {
            let placeholders = table.keyColumns.enumerated().map { index, column in
                let type = table.columns.first { $0.name == column }?.typeName ?? "text"
                return "$\(index + 1)::\(type)"
            }
            conditions.append("(" + keys.joined(separator: ", ") + ") > (" + placeholders.joined(separator: ", ") + ")")
            parameters = cursor
        }
        if let condition { conditions.append("(" + condition + ")") }
        if let filter = table.rowFilter { conditions.append("(" + filter + ")") }
        sql = "SELECT " + table.columns.map { quoteIdentifier($0.name) }.joined(separator: ", ") + " FROM " + quotedTable
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY " + keys.joined(separator: ", ") + " LIMIT \(limit)"
        self.parameters = parameters
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
