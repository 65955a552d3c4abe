import Core
import Decoding
import Replication

/// What a sink says after taking a transaction.
public enum SinkProgress: Sendable, Equatable {
    /// Go on; everything up to the LSN (when given) is durable and may be acknowledged.
    case proceed(durableThrough: LSN?)
    /// Stop streaming after acknowledging what is durable.
    case stop(durableThrough: LSN?)
}

/// Where committed transactions go. A sink may hold transactions back to write them in
/// batches; the slot is acknowledged only as far as it reports them durable.
public protocol TransactionSink {
    mutating func accept(_ transaction: Transaction) throws -> SinkProgress
    /// Called after each message while messages keep coming: closes a batch that is old enough.
    mutating func tick() throws -> LSN?
    /// Makes everything accepted durable now: when the stream has gone quiet (nothing
    /// more to batch with, so waiting would only add latency) and on shutdown.
    mutating func flush() throws -> LSN?
    /// Forgets what is not durable yet: the stream is about to re-send it.
    mutating func discardPending()
    /// True while accepted transactions are not durable yet: keepalives are not acknowledged then.
    var hasPending: Bool { get }
    /// Where the last run left off (a checkpoint); streaming resumes no earlier than this.
    var durablePosition: LSN { get }
    /// A keepalive came while no transaction was open: the server has sent every transaction
    /// that commits before `walEnd`. True to stop here (a replay that reached its end on a
    /// stream with nothing more for it); what is pending is made durable first.
    mutating func caughtUp(through walEnd: LSN) -> Bool
    /// A stream has started, before its first message. A sink whose position another
    /// instance may have moved while this one waited for the slot checks it here, and throws
    /// rather than plan from a stale one.
    mutating func streamStarted() throws
}

extension TransactionSink {
    public func tick() throws -> LSN? { nil }
    public func flush() throws -> LSN? { nil }
    public func discardPending() {}
    public var hasPending: Bool { false }
    public var durablePosition: LSN { .zero }
    public func caughtUp(through walEnd: LSN) -> Bool { false }
    public func streamStarted() throws {}
}
