import Core
import Replication

/// The state database refused a batch: a row a handler planned does not fit the table it
/// goes to (a column's type or a constraint the application changed), or a handler's
/// statement failed on it. Planning the same transactions again gives the same rows, so
/// every restart stops here until the table or the row is fixed: the error says which
/// transactions and which write, beside the server's own message (whose context names the
/// table, column and COPY line).
public struct BatchRejected: Error, CustomStringConvertible {
    /// The checkpoint the batch started after.
    public var after: LSN
    /// The end of its last transaction planned so far.
    public var through: LSN
    /// What was being written: a COPY's table or a handler's staged statements.
    public var writing: String
    public var underlying: PostgresError

    public var description: String {
        "the state database refused the batch of the transactions after \(after) through the one ending at \(through) "
            + "while \(writing): \(underlying). Planning them again gives the same rows, so the service stops here "
            + "on every start until the table or the row is fixed"
    }

    /// `error` as a rejection of the batch when the server refused a statement; a lost
    /// connection (which a reconnect retries) stays what it is.
    static func wrapping(_ error: any Error, after: LSN, through: LSN?, writing: String) -> any Error {
        guard let error = error as? PostgresError, error.sqlState != nil, !error.isRetryable, let through else {
            return error
        }
        return BatchRejected(after: after, through: through, writing: writing, underlying: error)
    }
}
