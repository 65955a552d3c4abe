import Core
import Decoding
import Replication

/// What pgoutput says of a change and wal2json does not: whether the publication holds
/// the table, which relation a partition's change is reported under, and the columns.
///
/// Shapes come from the schema history (`sql/010_schema_history.sql`) as of each change,
/// and from today's catalog for a table the history does not know (a database where the
/// event trigger was declined): that is exact as long as no DDL lies between the change
/// and now. What the publication lists, with its `publish` actions, column lists and
/// `publish_via_partition_root`, comes from its history (`sql/028_publication_history.sql`)
/// as of each change, as pgoutput reads it, while 028's event trigger exists. Without it, it
/// is the catalog's, read together with the WAL position it was read at; a change at or past
/// that position whose table is not published reads it again, so a table added since is not
/// missed, but one dropped since, or a changed setting, counts only from a reconnect.
///
/// Used only from the thread that reads the stream. The decoder cannot throw a catalog
/// error through its router, so a failed lookup is kept in `failure` and the caller
/// throws it once the record is decoded (the transaction is then read again).
final class Wal2JsonCatalog: @unchecked Sendable {
    private let connection: PostgresConnection
    private let publication: String
    /// The catalog's membership, for a database without 028's trigger.
    private var membership = PublicationMembership()
    /// 028's event trigger exists: the history holds every change of the membership.
    private let followsPublicationHistory: Bool
    private var readAt: LSN = .zero
    /// Today's shapes, each with the WAL position it was read at.
    private var shapes: [TableName: (shape: TableShape?, readAt: LSN)] = [:]
    private var ancestors: [TableName: [TableName]] = [:]
    private var partitioned: [TableName: Bool] = [:]
    private var failure: (any Error)?
    /// The history as loaded at connect; the decoder extends its own copy from the stream.
    let history: SchemaHistory
    /// The database's encoding, which wal2json writes its records in.
    let serverEncoding: String

    init(url: String, publication: String) throws {
        connection = try PostgresConnection(url: url)
        self.publication = publication
        serverEncoding = try connection.execute("SHOW server_encoding").rows.first?.first.flatMap { $0 } ?? "UTF8"
        history = try Self.loadHistory(connection, publication: publication)
        followsPublicationHistory = try connection.execute("""
            SELECT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_publication_history' AND evtenabled <> 'D')
                   AND to_regclass('changerelay.publication_history') IS NOT NULL AS follows
            """).value("follows") == "t"
        try refreshMembers()
    }

    /// The route of a change of `table` at `lsn`: published when the publication lists the
    /// table or a partitioned table it belonged to then (so a partition detached since is
    /// still followed, and one attached since is not, before its attachment), reported under
    /// the topmost listed one with `publish_via_partition_root`, or else under itself.
    func route(_ table: TableName, at lsn: LSN, xid: UInt32?, history: SchemaHistory, seen: () -> SeenColumns) -> Wal2JsonRoute? {
        do {
            let chain = try [table] + (history.ancestors(of: table, at: lsn) ?? catalogAncestors(of: table))
            let published: PublicationMembership
            if followsPublicationHistory, let recorded = history.membership(of: publication, at: lsn, xid: xid) {
                if recorded.isDropped {
                    // The history's own rows, written by the very DDL that dropped it (and perhaps
                    // made it again), are bookkeeping, not changes a handler waits for.
                    if table == SchemaHistory.table || table == SchemaHistory.publicationTable { return nil }
                    throw PublicationDropped(publication: publication, lsn: lsn)
                }
                published = recorded
            } else {
                if membership.target(chain) == nil, lsn >= readAt { try refreshMembers() }
                published = membership
            }
            guard let target = published.target(chain) else { return nil }
            // Without publish_via_partition_root a partitioned table is reported only through
            // its partitions (its own TRUNCATE comes as theirs), as pgoutput reports it.
            if !published.viaRoot, try isPartitioned(table, at: lsn, history: history) { return nil }
            // Each shape looked up once per change: this runs for every change of the stream.
            let own = try history.shape(of: table, at: lsn) ?? catalogShape(of: table, at: lsn, seen: seen)
            let reported = target == table ? own
                : try history.shape(of: target, at: lsn) ?? catalogShape(of: target, at: lsn, seen: seen)
            return Wal2JsonRoute(table: target, columns: reported?.sentColumns, generated: own?.generated ?? [],
                                 actions: published.actions, columnList: published.columnLists[target])
        } catch {
            failure = failure ?? error
            return nil
        }
    }

    /// The first lookup that failed since the last call, if any.
    func takeFailure() -> (any Error)? {
        defer { failure = nil }
        return failure
    }

    /// The position is taken before the membership query's snapshot, so every change at or
    /// after it is checked against a set at least as new as the change. Partitions attached
    /// or detached since are looked up again too.
    private func refreshMembers() throws(PostgresError) {
        let position = try connection.execute("SELECT pg_current_wal_insert_lsn()::text AS position").value("position")
        var listed = PublicationMembership()
        // Each listed relation, once per column of its column list (once, with no column, without one).
        for row in try connection.query("""
            SELECT n.nspname, c.relname, a.attname
            FROM pg_publication_rel r
            JOIN pg_publication p ON p.oid = r.prpubid
            JOIN pg_class c ON c.oid = r.prrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs)
            WHERE p.pubname = $1
            """, [publication]).rows {
            guard let schema = row[0], let table = row[1] else { continue }
            let relation = TableName(schema: schema, name: table)
            listed.relations.insert(relation)
            if let column = row[2] { listed.columnLists[relation, default: []].insert(column) }
        }
        for row in try connection.query("""
            SELECT n.nspname
            FROM pg_publication_namespace s
            JOIN pg_publication p ON p.oid = s.pnpubid
            JOIN pg_namespace n ON n.oid = s.pnnspid
            WHERE p.pubname = $1
            """, [publication]).rows {
            if let schema = row[0] { listed.schemas.insert(schema) }
        }
        let flags = try connection.query("""
            SELECT puballtables, pubviaroot, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1
            """, [publication])
        listed.allTables = flags.value("puballtables") == "t"
        listed.viaRoot = flags.value("pubviaroot") == "t"
        listed.actions = flags.rows.first.map { row in
            zip(row.dropFirst(2), [PublishedActions.insert, .update, .delete, .truncate]).reduce(into: PublishedActions()) {
                actions, pair in
                if pair.0 == "t" { actions.insert(pair.1) }
            }
        } ?? .all
        membership = listed
        ancestors = [:]
        readAt = position.flatMap { LSN($0) } ?? .zero
    }

    /// Today's partition ancestors, parent first; none for a table that no longer exists.
    /// Whether the table is partitioned: from the history, or else the catalog (a table stays
    /// partitioned or not for as long as it exists).
    private func isPartitioned(_ table: TableName, at lsn: LSN, history: SchemaHistory) throws(PostgresError) -> Bool {
        if let shape = history.shape(of: table, at: lsn) { return !shape.partitions.isEmpty }
        if let known = partitioned[table] { return known }
        let found = try connection.query("""
            SELECT relkind = 'p' AS partitioned FROM pg_class WHERE oid = to_regclass(format('%I.%I', $1::text, $2::text))
            """, [table.schema, table.name]).value("partitioned") == "t"
        partitioned[table] = found
        return found
    }

    private func catalogAncestors(of table: TableName) throws(PostgresError) -> [TableName] {
        if let known = ancestors[table] { return known }
        let rows = try connection.query("""
            SELECT n.nspname, c.relname
            FROM pg_partition_ancestors(to_regclass(format('%I.%I', $1::text, $2::text))) WITH ORDINALITY AS a(relid, depth)
            JOIN pg_class c ON c.oid = a.relid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE a.depth > 1
            ORDER BY a.depth
            """, [table.schema, table.name]).rows
        let found = rows.compactMap { row in row[0].flatMap { schema in row[1].map { TableName(schema: schema, name: $0) } } }
        ancestors[table] = found
        return found
    }

    /// Today's columns; nil for a table that no longer exists. Without the schema history
    /// nothing says when a table's columns change, so a kept shape is read again when a
    /// record contradicts it: a column it does not know (added or renamed since), an INSERT
    /// without one it knows (dropped since), or an UPDATE without one, after the position the
    /// shape was read at (a dropped column, or an unchanged TOAST value wal2json leaves out:
    /// only the catalog tells them apart).
    private func catalogShape(of table: TableName, at lsn: LSN, seen: () -> SeenColumns) throws(PostgresError) -> TableShape? {
        if let known = shapes[table] {
            guard let shape = known.shape else { return nil }
            let record = seen()
            let unknown = record.names.contains { !shape.columns.contains($0) }
            let missing = record.extent != .identity && shape.sentColumns.contains { !record.names.contains($0) }
            if !unknown && !(missing && (record.extent == .whole || lsn > known.readAt)) { return shape }
        }
        let result = try connection.query("""
            SELECT pg_current_wal_insert_lsn()::text, a.attname, a.attgenerated <> ''
            FROM (SELECT 1) AS one
            LEFT JOIN pg_attribute a
              ON a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [table.schema, table.name]).rows
        let rows = result.filter { $0[1] != nil }
        let shape: TableShape? = rows.isEmpty ? nil : TableShape(
            columns: rows.compactMap { $0[1] },
            generated: Set(rows.compactMap { $0[2] == "t" ? $0[1] : nil }))
        shapes[table] = (shape, result.first?[0].flatMap { LSN($0) } ?? .zero)
        return shape
    }

    /// Every recorded shape, and every membership of `publication` (the others' would only
    /// take memory: a publication of thousands of tables grown one table at a time has as many
    /// entries); none of those whose file (010, 028) is not installed.
    private static func loadHistory(_ connection: PostgresConnection, publication: String) throws -> SchemaHistory {
        var history = SchemaHistory()
        let installed = try connection.execute("""
            SELECT to_regclass('changerelay.schema_history') IS NOT NULL AS shapes,
                   to_regclass('changerelay.publication_history') IS NOT NULL AS publications
            """)
        if installed.value("shapes") == "t" {
            for row in try connection.execute("""
                SELECT id::text, position::text, schema_name, table_name, shape::text
                FROM changerelay.schema_history ORDER BY id
                """).rows {
                try history.record(id: row[0], position: row[1], schema: row[2], table: row[3], shape: Array((row[4] ?? "").utf8))
            }
        }
        if installed.value("publications") == "t" {
            for row in try connection.query("""
                SELECT id::text, position::text, publication, membership::text, xid::text, settled_at::text
                FROM changerelay.publication_history WHERE publication = $1 ORDER BY id
                """, [publication]).rows {
                try history.recordPublication(id: row[0], position: row[1], publication: row[2],
                                              membership: Array((row[3] ?? "").utf8), xid: row[4], settledAt: row[5],
                                              committed: true)
            }
        }
        return history
    }
}

/// The configured publication did not exist when a change was made: pgoutput stops there
/// ("publication does not exist"), and so does the wal2json path, rather than skip every
/// change as unpublished and acknowledge them.
struct PublicationDropped: Error, CustomStringConvertible {
    var publication: String
    var lsn: LSN

    var description: String {
        "publication \(publication) had been dropped when the change at \(lsn) was made "
            + "(changerelay.publication_history), so no change made until it was created again can be decided, "
            + "as pgoutput cannot either; creating it now does not change that. Stream with a publication that "
            + "existed then (source.publication), or move the slot past the gap with "
            + "pg_replication_slot_advance(<slot>, <an LSN after it was created again>): what was written in between "
            + "was published by no publication of this name"
    }
}
