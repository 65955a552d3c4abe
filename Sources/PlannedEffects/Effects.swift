import Core
import Decoding

/// An HTTP request a handler wants made, at least once, with a stable idempotency key.
public struct PlannedDelivery: Sendable, Hashable {
    /// Names the target inside the handler (an edge function, a webhook); part of the key.
    public var target: String
    public var url: String
    public var method: String
    public var headers: [Header]
    /// A credential the dispatcher adds at send time (`service_key`); secrets never sit in rows.
    public var auth: String?
    public var body: String
    /// Deliveries with the same key are sent one at a time, in order.
    public var orderingKey: String?
    /// The key the record had before this change moved it to `orderingKey` (an UPDATE of its
    /// primary key): the delivery is also ordered among that key's deliveries, after the
    /// earlier ones and before the later ones, or the record's two keys race.
    public var formerOrderingKey: String?
    public var retryPolicy: RetryPolicy
    /// The log row this delivery keeps current, if any: its handler lists that log in `Handler.reports`.
    public var report: DeliveryReport?
    /// A top-level field of the JSON object body set to the attempt number at send time.
    public var attemptField: String?
    /// The receiver this delivery counts against for per-endpoint isolation (a webhook
    /// config): at most `webhooks.max_in_flight_per_endpoint` of one endpoint's deliveries
    /// are in flight at once. nil: no limit beyond the dispatcher's own.
    public var endpoint: String?
    /// A key the receiver already knows the event by (a webhook's `webhook-id`), sent as
    /// `Idempotency-Key`; nil for the key derived from the change's position and `target`.
    public var idempotencyKey: String?

    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(target: String, url: String, method: String = "POST", headers: [Header] = [], auth: String? = nil,
                body: String, orderingKey: String?, formerOrderingKey: String? = nil, retryPolicy: RetryPolicy,
                report: DeliveryReport? = nil, attemptField: String? = nil, endpoint: String? = nil,
                idempotencyKey: String? = nil) {
        self.target = target
        self.url = url
        self.method = method
        self.headers = headers
        self.auth = auth
        self.body = body
        self.orderingKey = orderingKey
        self.formerOrderingKey = formerOrderingKey
        self.retryPolicy = retryPolicy
        self.report = report
        self.attemptField = attemptField
        self.endpoint = endpoint
        self.idempotencyKey = idempotencyKey
    }
}

/// A row to insert into the state database, in the same transaction as the checkpoint:
/// written exactly once however often the change is read again.
public struct PlannedRow: Sendable, Hashable {
    public var table: TableName
    public var columns: [String]
    /// In `columns`' order, as Postgres text input; nil is NULL.
    public var values: [String?]

    public init(table: TableName, _ pairs: KeyValuePairs<String, String?>) {
        self.table = table
        columns = pairs.map(\.key)
        values = pairs.map(\.value)
    }

    public init(table: TableName, columns: [String], values: [String?]) {
        precondition(columns.count == values.count, "a row of \(table) has \(columns.count) columns and \(values.count) values")
        self.table = table
        self.columns = columns
        self.values = values
    }
}

/// How a handler whose effects are more than inserts (upserts, deletes, comparisons)
/// still gets them exactly once: its rows are copied into `table` with the batch, then
/// `statements` apply them with set-based SQL in the checkpoint transaction. Their last
/// result reaches the handler once the batch is committed. The committer then empties
/// `table` and `scratchTables`, in the same transaction: no batch sees another's rows.
public struct Staging: Sendable, Hashable {
    public var table: TableName
    /// One or more statements, sent as one simple query.
    public var statements: String
    /// Creates `table` (in `pg_temp`) as a temporary table of the committer's session; run
    /// on each connection it opens, before its first batch. nil when `table` is shared.
    /// A temporary staging table writes no WAL (which the service decodes when the state
    /// database is the source) and holds its own session's rows only. It is created
    /// `ON COMMIT PRESERVE ROWS`: Postgres truncates every `ON COMMIT DELETE ROWS` table of
    /// a session at each commit that touched any temporary table, used or not, about
    /// 0.35 ms a table (sql/024).
    public var sessionSetup: String?
    /// Tables of the committer's session that `statements` fill from `table` (the staged
    /// rows expanded once, for several statements to read); emptied with it.
    public var scratchTables: [TableName]

    public init(table: TableName, statements: String, sessionSetup: String? = nil, scratchTables: [TableName] = []) {
        self.table = table
        self.statements = statements
        self.sessionSetup = sessionSetup
        self.scratchTables = scratchTables
    }

    /// What the committer runs after `statements`, in the same transaction: deletes the rows
    /// of `table` and `scratchTables`, or truncates them (`StagingSweep` says which).
    public func emptying(truncating: Bool) -> String {
        let tables = ([table] + scratchTables).map(\.quoted)
        return truncating ? "TRUNCATE " + tables.joined(separator: ", ")
            : tables.map { "DELETE FROM " + $0 }.joined(separator: ";\n")
    }
}

/// Everything one handler plans for one change.
public struct Effects: Sendable, Hashable {
    public var deliveries: [PlannedDelivery]
    public var rows: [PlannedRow]

    public init(deliveries: [PlannedDelivery] = [], rows: [PlannedRow] = []) {
        self.deliveries = deliveries
        self.rows = rows
    }

    public static let none = Effects()
}

/// What the router hands the batch committer, in order.
public enum PlannedEffect: Sendable, Hashable {
    case delivery(PositionedDelivery)
    case row(PlannedRow)
}

/// A delivery placed in the stream: where it came from decides its idempotency key.
public struct PositionedDelivery: Sendable, Hashable {
    public var handler: String
    /// The change that called for it.
    public var position: ChangePosition
    public var delivery: PlannedDelivery

    public init(handler: String, position: ChangePosition, delivery: PlannedDelivery) {
        self.handler = handler
        self.position = position
        self.delivery = delivery
    }

    /// `handler:commitLSN:changeIndex:target`: stable across crashes, replays and backfills of the same change.
    public var idempotencyKey: String {
        delivery.idempotencyKey ?? position.key(handler: handler, suffix: delivery.target)
    }
}
