import Decoding

/// A log row of the seed's own tables that follows a delivery, written by the statement
/// that records each attempt: the seed's verification queries then see what its triggers
/// used to write, and the log can never disagree with the delivery.
///
/// The handler that plans such deliveries describes its log, SQL included, beside its own
/// code, and lists it in `Handler.reports`; the state store only splices the fragments of
/// the logs it is given into its statements. A new log is a new value, not an edit here.
public struct DeliveryLog: Sendable, Hashable {
    /// Names the log in `deliveries.report` (`{"<key>": payload}`); the fragments find the
    /// deliveries that report into it with `report ? '<key>'`. Stored in rows, so a live
    /// key is never renamed.
    public var key: String
    /// The table its rows are in. `deliveries retry` leaves out the requeue fragment of a
    /// table the state database does not have: no delivery can report into it there.
    public var table: TableName
    /// A data-modifying CTE, `name AS (...)` with a name no other log uses, over `updated`
    /// (the attempts just recorded: `id`, `status`, `http_status`, `error`, `delay_ms`,
    /// `attempt`, `started`, `body` and the delivery's `report`), run in the statement that
    /// records them, so a try and its log row commit together.
    public var recordFragment: String
    /// A data-modifying CTE over `requeued` (the deliveries `deliveries retry` sends again:
    /// `id`, `report`), run in the statement that re-queues them; nil where the log has
    /// nothing to undo when a delivery is tried again.
    public var requeueFragment: String?
    /// A data-modifying CTE over `cancelled` (the deliveries `deliveries cancel` ends: `id`,
    /// `report`) that finishes their log rows, run in the statement that ends them; nil where
    /// the log cannot say so, and then its deliveries are not cancelled.
    public var cancelFragment: String?
    /// Pauses whole endpoints: the deliveries of an endpoint this log's handler names are
    /// claimed only while the condition holds, and otherwise wait, paused, in their order
    /// (a webhook whose config is inactive). nil for none. Decided per endpoint, not per
    /// row, so a paused endpoint's backlog costs a claim nothing.
    public var endpointCondition: EndpointCondition?
    /// Where the deliveries that report into this log are staged, in `deliveries`' own
    /// columns (`DeliveryRows.target`), instead of being copied into `deliveries`: the
    /// statements of the handler that stages rows there insert each one together with its
    /// log row, so the delivery's report can name the row it keeps current. nil: copied
    /// into `deliveries` directly.
    public var stagingTable: TableName?

    /// The error a cancelled delivery and its log rows end with.
    public static let cancelReason = "cancelled by an operator"

    public init(key: String, table: TableName, recordFragment: String, requeueFragment: String? = nil,
                cancelFragment: String? = nil, endpointCondition: EndpointCondition? = nil, stagingTable: TableName? = nil) {
        self.key = key
        self.table = table
        self.recordFragment = recordFragment
        self.requeueFragment = requeueFragment
        self.cancelFragment = cancelFragment
        self.endpointCondition = endpointCondition
        self.stagingTable = stagingTable
    }
}

/// When the deliveries of some endpoints may be sent (`DeliveryLog.endpointCondition`).
public struct EndpointCondition: Sendable, Hashable {
    /// The endpoints it applies to: those whose name starts with it (`webhook:`).
    public var prefix: String
    /// A condition over `e.endpoint` (the endpoint's name, text).
    public var sql: String

    public init(prefix: String, sql: String) {
        self.prefix = prefix
        self.sql = sql
    }
}

/// What a planned delivery keeps current: which log, and the payload that log's fragments
/// read to find or fill its row (a trigger name and record id, an execution id).
public struct DeliveryReport: Sendable, Hashable {
    /// The `DeliveryLog.key` of the log.
    public var logKey: String
    /// One JSON value, as text.
    public var payload: String

    public init(log: DeliveryLog, payload: String) {
        logKey = log.key
        self.payload = payload
    }

    /// The `deliveries.report` value: `{"<log key>": payload}`.
    public var json: String {
        var writer = JSONWriter(capacity: logKey.utf8.count + payload.utf8.count + 8)
        writer.beginObject()
        writer.key(logKey)
        writer.embedded(payload.utf8)
        writer.endObject()
        return writer.string
    }
}
