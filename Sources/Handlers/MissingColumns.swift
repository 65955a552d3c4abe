import Core
import Decoding
import Logging
import Synchronization

/// A change whose row lacks a column a handler decides by: the application renamed or
/// dropped it. Read as NULL, the change looked like one that calls for nothing ("no
/// ElevenLabs id", "status unchanged") and the handler stopped firing without a word. The
/// handler skips it, as it must (the change says nothing about that column), and this warns,
/// once per handler, table and set of missing columns, naming them and the change.
final class MissingColumns: Sendable {
    private let handler: String
    private let logger: Logger
    private let warned = Mutex(Set<String>())

    init(handler: String, logger: Logger) {
        self.handler = handler
        self.logger = logger
    }

    /// The columns of `needed` that `row` does not carry, warned about when first seen.
    func check(_ row: Row, needs needed: [String], change: Change) -> [String] {
        let missing = needed.filter { name in !row.columns.contains { $0.name == name } }
        guard !missing.isEmpty else { return [] }
        let table = change.schema + "." + change.table
        let first = warned.withLock { $0.insert(table + ":" + missing.joined(separator: ",")).inserted }
        if first {
            logger.warning("changes are skipped: the table has no column the handler decides by (renamed or dropped?)", metadata: [
                "handler": "\(handler)", "table": "\(table)", "missing": "\(missing.joined(separator: ", "))",
                "lsn": "\(change.lsn)", "key": "\(change.loggedKey ?? "?")",
            ])
        }
        return missing
    }
}
