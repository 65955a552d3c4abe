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
            + "on every start until the table or the row is fixed" + (ownObjectMissing ? Self.setupHint : "")
    }

    static let setupHint = "; the missing object is one of ChangeRelay's own (dropped by hand, or with CASCADE "
        + "along with a table it depends on): changerelay setup creates it again"

    /// Whether the server named a relation or function of the `changerelay` schema that does
    /// not exist: an operator's `DROP … CASCADE` on an application table takes the sync's
    /// views with it, and the server's message alone does not say that `setup` mends it.
    var ownObjectMissing: Bool {
        ["42P01", "42883"].contains(underlying.sqlState ?? "") && underlying.message.contains("changerelay.")
    }

    /// `error` as a rejection of the batch when the server refused what the batch holds: a
    /// value (class 22), a constraint (23), a statement on a table changed under it (42) or a
    /// handler's function raising (P0). Anything else (a lost connection, a deadlock, a
    /// timeout, a full disk) stays what it is: another try may well pass.
    static func wrapping(_ error: any Error, after: LSN, through: LSN?, writing: String) -> any Error {
        guard let error = error as? PostgresError, let state = error.sqlState,
              ["22", "23", "42", "P0"].contains(state.prefix(2)), let through else {
            return error
        }
        return BatchRejected(after: after, through: through, writing: writing, underlying: error)
    }
}
