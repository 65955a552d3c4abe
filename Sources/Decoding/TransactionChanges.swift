import Core

/// A table by schema and name.
public struct TableName: Sendable, Hashable, CustomStringConvertible {
    public var schema: String
    public var name: String

    public init(schema: String, name: String) {
        self.schema = schema
        self.name = name
    }

    public var description: String { schema + "." + name }

    /// `"schema"."name"`, for SQL that names the table whatever its spelling.
    public var quoted: String { quoteIdentifier(schema) + "." + quoteIdentifier(name) }
}

/// The changes of one transaction, in order. Small transactions live in memory; a large
/// one (a streamed transaction of millions of rows) moves its earlier changes to a spill
/// file, so memory stays bounded and the changes are read back in order, a piece at a
/// time, when the transaction is planned.
///
/// Changes can be dropped after the fact in two ways without reading the file: all of a
/// subtransaction (pgoutput Stream Abort of a subtransaction) and all of some tables
/// (wal2json changes of unpublished tables). Counts are kept per subtransaction and
/// table for that.
public struct TransactionChanges: Sendable {
    private struct Entry: Sendable {
        var subtransaction: UInt32
        var table: UInt32
        var change: Change
    }

    private struct CountKey: Hashable, Sendable {
        var subtransaction: UInt32
        var table: UInt32
    }

    private var memory: [Entry] = []
    private var spill: ChangeSpillFile?
    /// This value's end of the spill file: records past it belong to another copy.
    private var spilledThrough = 0
    private var tableNames: [TableName] = []
    private var tableIndex: [TableName: UInt32] = [:]
    private var counts: [CountKey: Int] = [:]
    private var abortedSubtransactions: Set<UInt32> = []
    private var excludedTables: Set<UInt32> = []
    /// Estimated bytes the in-memory changes hold (their values and bookkeeping).
    public private(set) var memoryBytes = 0

    public init() {}

    public init(_ changes: [Change]) {
        for change in changes { append(change) }
    }

    /// How many changes a reader sees. An aborted subtransaction's counts are gone
    /// already (`discard`); excluded tables are left out here.
    public var count: Int {
        counts.reduce(0) { total, entry in excludedTables.contains(entry.key.table) ? total : total + entry.value }
    }

    /// The tables that have changes a reader sees.
    public var tables: Set<TableName> {
        Set(counts.keys.compactMap { key in excludedTables.contains(key.table) ? nil : tableNames[Int(key.table)] })
    }

    public var isSpilled: Bool { spill != nil }

    /// Adds a change in memory; returns the bytes that added. `subtransaction` is the
    /// xid that made it, when a later abort of just that subtransaction is possible.
    @discardableResult
    public mutating func append(_ change: Change, subtransaction: UInt32 = 0) -> Int {
        let table = index(of: change)
        counts[CountKey(subtransaction: subtransaction, table: table), default: 0] += 1
        memory.append(Entry(subtransaction: subtransaction, table: table, change: change))
        let bytes = Self.estimatedBytes(change)
        memoryBytes += bytes
        return bytes
    }

    /// Moves the in-memory changes to the spill file; returns the bytes freed.
    @discardableResult
    public mutating func spill(_ settings: SpillSettings) throws(SpillError) -> Int {
        guard !memory.isEmpty else { return 0 }
        let file: ChangeSpillFile
        if let spill {
            file = spill
        } else {
            file = try ChangeSpillFile(directory: settings.directory)
            spill = file
        }
        for entry in memory where !abortedSubtransactions.contains(entry.subtransaction) {
            try file.append(entry.change, subtransaction: entry.subtransaction, table: entry.table)
        }
        spilledThrough = file.end
        memory.removeAll()
        defer { memoryBytes = 0 }
        return memoryBytes
    }

    /// Drops every change `subtransaction` made; returns the memory bytes freed.
    @discardableResult
    public mutating func discard(subtransaction: UInt32) -> Int {
        abortedSubtransactions.insert(subtransaction)
        for key in counts.keys where key.subtransaction == subtransaction { counts[key] = nil }
        var freed = 0
        memory.removeAll { entry in
            guard entry.subtransaction == subtransaction else { return false }
            freed += Self.estimatedBytes(entry.change)
            return true
        }
        memoryBytes -= freed
        return freed
    }

    /// Hides the changes of the tables `isExcluded` picks.
    public mutating func exclude(tables isExcluded: (TableName) -> Bool) {
        for (index, name) in tableNames.enumerated() where isExcluded(name) { excludedTables.insert(UInt32(index)) }
    }

    /// Calls `body` with each change and its index, in order, up to `limit` changes.
    /// Spilled changes are read back a piece at a time.
    public func forEach(limit: Int = .max, _ body: (_ index: Int, _ change: Change) throws -> Void) throws {
        var index = 0
        if let spill, spilledThrough > 0 {
            try spill.read(upTo: spilledThrough, { subtransaction, table, change in
                guard index < limit, isVisible(subtransaction, table) else { return }
                try body(index, change)
                index += 1
            }, tableName: { tableNames[Int($0)] })
        }
        for entry in memory where index < limit && isVisible(entry.subtransaction, entry.table) {
            try body(index, entry.change)
            index += 1
        }
    }

    private func isVisible(_ subtransaction: UInt32, _ table: UInt32) -> Bool {
        !abortedSubtransactions.contains(subtransaction) && !excludedTables.contains(table)
    }

    /// Every change in memory at once: for small transactions and tests.
    public func loaded() throws -> [Change] {
        var changes: [Change] = []
        try forEach { _, change in changes.append(change) }
        return changes
    }

    private mutating func index(of change: Change) -> UInt32 {
        if let last = tableNames.last, last.name == change.table, last.schema == change.schema {
            return UInt32(tableNames.count - 1)
        }
        let name = TableName(schema: change.schema, name: change.table)
        if let known = tableIndex[name] { return known }
        let index = UInt32(tableNames.count)
        tableNames.append(name)
        tableIndex[name] = index
        return index
    }

    /// Values share their message's bytes, so a change costs about its values plus
    /// the bookkeeping around them.
    static func estimatedBytes(_ change: Change) -> Int {
        func rowBytes(_ row: Row?) -> Int {
            guard let row else { return 0 }
            var bytes = 32 + row.values.count * 24
            for value in row.values {
                switch value {
                case .text(let data), .binary(let data): bytes += data.count
                case .null, .unchangedToast: break
                }
            }
            return bytes
        }
        return 128 + rowBytes(change.new) + rowBytes(change.old)
    }
}

extension TransactionChanges: Equatable {
    /// Equal when a reader sees the same changes (a spill file that cannot be read equals nothing).
    public static func == (lhs: TransactionChanges, rhs: TransactionChanges) -> Bool {
        guard lhs.count == rhs.count, let left = try? lhs.loaded(), let right = try? rhs.loaded() else { return false }
        return left == right
    }
}

extension TransactionChanges: Hashable {
    public func hash(into hasher: inout Hasher) { hasher.combine(count) }
}

extension TransactionChanges: ExpressibleByArrayLiteral {
    public init(arrayLiteral changes: Change...) { self.init(changes) }
}
