import Core
import Decoding

/// Where a replay's stream goes: into a batch committer keyed by the replayed slot (so each
/// batch's effects and that slot's checkpoint commit together, and a replay killed at any
/// instant resumes where its last batch ended), until the end.
///
/// It stops after the last transaction whose commit ends at or before `end`: when one ends
/// exactly there, when one ends past it (that one is left for a later replay), or when a
/// keepalive says the server has sent everything before `end` and nothing is open (the
/// range's last transactions were followed by nothing for this publication). Each way, the
/// batch in hand is committed and acknowledged first.
public final class ReplaySink: TransactionSink {
    private let committer: BatchCommitter
    public let end: LSN
    private let progress: (_ reached: LSN, _ transactions: Int) -> Void
    /// The stream reached `end`; false when the replay was stopped before it.
    public private(set) var reachedEnd = false
    private var transactions = 0

    /// `progress` hears how far the stream has come, and how many transactions it has read.
    public init(committer: BatchCommitter, end: LSN, progress: @escaping (_ reached: LSN, _ transactions: Int) -> Void) {
        self.committer = committer
        self.end = end
        self.progress = progress
    }

    public func accept(_ transaction: Transaction) throws -> SinkProgress {
        guard transaction.endLSN <= end else { return try finish(durable: nil) }
        let accepted = try committer.accept(transaction)
        transactions += 1
        progress(transaction.endLSN, transactions)
        guard transaction.endLSN < end else { return try finish(durable: accepted.durable) }
        return accepted
    }

    public func caughtUp(through walEnd: LSN) -> Bool {
        guard walEnd >= end else { return false }
        reachedEnd = true
        progress(end, transactions)
        return true
    }

    public func tick() throws -> LSN? { try committer.tick() }
    public func flush() throws -> LSN? { try committer.flush() }
    public func discardPending() { committer.discardPending() }
    public var hasPending: Bool { committer.hasPending }
    public var durablePosition: LSN { committer.durablePosition }

    private func finish(durable: LSN?) throws -> SinkProgress {
        reachedEnd = true
        return .stop(durableThrough: try committer.flush() ?? durable)
    }
}

extension SinkProgress {
    var durable: LSN? {
        switch self {
        case .proceed(let lsn), .stop(let lsn): lsn
        }
    }
}
