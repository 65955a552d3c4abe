import CLibPQ

extension PostgresConnection {
    /// Runs `sql` as one simple-protocol query, in autocommit: a single statement there
    /// runs outside any transaction block, so `VACUUM` and `CREATE INDEX CONCURRENTLY`
    /// work (several statements in one query form one implicit transaction, and those
    /// refuse it). Returns the count its command tag carries (`DELETE 12`, `SELECT 3`),
    /// nil for a tag without one (`VACUUM`).
    ///
    /// A `COPY … TO STDOUT` is read to its end and its rows dropped; a `COPY … FROM STDIN`
    /// is ended at once, which fails it. Left alone, either kept the connection in its
    /// copy state, and `PQgetResult` returned the same copy result for ever. Rows a query
    /// returns come one at a time and are dropped (single-row mode): a job's `SELECT` of
    /// millions of rows held them all in the service's memory, 400 MB for 3 million.
    public func executeCountingRows(_ sql: String) throws(PostgresError) -> Int64? {
        guard PQsendQuery(handle, sql) == 1 else { throw failure(statement: sql) }
        PQsetSingleRowMode(handle)
        var firstError: PostgresError?
        var count: Int64?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_SINGLE_TUPLE:
                continue
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                count = PQcmdTuples(result).flatMap { Int64(String(cString: $0)) }
            case PGRES_COPY_OUT:
                var row: UnsafeMutablePointer<CChar>?
                while PQgetCopyData(handle, &row, 0) > 0 {
                    PQfreemem(row)
                    row = nil
                }
            case PGRES_COPY_IN:
                guard PQputCopyEnd(handle, "COPY FROM STDIN has no input here") == 1 else { throw failure(statement: sql) }
            default:
                if firstError == nil { firstError = resultError(result, statement: sql) }
            }
        }
        if let firstError { throw firstError }
        return count
    }
}
