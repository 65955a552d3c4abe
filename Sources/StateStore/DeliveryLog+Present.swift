import Core
import PlannedEffects
import Replication

extension DeliveryLog {
    /// Those of `logs` whose table this database has, in key order, read with one query: no
    /// delivery can report into a table that does not exist, and a statement naming one fails.
    static func present(_ logs: Set<DeliveryLog>, on db: PostgresConnection) throws(PostgresError) -> [DeliveryLog] {
        let sorted = logs.sorted { $0.key < $1.key }
        guard !sorted.isEmpty else { return [] }
        let found = Set(try db.query("SELECT t FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL",
                                     [postgresArrayLiteral(sorted.map(\.table.description))]).rows.compactMap { $0[0] })
        return sorted.filter { found.contains($0.table.description) }
    }
}
