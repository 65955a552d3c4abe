import Core
import Decoding
import PlannedEffects

/// One delivery per change of the configured tables, its body the change as `tail`
/// prints it. It exercises the whole pipeline before the real handlers exist, and is
/// what the planning and dispatch benchmarks run.
public struct EchoHandler: Handler {
    public let name = "echo"
    public let tables: Set<String>
    public let url: String
    public let retryPolicy: RetryPolicy
    /// A record's deliveries are ordered by its primary key, whatever the table's replica identity.
    private let primaryKeys: PrimaryKeys

    public init(url: String, tables: [String],
                retryPolicy: RetryPolicy = .exponential(base: .milliseconds(500), cap: .seconds(60), maxAttempts: 10, jitter: .full),
                primaryKeys: PrimaryKeys = PrimaryKeys()) {
        self.url = url
        self.tables = Set(tables.map(Self.qualified))
        self.retryPolicy = retryPolicy
        self.primaryKeys = primaryKeys
    }

    /// `schema.table` for a configured name: one without a schema is in `public`.
    public static func qualified(_ table: String) -> String {
        table.contains(".") ? table : "public." + table
    }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        let body: String
        do { body = try ChangeRenderer.line(change, of: transaction) } catch {
            throw HandlerError(handler: name, table: change.schema + "." + change.table, key: change.loggedKey,
                               reason: error.description)
        }
        let table = change.schema + "." + change.table
        let entity = table + (primaryKeys.recordKey(of: change).map { ":" + $0 } ?? "")
        return Effects(deliveries: [PlannedDelivery(
            target: "echo", url: url, headers: [.init("Content-Type", "application/json")],
            body: body.hasSuffix("\n") ? String(body.dropLast()) : body,
            orderingKey: entity, formerOrderingKey: primaryKeys.formerRecordKey(of: change).map { table + ":" + $0 },
            retryPolicy: retryPolicy)])
    }
}
