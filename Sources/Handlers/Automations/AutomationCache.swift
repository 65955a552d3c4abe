import Core
import PlannedEffects
import Synchronization

/// What the automation handler knows besides the change in hand: the workflows, and
/// which executions completed recently (for the rate limit). It is loaded once at start
/// and then kept current by the stream itself: `automation_workflows` and the completed
/// `automation_execution_logs` rows are published, so a workflow change or a completion
/// is seen by exactly the job changes that follow it in commit order.
///
/// The completions are bounded when a `Bound` is given: past `capacity` entries, the oldest
/// half leaves memory at the end of a committed batch, and only a Bloom filter of their keys
/// stays (`EvictedKeys`, 20 bits a key). A key the filter has never seen was not evicted, so
/// the answer in memory is exact; a key it may have seen is asked of the database, where the
/// dispatcher recorded the completion, as a restart would load it; a failed look-up stops
/// planning with a `HandlerError`, which loses nothing. Without a bound, every completion
/// within the window stays in memory, some 250 B each.
///
/// Planning is sequential; the lock only makes the shared reference safe to hold.
public final class AutomationCache: Sendable {
    /// One execution's identity for the rate limit.
    /// Equal when every part has the same bytes, as the database's look-up compares them.
    public struct CompletionKey: Sendable, Hashable {
        public var jobID: String
        public var workflowID: String
        public var status: String

        public init(jobID: String, workflowID: String, status: String) {
            self.jobID = jobID
            self.workflowID = workflowID
            self.status = status
        }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.jobID.utf8.elementsEqual(rhs.jobID.utf8) && lhs.workflowID.utf8.elementsEqual(rhs.workflowID.utf8)
                && lhs.status.utf8.elementsEqual(rhs.status.utf8)
        }

        public func hash(into hasher: inout Hasher) {
            func combine(_ part: String) {
                var part = part
                part.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
                hasher.combine(part.utf8.count)
            }
            combine(jobID)
            combine(workflowID)
            combine(status)
        }
    }

    /// How many completions stay in memory, and where an evicted one is found again.
    public struct Bound: Sendable {
        public var capacity: Int
        /// The latest completion of the key at or before the time and within the window,
        /// from the database. Called without the cache's lock held.
        public var lookUp: @Sendable (CompletionKey, _ before: PostgresTimestamp) throws -> PostgresTimestamp?

        public init(capacity: Int, lookUp: @escaping @Sendable (CompletionKey, _ before: PostgresTimestamp) throws -> PostgresTimestamp?) {
            precondition(capacity >= 2, "a completion cache holds at least 2 entries")
            self.capacity = capacity
            self.lookUp = lookUp
        }
    }

    private struct State {
        var workflows: [String: Workflow] = [:]
        var byUser: [String: Set<String>] = [:]
        /// When each key last completed.
        var completions: [CompletionKey: PostgresTimestamp] = [:]
        var pruneAt = 4096
        /// The newest completion recorded: the window's horizon follows it.
        var latest: PostgresTimestamp?
        /// The keys of evicted completions, oldest first.
        var evicted: [EvictedKeys] = []
        /// What the uncommitted batch changed, newest last, to undo if it is read again.
        var undo: [Undo] = []
        /// Completions before this were not loaded at start: a look-up whose window reaches
        /// back past it (a change replayed from before the restart) asks the database.
        var loadedSince: PostgresTimestamp?
        /// The completion log has no baseline yet: the first change planned brings one.
        var needsBaseline = false

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
        case baselinePlanned
    }

    private let state = Mutex(State())
    private let window: Duration
    private let bound: Bound?

    public init(rateLimitWindow: Duration, bound: Bound? = nil) {
        window = rateLimitWindow
        self.bound = bound
    }

    /// The loader read the completions after `time` only (the window back from the last
    /// checkpoint's write); a change read again from before that may look further back.
    public func completionsLoaded(since time: PostgresTimestamp) {
        state.withLock { $0.loadedSince = time }
    }

    /// The completion log has no baseline row: it is written with the first change the
    /// handler plans (`planBaseline`), so only an instance that streams marks where the log
    /// begins. One that loaded and never streamed (a standby, a dispatcher) would have marked a
    /// time after which completions were neither logged nor read from the table.
    public func completionLogNeedsBaseline() {
        state.withLock { $0.needsBaseline = true }
    }

    /// Whether the change being planned must bring the log's baseline: true once, and again
    /// when the batch that planned it is thrown away to be read again.
    public func planBaseline() -> Bool {
        state.withLock { state in
            guard state.needsBaseline else { return false }
            state.needsBaseline = false
            state.undo.append(.baselinePlanned)
            return true
        }
    }

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
    /// Completions are pruned and evicted only here, after a commit, so an undo never
    /// meets a completion that left memory.
    public func batchEnded(committed: Bool) {
        state.withLock { state in
            defer { state.undo.removeAll() }
            guard !committed else {
                trim(&state)
                return
            }
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
                case .baselinePlanned:
                    state.needsBaseline = true
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
            state.latest = max(state.latest ?? time, time)
        }
    }

    /// Drops the completions older than the window once the map has doubled since the last
    /// pruning, and with a bound, moves the oldest half out of memory past its capacity.
    /// Entries are removed in place: the map keeps its storage rather than being copied.
    private func trim(_ state: inout State) {
        guard let latest = state.latest else { return }
        let horizon = latest.microseconds - window.wholeMicroseconds
        // Completions older than the window can no longer limit anything.
        state.evicted.removeAll { $0.newest <= horizon }
        let limit = bound?.capacity ?? state.pruneAt
        guard state.completions.count > limit else { return }
        // The keys first: removing while iterating would copy the whole map.
        for key in state.completions.compactMap({ $0.value.microseconds <= horizon ? $0.key : nil }) {
            state.completions.removeValue(forKey: key)
        }
        state.pruneAt = max(4096, state.completions.count * 2)
        guard let bound, state.completions.count > bound.capacity else { return }
        let times = state.completions.values.map(\.microseconds).sorted()
        let newest = times[times.count - bound.capacity / 2 - 1]
        let leaving = state.completions.compactMap { $0.value.microseconds <= newest ? $0.key : nil }
        state.evicted.append(EvictedKeys(leaving, newest: newest))
        for key in leaving { state.completions.removeValue(forKey: key) }
    }

    /// When the same job, workflow and status last completed, if that is within the
    /// window before `time` (the job change's commit time). A completion committed after
    /// the job change (possible when a replay meets a cache loaded later) does not count.
    /// Throws only what the bound's database look-up throws.
    public func recentCompletion(_ key: CompletionKey, before time: PostgresTimestamp) throws -> PostgresTimestamp? {
        guard window > .zero else { return nil }
        let horizon = time.microseconds - window.wholeMicroseconds
        let known: PostgresTimestamp?? = state.withLock { state in
            if let completed = state.completions[key], completed <= time, completed.microseconds > horizon { return completed }
            // Memory keeps each key's latest completion: one after `time` (a change read again
            // after a restart) hides any earlier one, which only the database knows.
            if let completed = state.completions[key], completed > time { return nil }
            if let loadedSince = state.loadedSince, horizon < loadedSince.microseconds { return nil }
            // Most look-ups find no filter within the window: the key is hashed only when one is.
            guard state.evicted.contains(where: { $0.newest > horizon }) else { return .some(nil) }
            let hashes = EvictedKeys.hashes(key)
            let perhapsEvicted = state.evicted.contains { $0.newest > horizon && $0.mightContain(hashes) }
            return perhapsEvicted ? nil : .some(nil)
        }
        if let known { return known }
        return try bound?.lookUp(key, time)
    }
}

/// The keys of completions evicted together, as a Bloom filter: no false negatives, and
/// about one false positive in 15 000 keys never added (20 bits and 14 probes a key).
private struct EvictedKeys: Sendable {
    /// The newest completion time among them (microseconds since 2000): once it is out of
    /// the window, none of them can limit anything.
    let newest: Int64
    private var bits: [UInt64]
    private static let bitsPerKey = 20
    private static let probes = 14

    init(_ keys: [AutomationCache.CompletionKey], newest: Int64) {
        self.newest = newest
        bits = Array(repeating: 0, count: max(1, (keys.count * Self.bitsPerKey + 63) / 64))
        for key in keys {
            for (word, mask) in probes(Self.hashes(key)) { bits[word] |= mask }
        }
    }

    /// The word and bit of each probe: the two hashes combined (double hashing).
    private func probes(_ hashes: (UInt64, UInt64)) -> [(word: Int, mask: UInt64)] {
        let (first, step) = hashes
        let size = UInt64(bits.count * 64)
        return (0..<UInt64(Self.probes)).map { probe in
            let position = (first &+ probe &* step) % size
            return (Int(position / 64), 1 << (position % 64))
        }
    }

    /// Two independent hashes of the key.
    static func hashes(_ key: AutomationCache.CompletionKey) -> (UInt64, UInt64) {
        var first = Hasher()
        first.combine(key)
        var second = Hasher()
        second.combine(0x5bd1_e995 as UInt32)
        second.combine(key)
        return (UInt64(bitPattern: Int64(first.finalize())), UInt64(bitPattern: Int64(second.finalize())) | 1)
    }

    func mightContain(_ hashes: (UInt64, UInt64)) -> Bool {
        probes(hashes).allSatisfy { bits[$0.word] & $0.mask != 0 }
    }
}
