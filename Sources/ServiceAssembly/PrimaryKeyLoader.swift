import Core
import Handlers
import Replication

/// Reads the primary keys of the tables handlers order their deliveries by, from the source's
/// catalog, once at start, whatever their replica identity now: `PrimaryKeys` uses one only for
/// a change that carries the whole row as its identity (FULL, perhaps set since). A table
/// that does not exist yet or has no primary key is left out: its records are told apart by
/// their replica-identity columns. The columns of a USING INDEX identity are read too:
/// wal2json marks the primary key's columns as keys, not the index's, and a DELETE carries
/// only the index's.
enum PrimaryKeyLoader {
    /// `tables` as `schema.table`, or `table` for one in `public`.
    static func load(tables: [String], from source: PostgresConnection) throws(PostgresError) -> PrimaryKeys {
        let qualified = Set(tables.map { $0.contains(".") ? $0 : "public." + $0 })
        let rows = try source.query("""
            SELECT n.nspname || '.' || c.relname AS qualified, a.attname, i.indisprimary AS primary
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE (i.indisprimary OR (i.indisreplident AND c.relreplident = 'i'))
              AND n.nspname || '.' || c.relname = ANY ($1::text[])
            ORDER BY 1, i.indisprimary, k.position
            """, [postgresArrayLiteral(qualified.sorted())]).rows
        var columns: [String: [String]] = [:]
        var identities: [String: [String]] = [:]
        for row in rows {
            guard let table = row[0], let column = row[1] else { continue }
            if row[2] == "t" {
                columns[table, default: []].append(column)
            } else {
                identities[table, default: []].append(column)
            }
        }
        return PrimaryKeys(columns, identities: identities)
    }
}
