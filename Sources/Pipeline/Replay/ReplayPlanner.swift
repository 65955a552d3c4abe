import Core
import Decoding
import Handlers
import PlannedEffects
import Replication
import StateStore

/// Plans a replay's transactions: every change through the handlers of its table, in commit
/// order and with the positions (so the keys) the live router gives, but with each handler's
/// effects for one change taken together, as a unit, so that what is planned already is
/// left out: deliveries by their idempotency key, rows by their own key or with their
/// change's deliveries (`ReplayRowRule`).
///
/// Keys are looked up a chunk of units at a time, before anything of the chunk is written,
/// with one indexed statement per kind of key. Deciding first, rather than inserting and
/// letting a unique index refuse duplicates, is what lets a `--dry-run` count exactly what a
/// replay would write without writing, lets a row with no key of its own follow its
/// delivery, and keeps the write a plain COPY. No one else plans these keys meanwhile: the
/// live service plans only past its position, where the replay's end is capped
/// (`ReplayEnd`); a second replay of another slot over the same range at the same time would
/// make a batch fail on the unique index and stop, doubling nothing.
public final class ReplayPlanner {
    private let byTable: [String: [ReplayedHandler]]
    private let stateURL: String
    private var connection: PostgresConnection?
    private var units: [Unit] = []
    private var effectCount = 0

    /// A chunk is decided once its units hold about this many effects: a look-up's worth.
    static let chunkEffects = 1000

    struct Unit {
        var handler: ReplayedHandler
        var lsn: LSN
        var effects: [PlannedEffect]
    }

    public init(handlers: [ReplayedHandler], stateURL: String) {
        var byTable: [String: [ReplayedHandler]] = [:]
        for handler in handlers {
            for table in handler.tables { byTable[table, default: []].append(handler) }
        }
        self.byTable = byTable
        self.stateURL = stateURL
    }

    /// Hands to `emit` the effects of `transaction` that are not planned already, and counts
    /// both kinds in each handler's tally (a dry run's `emit` drops them).
    public func plan(_ transaction: Transaction, into emit: (PlannedEffect) throws -> Void) throws {
        // A transaction read again after a failure starts over.
        units.removeAll(keepingCapacity: true)
        effectCount = 0
        try transaction.changes.forEach { index, change in
            guard let handlers = byTable[change.schema + "." + change.table] else { return }
            let position = transaction.position(of: change, at: index)
            for handler in handlers {
                let effects = try handler.plan(change, at: index, in: transaction)
                guard !effects.rows.isEmpty || !effects.deliveries.isEmpty else { continue }
                let planned = effects.rows.map(PlannedEffect.row) + effects.deliveries.map {
                    PlannedEffect.delivery(PositionedDelivery(handler: handler.name, position: position, delivery: $0))
                }
                units.append(Unit(handler: handler, lsn: transaction.commitLSN, effects: planned))
                effectCount += planned.count
                if effectCount >= Self.chunkEffects { try decide(into: emit) }
            }
        }
        try decide(into: emit)
    }

    /// Looks the buffered units' keys up, then writes what is new of each.
    private func decide(into emit: (PlannedEffect) throws -> Void) throws {
        guard !units.isEmpty else { return }
        var keys: [KeyLookup: [String]] = [:]
        for unit in units {
            for (lookup, key) in try Self.keys(of: unit.effects, handler: unit.handler.name) { keys[lookup, default: []].append(key) }
        }
        var known: [KeyLookup: Set<String>] = [:]
        for (lookup, chunk) in keys { known[lookup] = try present(chunk, lookup) }
        for unit in units {
            let verdict = try Self.verdict(on: unit.effects, handler: unit.handler.name, lsn: unit.lsn, known: known)
            unit.handler.tally.record(new: verdict.new, alreadyPlanned: verdict.alreadyPlanned)
            for effect in verdict.write { try emit(effect) }
        }
        units.removeAll(keepingCapacity: true)
        effectCount = 0
    }

    private func present(_ keys: [String], _ lookup: KeyLookup) throws(PostgresError) -> Set<String> {
        do {
            let connection = try connected()
            let rows = try connection.query(prepared: lookup.name, lookup.sql, [postgresArrayLiteral(keys)]).rows
            return Set(rows.compactMap { $0.first ?? nil })
        } catch {
            // In doubt: a fresh connection for the next try; the stream re-sends what was not committed.
            connection = nil
            throw error
        }
    }

    private func connected() throws(PostgresError) -> PostgresConnection {
        if let connection { return connection }
        let fresh = try PostgresConnection(url: stateURL)
        connection = fresh
        return fresh
    }

    // MARK: - Deciding a unit (pure)

    /// The keys a unit's effects are known by, with the statement that finds each.
    static func keys(of effects: [PlannedEffect], handler: String) throws(ReplayError) -> [(KeyLookup, String)] {
        var keys: [(KeyLookup, String)] = []
        for effect in effects {
            switch effect {
            case .delivery(let delivery):
                keys.append((.deliveries, delivery.idempotencyKey))
            case .row(let row):
                guard let rule = ReplayRowRule.rule(for: row.table) else {
                    throw .unreplayableRows(handler: handler, table: row.table)
                }
                if case .keyed(let column, let lookup) = rule, let key = row.value(of: column) { keys.append((lookup, key)) }
            }
        }
        return keys
    }

    /// What is written of one unit, and how many of its effects are new and planned already.
    struct Verdict: Equatable {
        var write: [PlannedEffect] = []
        var new = 0
        var alreadyPlanned = 0
    }

    /// A delivery is new unless its key is known; a keyed row likewise; a row that follows
    /// the deliveries is written when one of them is new. Only deliveries and keyed rows are
    /// effects to count: a follower is part of its delivery's effect.
    static func verdict(on effects: [PlannedEffect], handler: String, lsn: LSN,
                        known: [KeyLookup: Set<String>]) throws(ReplayError) -> Verdict {
        func isKnown(_ key: String, _ lookup: KeyLookup) -> Bool { known[lookup]?.contains(key) == true }
        var hasDelivery = false, hasNewDelivery = false
        for case .delivery(let delivery) in effects {
            hasDelivery = true
            if !isKnown(delivery.idempotencyKey, .deliveries) { hasNewDelivery = true }
        }
        var verdict = Verdict()
        for effect in effects {
            let isNew: Bool
            switch effect {
            case .delivery(let delivery):
                isNew = !isKnown(delivery.idempotencyKey, .deliveries)
                if isNew { verdict.new += 1 } else { verdict.alreadyPlanned += 1 }
            case .row(let row):
                switch ReplayRowRule.rule(for: row.table) {
                case .keyed(let column, let lookup):
                    isNew = !(row.value(of: column).map { isKnown($0, lookup) } ?? false)
                    if isNew { verdict.new += 1 } else { verdict.alreadyPlanned += 1 }
                case .followsDeliveries:
                    guard hasDelivery else { throw .rowWithoutDelivery(handler: handler, table: row.table, lsn: lsn) }
                    isNew = hasNewDelivery
                case nil:
                    throw .unreplayableRows(handler: handler, table: row.table)
                }
            }
            if isNew { verdict.write.append(effect) }
        }
        return verdict
    }
}

extension PlannedRow {
    /// The value planned for `column`; nil when it is NULL or not planned.
    func value(of column: String) -> String? {
        columns.firstIndex(of: column).flatMap { values[$0] }
    }
}
