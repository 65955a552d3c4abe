import Core
import Replication

/// When a batch of planned transactions commits, and what a batch that did not commit
/// means: the rules behind guarantee 2 (effects planned exactly once), with no I/O, so
/// each is tested event by event. The batch committer executes what it decides.
///
/// - A transaction at or below the durable checkpoint was planned before: skip it.
/// - A batch commits when it holds `maxChanges` changes, when it is `maxAge` old, or
///   when the stream goes quiet (`flush`). Decisions fall between transactions only, so
///   a transaction, however large, is never split across two checkpoints.
/// - A batch thrown away is settled before anything more is planned. If planning had
///   started but no COMMIT was sent, nothing of it is durable. If its COMMIT was sent and
///   its outcome is unknown, the stored checkpoint says: at or past the batch's end, it
///   was committed (and must not be planned again); below it, it was not.
struct BatchPolicy: Sendable {
    enum Unsettled: Sendable, Equatable {
        /// Planning had started; nothing of it can have been committed.
        case discarded
        /// The batch ending here may have been committed.
        case inDoubt(LSN)
    }

    /// What `accept` asks of the batch committer.
    enum Admission: Sendable, Equatable {
        /// Planned before the checkpoint: its effects are committed already.
        case skip
        /// Plan it into the open batch.
        case plan
    }

    let maxChanges: Int
    let maxAge: Duration
    /// The committed checkpoint.
    private(set) var durable: LSN
    private(set) var unsettled: Unsettled?
    /// Where the open batch ends, nil when none is open.
    private(set) var end: LSN?
    private(set) var changes = 0
    private(set) var transactions = 0
    private var opened: ContinuousClock.Instant?
    /// The handlers have planned changes since the last commit or settlement.
    private var plannedSinceCommit = false

    init(durable: LSN, maxChanges: Int, maxAge: Duration) {
        self.durable = durable
        self.maxChanges = maxChanges
        self.maxAge = maxAge
    }

    var hasPending: Bool { end != nil }

    /// A transaction arrives (after any unsettled batch was settled).
    mutating func admit(endingAt transactionEnd: LSN) -> Admission {
        precondition(unsettled == nil, "a discarded batch must be settled before more is planned")
        guard transactionEnd > durable else { return .skip }
        plannedSinceCommit = true
        return .plan
    }

    /// The transaction admitted last has been planned; true when the batch is now full.
    mutating func planned(endingAt transactionEnd: LSN, changes count: Int, at now: ContinuousClock.Instant) -> Bool {
        changes += count
        transactions += 1
        end = transactionEnd
        if opened == nil { opened = now }
        return changes >= maxChanges
    }

    /// Between messages of a flowing stream: whether the open batch is old enough to commit.
    func isDue(at now: ContinuousClock.Instant) -> Bool {
        guard let opened else { return false }
        return now - opened >= maxAge
    }

    /// The batch and its checkpoint were committed.
    mutating func committed() {
        if let end { durable = end }
        reset()
        plannedSinceCommit = false
    }

    /// The batch was thrown away (a lost connection, a failed commit): the stream re-sends it.
    mutating func discard() {
        if unsettled == nil, plannedSinceCommit {
            unsettled = end.map(Unsettled.inDoubt) ?? .discarded
        }
        reset()
    }

    /// What the unsettled batch turned out to be, given the stored checkpoint (read only for
    /// a batch in doubt). Returns whether it had been committed: the handlers keep what it
    /// taught them, or forget it.
    mutating func settle(storedCheckpoint: LSN?) -> Bool {
        var committed = false
        if case .inDoubt(let batchEnd) = unsettled, let stored = storedCheckpoint, stored >= batchEnd {
            committed = true
            durable = max(durable, stored)
        }
        unsettled = nil
        plannedSinceCommit = false
        return committed
    }

    private mutating func reset() {
        end = nil
        changes = 0
        transactions = 0
        opened = nil
    }
}
