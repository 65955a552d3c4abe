import Replication

/// Column names of source tables, read from the catalog. wal2json leaves unchanged
/// TOASTed columns out of an update, so telling "unchanged" from "not there" needs
/// the table's own column list.
/// Used only from the thread that reads the stream.
final class TableColumns: @unchecked Sendable {
    private let connection: PostgresConnection
    private var cache: [String: [String]] = [:]

    init(url: String) throws(PostgresError) {
        connection = try PostgresConnection(url: url)
    }

    /// Generated and dropped columns are never sent, so they are not listed.
    func columns(schema: String, table: String) -> [String]? {
        let key = schema + "." + table
        if let known = cache[key] { return known }
        let rows = try? connection.query("""
            SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass
              AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """, [schema, table]).rows
        guard let rows else { return nil }
        let names = rows.compactMap { $0[0] }
        cache[key] = names
        return names
    }

    /// Forget a table after its columns changed (a column we did not know appeared).
    func invalidate(schema: String, table: String) {
        cache[schema + "." + table] = nil
    }
}
