import Backfill
import Core
import Decoding
import Replication

/// Why a table cannot be backfilled, said so the operator knows what to change.
public enum BackfillRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownTable(String)
    case notPublished(table: String, publication: String)
    /// A partitioned table whose publication sends its partitions' changes under their own names.
    case partitionsPublished(table: String, publication: String, partitions: [String])
    /// A partition whose changes the publication sends under a partitioned table above it.
    case partitionOfPublishedRoot(table: String, publication: String, root: String)
    case noPrimaryKey(table: String)
    case keyNotPublished(table: String, column: String)
    case generatedKey(table: String, column: String)
    case identityWithoutKey(table: String, identity: String)
    case badWhere(table: String, reason: String)
    case badChunkSize(Int)

    public var description: String {
        switch self {
        case .unknownTable(let name):
            "no table \(name) on the source"
        case .notPublished(let table, let publication):
            "\(table) is not in publication \(publication): the stream sends none of its changes, so a backfill "
                + "could not keep up with them (ALTER PUBLICATION \(publication) ADD TABLE \(table))"
        case .partitionsPublished(let table, let publication, let partitions):
            "\(table) is partitioned, and publication \(publication) sends its changes under its partitions' names "
                + "(publish_via_partition_root is off): backfill each partition ("
                + partitions.prefix(5).joined(separator: ", ") + (partitions.count > 5 ? ", …" : "") + ")"
        case .partitionOfPublishedRoot(let table, let publication, let root):
            "\(table) is a partition of \(root), under whose name publication \(publication) sends its changes "
                + "(publish_via_partition_root): backfill \(root), with a --where that keeps this partition's rows"
        case .noPrimaryKey(let table):
            "\(table) has no primary key: a backfill reads in primary-key order and names each row by its key"
        case .keyNotPublished(let table, let column):
            "the publication's column list for \(table) leaves out key column \(column)"
        case .generatedKey(let table, let column):
            "\(table)'s primary key column \(column) is generated, and the stream does not carry generated columns: "
                + "a backfilled row could not be matched to its changes"
        case .identityWithoutKey(let table, let identity):
            "\(table)'s replica identity (\(identity)) does not carry its primary key, so a delete during the backfill "
                + "could not be matched to its row: ALTER TABLE \(table) REPLICA IDENTITY DEFAULT (or FULL)"
        case .badWhere(let table, let reason):
            "--where for \(table) \(reason)"
        case .badChunkSize(let size):
            "--chunk-size must be between 1 and 1000000, not \(size)"
        }
    }
}

/// Reads what a backfill needs to know of a table from the source's catalog, and refuses a
/// table a backfill cannot be exact for. `backfill` asks it before recording a request; the
/// runner asks it again before each chunk, so a column added meanwhile is read too.
public struct BackfillCatalog {
    public let connection: PostgresConnection
    public let publication: String

    public init(connection: PostgresConnection, publication: String) {
        self.connection = connection
        self.publication = publication
    }

    /// The table `name` (`table` or `schema.table`, as `to_regclass` reads it) as a backfill reads it.
    public func table(named name: String) throws -> BackfillTable {
        let found: QueryResult
        do {
            found = try connection.query("""
                SELECT n.nspname, c.relname, c.relreplident, c.oid::bigint AS oid,
                       format('%I.%I', n.nspname, c.relname) AS display
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')
                """, [name])
        } catch {
            // A name to_regclass cannot even parse (`a.b.c.d`, an open quote) names no table;
            // nor does one in another database (`db.schema.table`: 0A000, not supported).
            guard let state = error.sqlState, ["42", "22", "0A"].contains(where: state.hasPrefix) else { throw error }
            throw BackfillRefusal.unknownTable(name)
        }
        // `display` is quoted where the name needs it (case, spaces, a keyword): refusals give SQL to paste.
        guard let schema = found.value("nspname"), let relation = found.value("relname"),
              let oid = found.value("oid"), let display = found.value("display") else { throw BackfillRefusal.unknownTable(name) }
        do {
            // One row per published column: a name may hold any character, a comma too, so the
            // names are not joined into one text to be split again.
            let published = try connection.query("""
                SELECT c.name, p.rowfilter FROM pg_publication_tables p
                LEFT JOIN LATERAL unnest(p.attnames) AS c (name) ON true
                WHERE p.pubname = $1 AND p.schemaname = $2 AND p.tablename = $3
                """, [publication, schema, relation])
            guard !published.rows.isEmpty else {
                let partitions = try connection.query("""
                    SELECT format('%I.%I', p.schemaname, p.tablename) FROM pg_partition_tree($1::oid) t
                    JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_publication_tables p ON p.schemaname = n.nspname AND p.tablename = c.relname
                    WHERE p.pubname = $2 AND t.relid <> $1::oid ORDER BY 1
                    """, [oid, publication]).rows.compactMap { $0[0] }
                if !partitions.isEmpty {
                    throw BackfillRefusal.partitionsPublished(table: display, publication: publication, partitions: partitions)
                }
                // Adding the partition to the publication changes nothing then: say what does.
                if let root = try connection.query("""
                    SELECT format('%I.%I', p.schemaname, p.tablename) AS root
                    FROM pg_partition_ancestors($1::oid) WITH ORDINALITY AS a(relid, depth)
                    JOIN pg_class c ON c.oid = a.relid JOIN pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_publication_tables p ON p.schemaname = n.nspname AND p.tablename = c.relname
                    WHERE p.pubname = $2 AND a.relid <> $1::oid ORDER BY a.depth DESC LIMIT 1
                    """, [oid, publication]).value("root") {
                    throw BackfillRefusal.partitionOfPublishedRoot(table: display, publication: publication, root: root)
                }
                throw BackfillRefusal.notPublished(table: display, publication: publication)
            }
            let publishedColumns = Set(published.rows.compactMap { $0[0] })
            let key = try connection.query("""
                SELECT a.attname FROM pg_index i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.position
                """, [oid]).rows.compactMap { $0[0] }
            guard !key.isEmpty else { throw BackfillRefusal.noPrimaryKey(table: display) }
            if let missing = key.first(where: { !publishedColumns.contains($0) }) {
                throw BackfillRefusal.keyNotPublished(table: display, column: missing)
            }
            let identity: Set<String>?
            switch found.value("relreplident") {
            case "f": identity = nil
            case "d": identity = Set(key)
            case "i":
                identity = Set(try connection.query("""
                    SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                    WHERE i.indrelid = $1::oid AND i.indisreplident
                    """, [oid]).rows.compactMap { $0[0] })
            default:
                throw BackfillRefusal.identityWithoutKey(table: display, identity: "NOTHING")
            }
            if let identity, !Set(key).isSubset(of: identity) {
                throw BackfillRefusal.identityWithoutKey(table: display, identity: "USING INDEX " + identity.sorted().joined(separator: ", "))
            }
            // A domain's rows render as its base type's, as the stream's do (`BaseTypes`).
            let columns = try connection.query("""
                SELECT a.attname, \(DomainLookup.baseType(of: "a.atttypid"))::bigint AS type, a.atttypmod, format_type(a.atttypid, a.atttypmod) AS type_name
                FROM pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                ORDER BY a.attnum
                """, [oid]).rows.compactMap { row -> BackfillTable.Column? in
                    guard let name = row[0], publishedColumns.contains(name), let type = row[1].flatMap(UInt32.init),
                          let modifier = row[2].flatMap(Int32.init), let typeName = row[3] else { return nil }
                    return .init(name: name, typeOID: type, typeModifier: modifier, typeName: typeName,
                                 isIdentity: identity?.contains(name) ?? true)
                }
            if let generated = key.first(where: { column in !columns.contains { $0.name == column } }) {
                throw BackfillRefusal.generatedKey(table: display, column: generated)
            }
            return BackfillTable(name: TableName(schema: schema, name: relation), columns: columns, keyColumns: key,
                                 rowFilter: published.value("rowfilter"))
        } catch let refusal as BackfillRefusal {
            // Read with several statements: a table dropped meanwhile looked like one without
            // a key or a publication, and the backfill failed for a reason that was not so.
            let exists = try connection.query("SELECT EXISTS (SELECT FROM pg_class WHERE oid = $1::oid) AS found", [oid])
            guard exists.value("found") == "t" else { throw BackfillRefusal.unknownTable(name) }
            throw refusal
        }
    }

    /// Checks an operator's WHERE (one expression, accepted by the server for this table) and
    /// returns the planner's estimate of the rows the backfill will read.
    public func estimate(_ table: BackfillTable, where condition: String?) throws -> Int64? {
        let display = table.name.description
        if let condition {
            do { try WhereClause.check(condition) } catch { throw BackfillRefusal.badWhere(table: display, reason: error.description) }
        }
        let query = ChunkQuery(table: table, where: condition, after: nil, through: nil, limit: Int(Int32.max))
        let plan: QueryResult
        do {
            plan = try connection.query("EXPLAIN (FORMAT JSON) " + query.sql, query.parameters)
        } catch {
            guard let state = error.sqlState, !state.hasPrefix("08") else { throw error }
            throw BackfillRefusal.badWhere(table: display, reason: "is refused by the server: \(error.message)")
        }
        // The outermost plan is the LIMIT (its rows are the limit); the largest estimate below it is the scan's.
        let text = plan.rows.first?.first.flatMap { $0 } ?? ""
        return text.split(separator: "\"Plan Rows\": ").dropFirst().compactMap { Int64($0.prefix { $0.isNumber }) }.max()
    }
}
