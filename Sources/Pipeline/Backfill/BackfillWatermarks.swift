import Backfill
import Decoding

/// The stream's side of a backfill, inside the batch committer: it follows the watermarks
/// in commit order, records what changed between them (`ChunkWindows`), and at a high
/// watermark puts the chunk's rows that are still current into that transaction as `read`
/// changes, with the chunk's progress. So the handlers see them at the high watermark's
/// position, after every change committed before it and before every change after it.
struct BackfillWatermarks {
    let exchange: ChunkExchange
    private var windows = ChunkWindows()

    init(exchange: ChunkExchange) {
        self.exchange = exchange
    }

    /// The transaction as the handlers must see it.
    mutating func admit(_ transaction: Transaction) throws -> Transaction {
        if !windows.isEmpty { try transaction.changes.forEach { _, change in windows.observe(change) } }
        var admitted = transaction
        for message in transaction.messages {
            guard let mark = Watermark(message) else { continue }
            switch mark.kind {
            case .low:
                // Windows whose chunk the runner gave up (it could not read or finish it) close unused.
                for token in windows.openTokens where exchange.chunk(token) == nil { windows.abandon(token) }
                // A watermark of an earlier run (or not ours) finds no chunk: ignored.
                guard let chunk = exchange.chunk(mark.token) else { continue }
                windows.open(mark.token, table: chunk.table.name, keyColumns: chunk.table.keyColumns)
            case .high:
                guard let chunk = exchange.chunk(mark.token), let rows = chunk.rows else {
                    windows.abandon(mark.token)
                    continue
                }
                guard let (kept, superseded) = windows.close(mark.token, rows: rows) else { continue }
                for row in kept {
                    _ = admitted.changes.append(Change(lsn: message.lsn, schema: chunk.table.name.schema,
                                                       table: chunk.table.name.name, operation: .read, new: row))
                }
                admitted.backfill = BackfillChunk(
                    backfill: mark.token.backfill, number: mark.token.chunk, table: chunk.table.name,
                    keyColumns: chunk.table.keyColumns, cursor: chunk.cursor, rowsRead: rows.count,
                    rowsSuperseded: superseded, isLast: chunk.isLast)
            }
        }
        return admitted
    }

    /// The batch committed (the chunks it handled are done for good) or was thrown away (the
    /// windows go back to the checkpoint's, and its watermarks are read again).
    mutating func batchEnded(committed: Bool) {
        exchange.release(windows.batchEnded(committed: committed))
    }
}
