import Core
import Replication

/// What the slot may be told is done, and when: the rules behind guarantees 1 (nothing is
/// lost: confirm only what the sink made durable) and 5 (an idle publication still advances
/// the slot), with no I/O. The stream loop executes what it returns.
///
/// A keepalive's WAL end is safe to confirm only while the decoder holds no open
/// transaction (the walsender has read past its commit already) and the sink holds no
/// pending batch (its transactions are not durable yet). Confirming a lower position than
/// before is harmless (the stream keeps the highest), so every durable position is passed
/// on: a new stream after a reconnect learns it that way.
struct Acknowledgement: Sendable, Equatable {
    /// The highest position confirmed in this session or any before it.
    private(set) var confirmed: LSN

    init(confirmed: LSN) { self.confirmed = confirmed }

    /// The sink made everything through `lsn` durable (nil: nothing new).
    mutating func durable(through lsn: LSN?) -> LSN? {
        guard let lsn else { return nil }
        confirmed = max(confirmed, lsn)
        return lsn
    }

    /// A keepalive arrived carrying the server's WAL end.
    mutating func keepalive(walEnd: LSN, transactionOpen: Bool, batchPending: Bool) -> LSN? {
        guard !transactionOpen, !batchPending else { return nil }
        return durable(through: walEnd)
    }

    /// How long to wait for the next message. With a batch pending, a quiet millisecond means
    /// nothing more is coming to batch with, so the loop commits it (latency); otherwise it
    /// waits long enough to stay cheap. Under a steady flow batches grow to their size or age.
    static func readTimeout(batchPending: Bool) -> Duration {
        batchPending ? .milliseconds(1) : .milliseconds(200)
    }
}
