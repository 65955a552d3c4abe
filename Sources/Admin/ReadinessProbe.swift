import Replication
import Synchronization

/// `/readyz`: whether the state database answers a `SELECT 1`, remembered for a second so
/// that an orchestrator probing often costs one query a second at most.
final class ReadinessProbe: Sendable {
    private let state: BlockingDatabase
    private let maxAge: Duration
    private let last = Mutex<(at: ContinuousClock.Instant, problem: String?)?>(nil)

    init(state: BlockingDatabase, maxAge: Duration = .seconds(1)) {
        self.state = state
        self.maxAge = maxAge
    }

    /// nil when the state database answered; otherwise why it did not.
    func problem() async -> String? {
        let now = ContinuousClock.now
        if let cached = last.withLock({ $0 }), now - cached.at < maxAge { return cached.problem }
        let problem: String?
        do {
            _ = try await state.run { db throws(PostgresError) in try db.execute("SELECT 1") }
            problem = nil
        } catch {
            problem = "the state database cannot be reached: \(error)"
        }
        last.withLock { $0 = (now, problem) }
        return problem
    }
}
