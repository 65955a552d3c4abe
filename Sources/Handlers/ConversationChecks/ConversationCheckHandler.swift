import Core
import Decoding
import Logging
import Metrics
import PlannedEffects

/// What the `check_conversations` trigger did with `net.http_post`: a new or changed
/// conversation that has an ElevenLabs id and is not processed yet is sent to the
/// `check-conversation` edge function, with retries, and logged in
/// `trigger_execution_logs`: one `queued` row when planned, and one
/// `check_conversations_trigger_attempt` row per try, which the dispatcher writes with
/// the try's record (the delivery's report).
///
/// When the edge function marks the conversation processed, the resulting UPDATE
/// changes `status` to `processed` and is skipped, so there is no loop.
public struct ConversationCheckHandler: Handler {
    public struct Settings: Sendable, Hashable {
        /// `{functions.base_url}/check-conversation`.
        public var url: String
        public var maxAttempts: Int
        public var retryDelay: Duration

        public init(baseURL: String, maxAttempts: Int = 3, retryDelay: Duration = .seconds(10)) {
            url = (baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL) + "/check-conversation"
            self.maxAttempts = maxAttempts
            self.retryDelay = retryDelay
        }
    }

    public static let table = "public.user_conversations"
    public static let logTable = TableName(schema: "public", name: "trigger_execution_logs")
    public static let triggerName = "check_conversations_trigger"
    public static let attemptTriggerName = "check_conversations_trigger_attempt"

    public let name = "conversation_checks"
    public let tables: Set<String> = [Self.table]
    public let reports: Set<DeliveryLog> = [.triggerAttempts]
    public let settings: Settings
    /// `changerelay_conversation_checks_skipped_total{reason}`: changes that called for no check.
    private let skipped: [Skip: Counter]

    public static let skippedMetric = "changerelay_conversation_checks_skipped_total"

    private let missingColumns: MissingColumns

    public init(_ settings: Settings, metrics: any MetricsFactory = MetricsSystem.factory,
                logger: Logger = Logger(label: "changerelay.conversation_checks")) {
        self.settings = settings
        missingColumns = MissingColumns(handler: "conversation_checks", logger: logger)
        skipped = Dictionary(uniqueKeysWithValues: Skip.allCases.map { reason in
            (reason, Counter(label: Self.skippedMetric, dimensions: [("reason", reason.rawValue)], factory: metrics))
        })
    }

    /// Why a change calls for no check.
    public enum Skip: String, Sendable, Hashable, CaseIterable {
        case noElevenLabsID = "no_elevenlabs_id"
        case processed
        case unrelatedUpdate = "unrelated_update"
        case notInsertOrUpdate = "not_insert_or_update"
        /// The table has no column the check decides by (renamed or dropped): warned once.
        case missingColumn = "missing_column"
    }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        switch try decide(change) {
        case .planned(let effects):
            return effects
        case .skipped(let reason):
            skipped[reason]?.increment()
            return .none
        }
    }

    public enum Decision: Sendable, Hashable {
        case planned(Effects)
        case skipped(Skip)
    }

    /// The decision with its reason: `plan` keeps only the effects.
    public func decide(_ change: Change) throws(HandlerError) -> Decision {
        // A backfilled row is checked as an INSERT would be: the skip rules apply.
        guard [.insert, .update, .read].contains(change.operation), let new = change.new else {
            return .skipped(.notInsertOrUpdate)
        }
        guard missingColumns.check(new, needs: ["id", "elevenlabs_conversation_id", "status"], change: change).isEmpty else {
            return .skipped(.missingColumn)
        }
        let row: Fields
        if change.operation == .update {
            guard let oldRow = change.old, oldRow.columns.count == new.columns.count else {
                throw failure(change, "an UPDATE without the whole old row: user_conversations needs REPLICA IDENTITY FULL, on each partition too if it is partitioned (changerelay doctor names them); "
                           + "updates already in the slot stay without it: to get past them, run once with conversation_checks.enabled = false")
            }
            row = try Fields(new.fillingUnchangedToast(from: oldRow), handler: name, change: change)
            let old = try Fields(oldRow, handler: name, change: change)
            if old.holdsTheSame("elevenlabs_conversation_id", as: row), old.holdsTheSame("status", as: row) {
                return .skipped(.unrelatedUpdate)
            }
        } else {
            row = try Fields(new, handler: name, change: change)
        }
        guard let elevenLabsID = row["elevenlabs_conversation_id"],
              !elevenLabsID.allSatisfy(\.isWhitespace) else { return .skipped(.noElevenLabsID) }
        if row["status"] == "processed" { return .skipped(.processed) }
        guard let id = row["id"] else { throw failure(change, "the row has no id") }

        var body = JSONWriter(capacity: 256)
        body.beginObject()
        body.key("conversation_id")
        // The seed's bigint as a number; an id of another type (a table retyped to text or
        // uuid) as the string it is, as the seed's trigger would have sent it: text such as
        // `007` or `+5` reads as an integer but is no JSON number.
        if let number = Int64(id), String(number) == id { body.number(text: Array(id.utf8)) } else { body.string(id) }
        for field in ["elevenlabs_conversation_id", "clerk_id", "agent_id", "status"] {
            body.key(field)
            if let value = row[field] { body.string(value) } else { body.null() }
        }
        body.endObject()

        var details = JSONWriter(capacity: 256)
        details.beginObject()
        details.key("elevenlabs_conversation_id")
        details.string(elevenLabsID)
        details.key("operation")
        details.string(change.operation.rawValue)
        details.key("url")
        details.string(settings.url)
        details.endObject()

        let queued = PlannedRow(table: Self.logTable, [
            "trigger_name": Self.triggerName, "record_id": id, "attempt": "0", "status": "queued",
            "details": details.string,
        ])
        let delivery = PlannedDelivery(
            target: "check-conversation", url: settings.url,
            headers: [.init("Content-Type", "application/json")], auth: "service_key", body: body.string,
            orderingKey: Self.table + ":" + id,
            retryPolicy: .fixed(delay: settings.retryDelay, maxAttempts: settings.maxAttempts),
            report: .triggerAttempts(triggerName: Self.attemptTriggerName, recordID: id), attemptField: "attempt")
        return .planned(Effects(deliveries: [delivery], rows: [queued]))
    }

    private func failure(_ change: Change, _ reason: String) -> HandlerError {
        HandlerError(handler: name, table: change.schema + "." + change.table, key: change.loggedKey, reason: reason)
    }
}
