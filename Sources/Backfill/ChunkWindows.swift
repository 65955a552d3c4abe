import Decoding

/// Which backfilled rows a live change made stale. Between a chunk's low and high
/// watermark the stream records the primary keys of its table's changes; at the high
/// watermark the chunk's rows with one of those keys are dropped (the stream handled a state
/// as new or newer), and the rest are handed on as `read` changes.
///
/// Pure, and kept per batch like the handlers' caches: a batch that is thrown away is read
/// again from the checkpoint, so the windows go back to what they were at that checkpoint,
/// whose low watermarks are not read again.
public struct ChunkWindows: Sendable {
    struct Window: Sendable {
        var table: TableName
        var keyColumns: [String]
        var changedKeys: Set<[String]> = []
        /// A TRUNCATE of the table committed between the watermarks: every row the SELECT saw may be gone.
        var truncated = false
    }

    private var open: [ChunkToken: Window] = [:]
    private var committedOpen: [ChunkToken: Window] = [:]
    /// Chunks the working batch closed: their rows may be released once it commits.
    private var closed: [ChunkToken] = []

    public init() {}

    public var isEmpty: Bool { open.isEmpty }

    public func isOpen(_ token: ChunkToken) -> Bool { open[token] != nil }

    public var openTokens: [ChunkToken] { Array(open.keys) }

    /// A low watermark: changes of `table` committed from now on are recorded.
    public mutating func open(_ token: ChunkToken, table: TableName, keyColumns: [String]) {
        open[token] = Window(table: table, keyColumns: keyColumns)
    }

    /// A change committed while windows are open: its keys (old and new) count against them.
    public mutating func observe(_ change: Change) {
        guard !open.isEmpty else { return }
        for (token, window) in open where window.table.schema == change.schema && window.table.name == change.table {
            if change.operation == .truncate {
                open[token]?.truncated = true
                continue
            }
            for row in [change.new, change.old].compactMap({ $0 }) {
                if let key = Self.key(of: row, columns: window.keyColumns) { open[token]?.changedKeys.insert(key) }
            }
        }
    }

    /// A high watermark: the window closes, and the rows the chunk read that no change made
    /// stale are returned with how many were dropped; nil when no window is open for it (a
    /// watermark of an earlier run, whose chunk is read again).
    public mutating func close(_ token: ChunkToken, rows: [Row]) -> (kept: [Row], superseded: Int)? {
        guard let window = open.removeValue(forKey: token) else { return nil }
        closed.append(token)
        if window.truncated { return ([], rows.count) }
        let kept = rows.filter { row in
            guard let key = Self.key(of: row, columns: window.keyColumns) else { return false }
            return !window.changedKeys.contains(key)
        }
        return (kept, rows.count - kept.count)
    }

    /// The batch committed (its windows' state is the checkpoint's now) or was thrown away
    /// (back to the checkpoint's). Returns the chunks whose rows are no longer needed.
    public mutating func batchEnded(committed: Bool) -> [ChunkToken] {
        defer { closed = [] }
        if committed {
            committedOpen = open
            return closed
        }
        open = committedOpen
        return []
    }

    /// Forgets a window whose chunk was given up (its rows could not be read): its high
    /// watermark will never come.
    public mutating func abandon(_ token: ChunkToken) {
        open[token] = nil
        committedOpen[token] = nil
    }

    /// The text values of `columns` in `row`; nil when one is missing or not sent.
    static func key(of row: Row, columns: [String]) -> [String]? {
        var key: [String] = []
        key.reserveCapacity(columns.count)
        for column in columns {
            switch row[column] {
            case .text(let bytes)?: key.append(String(decoding: bytes, as: UTF8.self))
            case .null?: key.append("\u{0}null")
            case .binary, .unchangedToast, nil: return nil
            }
        }
        return key
    }
}
