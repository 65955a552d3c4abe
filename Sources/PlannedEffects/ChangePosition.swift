import Core
import Decoding

/// Where a change sits in the source: the commit LSN of its transaction and its index in
/// that transaction. Every key and id ChangeRelay derives from a change (a delivery's
/// idempotency key, a staged row's key, the name behind a stable UUID) is built from it by
/// `key(handler:suffix:)`, so a crash, a replay or a backfill of the same change gets the
/// same ones. A backfill, which reads rows rather than changes, will need positions of its
/// own (backfill, table, primary key) rendered into keys the same way.
public struct ChangePosition: Sendable, Hashable {
    public var commitLSN: LSN
    public var index: Int

    public init(commitLSN: LSN, index: Int) {
        self.commitLSN = commitLSN
        self.index = index
    }

    /// `handler:commitLSN:index`, then `:suffix` when there is one (`echo:1/200:0:echo`).
    /// Keys are stored (`deliveries.idempotency_key`, `idempotency_log.key`) and sent to
    /// receivers, which de-duplicate on them: this text must never change.
    public func key(handler: String, suffix: String? = nil) -> String {
        let key = "\(handler):\(commitLSN):\(index)"
        guard let suffix else { return key }
        return key + ":" + suffix
    }
}

extension Transaction {
    /// The position of the change at `index` of this transaction.
    public func position(ofChange index: Int) -> ChangePosition {
        ChangePosition(commitLSN: commitLSN, index: index)
    }
}
