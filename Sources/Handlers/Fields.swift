import Core
import Decoding
import PlannedEffects

/// A row's values as text, by column name. Handlers read text: a binary-mode value is refused.
struct Fields {
    private var values: [String: String] = [:]
    /// Unchanged TOAST columns: present in the row, but their values were not sent.
    private var unchanged: Set<String> = []
    /// Every column the row carries, NULL or not: a key-only old row carries the key alone.
    private var carried: Set<String> = []

    init(_ row: Row, handler: String, change: Change) throws(HandlerError) {
        for (column, value) in zip(row.columns, row.values) {
            carried.insert(column.name)
            switch value {
            case .text(let bytes): values[column.name] = String(decoding: bytes, as: UTF8.self)
            case .null: break
            case .unchangedToast: unchanged.insert(column.name)
            case .binary:
                throw HandlerError(handler: handler, table: change.schema + "." + change.table, key: change.loggedKey,
                                   reason: "column \(column.name) arrived in binary form; run without pgoutput binary mode")
            }
        }
    }

    subscript(name: String) -> String? { values[name] }

    func isUnchanged(_ name: String) -> Bool { unchanged.contains(name) }

    func carries(_ name: String) -> Bool { carried.contains(name) }

    /// The same row with one column's text given (and no longer unchanged).
    func setting(_ name: String, to value: String) -> Fields {
        var fields = self
        fields.values[name] = value
        fields.unchanged.remove(name)
        return fields
    }
}

extension Fields {
    /// Whether a column holds the same text in both rows, byte for byte, as Postgres'
    /// `IS DISTINCT FROM` compares it: Swift's `==` takes canonically equivalent strings
    /// (`é` and `e` followed by a combining accent) as equal, and a change between them
    /// would go unseen.
    func holdsTheSame(_ name: String, as other: Fields) -> Bool {
        Self.sameText(self[name], other[name])
    }

    static func sameText(_ left: String?, _ right: String?) -> Bool {
        switch (left, right) {
        case (nil, nil): true
        case (let left?, let right?): left.utf8.elementsEqual(right.utf8)
        default: false
        }
    }
}

extension Row {
    /// The new row of an UPDATE with its unchanged TOAST values taken from the old one,
    /// which REPLICA IDENTITY FULL sends whole: a large value the UPDATE left alone is then
    /// read as what it is, not as NULL. An old row of other columns (a key only) fills nothing.
    func fillingUnchangedToast(from old: Row) -> Row {
        guard old.columns.count == columns.count else { return self }
        var row = self
        for index in row.values.indices {
            if case .unchangedToast = row.values[index] { row.values[index] = old.values[index] }
        }
        return row
    }
}
