#if canImport(Glibc)
import Glibc
#endif
import Backfill
import Core
import Decoding
import Synchronization

/// Hands chunks from the backfill runner (which reads them on the source) to the stream
/// (which hands them to the handlers when it reaches their high watermark). A chunk is
/// registered before its low watermark is written and filled before its high one, so the
/// stream always finds what it reads; it stays until the batch that handled it has
/// committed, since a batch thrown away reads the watermarks again. The runner reads the next
/// chunk only once the last one is committed: a live change never queues in the WAL behind
/// more than one chunk's rows (measured: under a third of the p99 latency of four chunks
/// ahead, and no slower), and one chunk is all a backfill holds in memory.
public final class ChunkExchange: Sendable {
    public struct Chunk: Sendable {
        public var table: BackfillTable
        /// nil until the SELECT has run.
        public var rows: [Row]?
        public var cursor: [String]
        public var isLast: Bool
    }

    private let chunks = Mutex<[ChunkToken: Chunk]>([:])
    private let released = WakePipe()
    private let stream = Mutex<(isStreaming: Bool, generation: Int)>((false, 0))

    public init() {}

    /// The stream (re)started: it reads from the checkpoint, which may have been moved by
    /// another instance meanwhile, so no chunk read before is trusted; the runner sees the new
    /// generation and reads again from the backfill's committed cursor.
    public func streamStarted() {
        chunks.withLock { $0 = [:] }
        stream.withLock { $0 = (true, $0.generation + 1) }
        released.wake()
    }

    /// The stream ended: the runner reads nothing until it runs again (this instance may no
    /// longer hold the slot, and chunks only the slot's holder reads would pile up here).
    public func streamEnded() {
        stream.withLock { $0.isStreaming = false }
    }

    /// Whether the stream is running, and how many times it started: a runner that saw
    /// another generation before reads its backfill again from the committed cursor.
    public var streamState: (isStreaming: Bool, generation: Int) { stream.withLock { $0 } }

    /// Before the low watermark: the stream starts recording changes of the table at it.
    public func register(_ token: ChunkToken, table: BackfillTable) {
        chunks.withLock { $0[token] = Chunk(table: table, rows: nil, cursor: [], isLast: false) }
    }

    /// Before the high watermark: the rows the chunk read, where the next one starts, and
    /// whether it found the end.
    /// False when the chunk is gone: the stream restarted since it was registered.
    public func fill(_ token: ChunkToken, rows: [Row], cursor: [String], isLast: Bool) -> Bool {
        chunks.withLock { chunks in
            guard chunks[token] != nil else { return false }
            chunks[token]?.rows = rows
            chunks[token]?.cursor = cursor
            chunks[token]?.isLast = isLast
            return true
        }
    }

    public func chunk(_ token: ChunkToken) -> Chunk? { chunks.withLock { $0[token] } }

    /// The chunks are handled for good (or given up): their memory goes, and the runner may read more.
    public func release(_ tokens: [ChunkToken]) {
        guard !tokens.isEmpty else { return }
        chunks.withLock { chunks in for token in tokens { chunks[token] = nil } }
        released.wake()
    }

    /// Chunks of `backfill` not handled for good yet.
    public func pending(backfill: Int64) -> Int {
        chunks.withLock { chunks in chunks.keys.count { $0.backfill == backfill } }
    }

    /// Sleeps until a chunk is released, `timeout` passes or stop is asked.
    public func waitForRelease(timeout: Duration, unless stop: StopSignal) {
        guard !stop.isRequested else { return }
        var descriptors = [pollfd(fd: released.descriptor, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0)]
        _ = poll(&descriptors, 2, Int32(clamping: max(1, timeout.wholeMilliseconds)))
        released.drain()
    }
}
