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
    /// How the batch committer numbers the log's rows as it plans their deliveries; nil
    /// for a log whose rows exist already or are written by its fragments.
    public var numberedRows: NumberedLogRows?

    /// The error a cancelled delivery and its log rows end with.
    public static let cancelReason = "cancelled by an operator"

    public init(key: String, table: TableName, recordFragment: String, requeueFragment: String? = nil,
                cancelFragment: String? = nil, endpointCondition: EndpointCondition? = nil, numberedRows: NumberedLogRows? = nil) {
        self.key = key
        self.table = table
        self.recordFragment = recordFragment
        self.requeueFragment = requeueFragment
        self.cancelFragment = cancelFragment
        self.endpointCondition = endpointCondition
        self.numberedRows = numberedRows
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
    /// One JSON object, as text.
    public var payload: String
    /// The log row this delivery will keep current, planned with it and not yet numbered
    /// (`DeliveryLog.numberedRows`); nil once numbered, and for a log that numbers nothing.
    public private(set) var row: PlannedRow?
    /// The log's numbering, when `row` waits for its id.
    public private(set) var numbering: NumberedLogRows?

    public init(log: DeliveryLog, payload: String) {
        logKey = log.key
        self.payload = payload
    }

    /// A report whose log row is planned with it, to be numbered by the batch committer.
    public init(log: DeliveryLog, payload: String, row: PlannedRow) {
        precondition(log.numberedRows != nil, "\(log.key) numbers no rows: a row planned with its report would be lost")
        self.init(log: log, payload: payload)
        self.row = row
        numbering = log.numberedRows
    }

    /// The report naming its row `id` (`"id"`, first in the payload), and that row, with `id`
    /// first. Only a report planned with its row is numbered.
    public func numbered(_ id: String) -> (report: DeliveryReport, row: PlannedRow) {
        guard let row, payload.utf8.first == UInt8(ascii: "{") else {
            preconditionFailure("only a report planned with its row, whose payload is an object, is numbered")
        }
        var writer = JSONWriter(capacity: payload.utf8.count + id.utf8.count + 8)
        writer.beginObject()
        writer.key("id")
        writer.string(id)
        var bytes = writer.bytes
        let members = payload.utf8.dropFirst()
        if members.first != UInt8(ascii: "}") { bytes.append(UInt8(ascii: ",")) }
        bytes.append(contentsOf: members)
        return (DeliveryReport(logKey: logKey, payload: String(decoding: bytes, as: UTF8.self)),
                PlannedRow(table: row.table, columns: ["id"] + row.columns, values: [id] + row.values))
    }

    private init(logKey: String, payload: String) {
        self.logKey = logKey
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

/// A log whose rows the batch committer numbers itself, as it plans the deliveries that keep
/// them current: each such delivery's report carries its row (`DeliveryReport.row`), and
/// the committer gives the row a fresh id, names the id in the report, and writes both in
/// the batch. So the delivery goes straight into `deliveries`, and nothing has to pair
/// deliveries with log rows in the database afterwards (sql/035).
public struct NumberedLogRows: Sendable, Hashable {
    /// A prepared statement of the committer's session (made by the session setup of the
    /// handler that plans these deliveries) that takes a count and returns that many fresh
    /// ids, as text, one a row. Ids come from a sequence or another default that never
    /// returns one twice: one reserved and not used (a batch rolled back, or one that
    /// numbered fewer rows than it reserved) is only a gap.
    public var reservation: String
    /// The table the rows go to: locked against a `TRUNCATE` (which may restart its ids) from
    /// a reservation until the batch that reserved commits.
    public var table: TableName

    public init(reservation: String, table: TableName) {
        self.reservation = reservation
        self.table = table
    }
}
