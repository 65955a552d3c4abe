import Decoding
import Replication

/// Which tables a publication holds. pgoutput filters by publication on the server,
/// with the catalog as of each change; wal2json knows no publications, so its changes
/// are filtered here. The set is read together with the WAL position it was read at:
/// a transaction that committed after that position may touch a table added since, so
/// a table missing from the set is looked up again before its change is dropped.
final class PublicationMembers {
    private let connection: PostgresConnection
    private let publication: String
    private var members: Set<TableName> = []
    private var readAt: LSN = .zero

    init(url: String, publication: String) throws(PostgresError) {
        connection = try PostgresConnection(url: url)
        self.publication = publication
        try refresh()
    }

    /// The position is taken before the membership query's snapshot, so every change
    /// committed at or after it is checked against a set at least as new as the change.
    private func refresh() throws(PostgresError) {
        let position = try connection.execute("SELECT pg_current_wal_insert_lsn()::text AS position").value("position")
        let result = try connection.query(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1", [publication])
        members = Set(result.rows.compactMap { row in
            guard let schema = row[0], let table = row[1] else { return nil }
            return TableName(schema: schema, name: table)
        })
        readAt = position.flatMap { LSN($0) } ?? .zero
    }

    /// The transaction with only the changes of published tables.
    func filter(_ transaction: Transaction) throws(PostgresError) -> Transaction {
        let tables = transaction.changes.tables
        if transaction.commitLSN >= readAt, !tables.isSubset(of: members) {
            try refresh()
        }
        var filtered = transaction
        filtered.changes.exclude { !members.contains($0) }
        return filtered
    }
}
