import Core
/// Which database a connection reached: the cluster's system identifier (chosen by
/// initdb, so it tells clusters apart whatever host name, address or port leads to them)
/// and the database's name within it. Two connection strings name the same database
/// exactly when their identities are equal, however they spell it: a conninfo string or
/// a URI, `localhost` or `127.0.0.1`, with or without `application_name`. A physical
/// standby shares its primary's identifier; it reads the same data, so it counts as the
/// same database.
public struct DatabaseIdentity: Sendable, Hashable {
    public let systemIdentifier: String
    public let database: String

    /// Asks the server. `pg_control_system()` is executable by PUBLIC on PostgreSQL 15,
    /// so the `changerelay` role of sql/005_role.sql may call it without a grant; a host
    /// that revoked it gets an error naming the grant that restores it.
    public init(of connection: PostgresConnection) throws(DatabaseIdentityError) {
        let result: QueryResult
        do {
            result = try connection.execute(
                "SELECT system_identifier::text AS system, current_database() AS database FROM pg_control_system()")
        } catch {
            if error.sqlState == "42501" { throw .controlDataDenied(endpoint: connection.endpoint) }
            throw .postgres(error)
        }
        guard let system = result.value("system"), let database = result.value("database") else {
            throw .postgres(PostgresError(.protocolViolation, "pg_control_system() returned no row",
                                          endpoint: connection.endpoint))
        }
        systemIdentifier = system
        self.database = database
    }

    /// Whether two connection strings reach the same database. Identical strings do
    /// without connecting; others are asked for their identities.
    public static func sameDatabase(_ first: String, _ second: String) throws(DatabaseIdentityError) -> Bool {
        if first == second { return true }
        return try identity(at: first) == identity(at: second)
    }

    private static func identity(at url: String) throws(DatabaseIdentityError) -> DatabaseIdentity {
        let connection: PostgresConnection
        do { connection = try PostgresConnection(url: url) } catch { throw .postgres(error) }
        return try DatabaseIdentity(of: connection)
    }
}

public enum DatabaseIdentityError: Error, CustomStringConvertible {
    /// The role may not call `pg_control_system()`.
    case controlDataDenied(endpoint: String)
    case postgres(PostgresError)

    public var description: String {
        switch self {
        case .controlDataDenied(let endpoint):
            "cannot tell which database \(endpoint) is: the role may not call pg_control_system(); "
                + "as a superuser run GRANT EXECUTE ON FUNCTION pg_control_system() TO changerelay"
        case .postgres(let error):
            "cannot tell which database this is: \(error)"
        }
    }
}
