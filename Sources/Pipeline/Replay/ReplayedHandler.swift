import Core
import Decoding
import Handlers
import PlannedEffects
import Synchronization

/// What one handler's effects came to in a replay: new, or planned already.
///
/// Counts become final with the batch that wrote them: the router tells every handler how
/// each batch ended, and a batch thrown away (a lost connection) is planned again once its
/// fate is known, so nothing is counted twice and a batch whose COMMIT went through after all
/// is counted once.
public final class ReplayTally: Sendable {
    public struct Counts: Sendable, Equatable {
        public var new = 0
        public var alreadyPlanned = 0

        public init(new: Int = 0, alreadyPlanned: Int = 0) {
            self.new = new
            self.alreadyPlanned = alreadyPlanned
        }
    }

    private let state = Mutex((pending: Counts(), settled: Counts()))

    public init() {}

    func record(new: Int, alreadyPlanned: Int) {
        state.withLock { state in
            state.pending.new += new
            state.pending.alreadyPlanned += alreadyPlanned
        }
    }

    /// The batch holding what was recorded since the last call was committed, or not.
    func settle(committed: Bool) {
        state.withLock { state in
            if committed {
                state.settled.new += state.pending.new
                state.settled.alreadyPlanned += state.pending.alreadyPlanned
            }
            state.pending = Counts()
        }
    }

    /// What committed batches (or, in a dry run, the transactions read) came to.
    public var counts: Counts { state.withLock { $0.settled } }
}

/// A handler as a replay runs it: the same planning, without the tables it must not follow
/// in a replay, and with a tally of what it planned.
///
/// A handler that learns from the stream follows the present, not the past: the webhook
/// fan-out plans with the configs as they are now (that is what replaying for an endpoint
/// added later means), so the config changes of the replayed range must not reach its cache
/// (they would take it back in time) nor `changerelay.webhook_config_log`, which is the
/// live service's record of its own position. A handler that keeps time by commits is not
/// run at all (`ReplayHandlerSelection`), so none is forwarded here.
public struct ReplayedHandler: Handler {
    private let inner: any Handler
    public let tables: Set<String>
    public let tally = ReplayTally()

    public init(_ inner: any Handler, ignoring ignored: Set<String> = []) {
        self.inner = inner
        tables = inner.tables.subtracting(ignored)
    }

    public var name: String { inner.name }
    public var reports: Set<DeliveryLog> { inner.reports }
    public var staging: Staging? { inner.staging }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        try inner.plan(change, at: index, in: transaction)
    }

    public func batchEnded(committed: Bool) {
        inner.batchEnded(committed: committed)
        tally.settle(committed: committed)
    }

    public func stagedBatchCommitted(_ result: QueryResult) { inner.stagedBatchCommitted(result) }
}
