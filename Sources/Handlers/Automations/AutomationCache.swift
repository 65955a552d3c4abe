import Core
import PlannedEffects
import Synchronization

/// What the automation handler knows besides the change in hand: the workflows, and
/// which executions completed recently (for the rate limit). It is loaded once at start
/// and then kept current by the stream itself: `automation_workflows` and the completed
/// `automation_execution_logs` rows are published, so a workflow change or a completion
/// is seen by exactly the job changes that follow it in commit order.
///
/// Planning is sequential; the lock only makes the shared reference safe to hold.
public final class AutomationCache: Sendable {
    /// One execution's identity for the rate limit.
    public struct CompletionKey: Sendable, Hashable {
        public var jobID: String
        public var workflowID: String
        public var status: String

        public init(jobID: String, workflowID: String, status: String) {
            self.jobID = jobID
            self.workflowID = workflowID
            self.status = status
        }
    }

    private struct State {
        var workflows: [String: Workflow] = [:]
        var byUser: [String: Set<String>] = [:]
        /// When each key last completed.
        var completions: [CompletionKey: PostgresTimestamp] = [:]
        var pruneAt = 4096
        /// What the uncommitted batch changed, newest last, to undo if it is read again.
        var undo: [Undo] = []

        mutating func setWorkflow(_ id: String, to workflow: Workflow?) {
            if let previous = workflows[id], let user = previous.userID { byUser[user]?.remove(id) }
            workflows[id] = workflow
            if let workflow, let user = workflow.userID { byUser[user, default: []].insert(id) }
        }
    }

    private enum Undo {
        case workflow(id: String, previous: Workflow?)
        case completion(CompletionKey, previous: PostgresTimestamp?)
        case everyWorkflow([String: Workflow])
    }

    private let state = Mutex(State())
    private let window: Duration

    public init(rateLimitWindow: Duration) { window = rateLimitWindow }

    /// Adds or replaces a workflow (a changed `user_id` moves it).
    public func upsert(_ workflow: Workflow) {
        state.withLock { state in
            state.undo.append(.workflow(id: workflow.id, previous: state.workflows[workflow.id]))
            state.setWorkflow(workflow.id, to: workflow)
        }
    }

    public func removeWorkflow(id: String) {
        state.withLock { state in
            state.undo.append(.workflow(id: id, previous: state.workflows[id]))
            state.setWorkflow(id, to: nil)
        }
    }

    public func workflow(id: String) -> Workflow? {
        state.withLock { $0.workflows[id] }
    }

    /// Every known workflow, in id order.
    public func allWorkflows() -> [Workflow] {
        state.withLock { state in state.workflows.keys.sorted().compactMap { state.workflows[$0] } }
    }

    /// `TRUNCATE automation_workflows`.
    public func removeEveryWorkflow() {
        state.withLock { state in
            state.undo.append(.everyWorkflow(state.workflows))
            state.workflows = [:]
            state.byUser = [:]
        }
    }

    /// Keeps what the batch taught (it was committed), or forgets it (it is read again).
    public func batchEnded(committed: Bool) {
        state.withLock { state in
            defer { state.undo.removeAll() }
            guard !committed else { return }
            for entry in state.undo.reversed() {
                switch entry {
                case .workflow(let id, let previous):
                    state.setWorkflow(id, to: previous)
                case .completion(let key, let previous):
                    state.completions[key] = previous
                case .everyWorkflow(let workflows):
                    state.workflows = [:]
                    state.byUser = [:]
                    for (id, workflow) in workflows { state.setWorkflow(id, to: workflow) }
                }
            }
        }
    }

    /// The user's workflows, in id order so planning is the same on every replay.
    public func workflows(ofUser user: String) -> [Workflow] {
        state.withLock { state in
            (state.byUser[user] ?? []).sorted().compactMap { state.workflows[$0] }
        }
    }

    public func recordCompletion(_ key: CompletionKey, at time: PostgresTimestamp) {
        state.withLock { state in
            if let known = state.completions[key], known >= time { return }
            state.undo.append(.completion(key, previous: state.completions[key]))
            state.completions[key] = time
            // Completions older than the window can no longer limit anything.
            if state.completions.count >= state.pruneAt {
                let horizon = time.microseconds - window.wholeMicroseconds
                state.completions = state.completions.filter { $0.value.microseconds > horizon }
                state.pruneAt = max(4096, state.completions.count * 2)
            }
        }
    }

    /// When the same job, workflow and status last completed, if that is within the
    /// window before `time` (the job change's commit time). A completion committed after
    /// the job change (possible when a replay meets a cache loaded later) does not count.
    public func recentCompletion(_ key: CompletionKey, before time: PostgresTimestamp) -> PostgresTimestamp? {
        guard window > .zero else { return nil }
        return state.withLock { state in
            guard let completed = state.completions[key], completed <= time,
                  time.microseconds - completed.microseconds < window.wholeMicroseconds else { return nil }
            return completed
        }
    }
}
