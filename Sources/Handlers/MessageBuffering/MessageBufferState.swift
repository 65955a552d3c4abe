import Core
import Synchronization

/// The handler's open buffers and the `message_buffering` flag: what the batch being
/// planned has made of them (`working`) and what the last committed batch left
/// (`committed`). A batch read again starts over from `committed`, so its messages land in
/// the same windows the second time. The committed state's earliest deadline is published
/// to `nextDeadline`, which the ticker sleeps on.
///
/// Planning is sequential; the lock only makes the shared reference safe to hold.
public final class MessageBufferState: Sendable {
    public struct Snapshot: Sendable, Hashable {
        public var book: BufferBook
        /// `feature_flags.message_buffering`: off, each message is flushed alone.
        public var buffering: Bool

        public init(book: BufferBook, buffering: Bool) {
            self.book = book
            self.buffering = buffering
        }
    }

    private struct Copies {
        var committed: Snapshot
        var working: Snapshot
    }

    private let copies: Mutex<Copies>
    public let nextDeadline: NextDeadline

    /// - Parameter restored: the state as of the checkpoint (`MessageBufferLoader`).
    public init(restored: Snapshot, nextDeadline: NextDeadline = NextDeadline()) {
        copies = Mutex(Copies(committed: restored, working: restored))
        self.nextDeadline = nextDeadline
        nextDeadline.set(restored.book.earliestDeadline)
    }

    /// Changes the working state.
    func update<Result>(_ body: (inout Snapshot) -> Result) -> Result {
        copies.withLock { body(&$0.working) }
    }

    public var committed: Snapshot { copies.withLock { $0.committed } }

    func batchEnded(committed: Bool) {
        let deadline = copies.withLock { copies in
            if committed { copies.committed = copies.working } else { copies.working = copies.committed }
            return copies.committed.book.earliestDeadline
        }
        nextDeadline.set(deadline)
    }
}
