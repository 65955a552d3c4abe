import Core
/// A failure talking to Postgres. Carries where (host, port, database — never the
/// password) and, for server errors, the SQLSTATE, so the log says what to fix.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case connectionFailed
        case queryFailed(sqlState: String?)
        case connectionLost
        case protocolViolation
    }

    public var kind: Kind
    public var message: String
    /// `host:port/database`, never credentials.
    public var endpoint: String
    /// The statement that failed, when there is one.
    public var statement: String?

    public init(_ kind: Kind, _ message: String, endpoint: String, statement: String? = nil) {
        self.kind = kind
        self.message = message
        self.endpoint = endpoint
        self.statement = statement
    }

    public var sqlState: String? {
        if case .queryFailed(let state) = kind { return state }
        return nil
    }

    public var description: String {
        var text: String
        switch kind {
        case .connectionFailed: text = "cannot connect to Postgres at \(endpoint): \(message)"
        case .queryFailed(let state):
            text = "Postgres at \(endpoint) rejected the statement"
            if let state { text += " (SQLSTATE \(state))" }
            text += ": \(message)"
        case .connectionLost: text = "connection to Postgres at \(endpoint) lost: \(message)"
        case .protocolViolation: text = "unexpected reply from Postgres at \(endpoint): \(message)"
        }
        if let statement { text += " [statement: \(statement.prefix(200))]" }
        return text
    }
}
