import Core
import Decoding
import PlannedEffects

/// A row's values as text, by column name. Handlers read text: a binary-mode value is refused.
struct Fields {
    private var values: [String: String] = [:]
    /// Unchanged TOAST columns: present in the row, but their values were not sent.
    private var unchanged: Set<String> = []

    init(_ row: Row, handler: String, change: Change) throws(HandlerError) {
        for (column, value) in zip(row.columns, row.values) {
            switch value {
            case .text(let bytes): values[column.name] = String(decoding: bytes, as: UTF8.self)
            case .null: break
            case .unchangedToast: unchanged.insert(column.name)
            case .binary:
                throw HandlerError(handler: handler, table: change.schema + "." + change.table, key: change.keyText,
                                   reason: "column \(column.name) arrived in binary form; run without pgoutput binary mode")
            }
        }
    }

    subscript(name: String) -> String? { values[name] }

    func isUnchanged(_ name: String) -> Bool { unchanged.contains(name) }
}
