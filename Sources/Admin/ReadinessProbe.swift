import Logging
import Replication
import Synchronization

/// `/readyz`: whether the state database answers a `SELECT 1`, remembered for a second so
/// that an orchestrator probing often costs one query a second at most.
///
/// `/readyz` is open (no token), so its reason says what kind of failure it is and never
/// the database's host, port, name or role, which libpq's messages carry. The whole error
/// goes to the log instead, once each time it changes.
final class ReadinessProbe: Sendable {
    private let state: BlockingDatabase
    private let maxAge: Duration
    private let logger: Logger
    private let last = Mutex<(at: ContinuousClock.Instant, problem: String?, error: String?)?>(nil)

    /// How long a probe waits for the `SELECT 1`: an orchestrator's own probe timeout is
    /// often a few seconds, and an answer after it is no better than none.
    static let patience: Duration = .seconds(2)

    init(state: BlockingDatabase, logger: Logger, maxAge: Duration = .seconds(1)) {
        self.state = state
        self.logger = logger
        self.maxAge = maxAge
    }

    /// nil when the state database answered; otherwise why it did not.
    func problem() async -> String? {
        let now = ContinuousClock.now
        if let cached = last.withLock({ $0 }), now - cached.at < maxAge { return cached.problem }
        var problem: String?
        var error: String?
        do {
            _ = try await state.run(within: Self.patience) { db throws(PostgresError) in try db.execute("SELECT 1") }
        } catch let failure {
            let kind = switch failure {
            case let failure as PostgresError: Self.kind(of: failure)
            case let failure as BlockingDatabase.NoAnswer: failure.description
            default: "\(type(of: failure))"
            }
            problem = "the state database cannot be reached: " + kind
            error = "\(failure)"
        }
        let before = last.withLock { last in
            defer { last = (now, problem, error) }
            return last?.error
        }
        if let error, error != before {
            logger.warning("not ready: the state database cannot be reached", metadata: ["error": "\(error)"])
        } else if error == nil, before != nil {
            logger.notice("ready again: the state database answers")
        }
        return problem
    }

    static func kind(of error: PostgresError) -> String {
        switch error.kind {
        case .connectionFailed: "connection refused or failed"
        case .connectionLost: "connection lost"
        case .protocolViolation: "unexpected reply"
        case .queryFailed(let state): state.map { "query failed (SQLSTATE \($0))" } ?? "query failed"
        }
    }
}
