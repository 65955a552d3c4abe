import CLibPQ

extension PostgresConnection {
    /// Runs `sql` as one simple-protocol query, in autocommit: a single statement there
    /// runs outside any transaction block, so `VACUUM` and `CREATE INDEX CONCURRENTLY`
    /// work (several statements in one query form one implicit transaction, and those
    /// refuse it). Returns the count its command tag carries (`DELETE 12`, `SELECT 3`),
    /// nil for a tag without one (`VACUUM`).
    public func executeCountingRows(_ sql: String) throws(PostgresError) -> Int64? {
        guard PQsendQuery(handle, sql) == 1 else { throw failure(statement: sql) }
        var firstError: PostgresError?
        var count: Int64?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                count = PQcmdTuples(result).flatMap { Int64(String(cString: $0)) }
            default:
                if firstError == nil { firstError = resultError(result, statement: sql) }
            }
        }
        if let firstError { throw firstError }
        return count
    }
}
