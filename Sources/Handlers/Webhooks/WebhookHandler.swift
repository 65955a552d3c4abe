import RelayConfiguration
import Core
import Decoding
import Logging
import PlannedEffects

/// What seed 004's triggers and `send_webhook_with_retry()` did, on the durable pipeline:
/// event rules turn a change into event types; every active `webhook_configs` row whose
/// `events` match gets one signed delivery and one `webhook_logs` row, both written with
/// the checkpoint. The log row is planned with its delivery's report: the batch committer
/// numbers it from ids reserved ahead and names the id in the report (sql/035), the
/// delivery goes straight into `deliveries`, and the row is staged and inserted by one
/// statement (`NumberedLogRows`).
///
/// The config cache follows `webhook_configs` through the stream, so a config counts for
/// exactly the changes committed after it. A row that cannot fire (a malformed `events`,
/// `headers` or `retry_config`, a URL that does not parse) is logged with its id and
/// reason, and the stream goes on.
///
/// The secret is never read here: a delivery names its config (`auth = "webhook:<id>"`)
/// and the dispatcher signs each try with the config's secret as it is then, adding the
/// Standard Webhooks headers (`webhook-id` is the delivery's idempotency key) after the
/// config's own, which cannot override them.
public struct WebhookHandler: Handler {
    public static let configsTable = "public.webhook_configs"
    public static let logTable = TableName(schema: "public", name: "webhook_logs")
    /// The committer session's own (035), with `webhook_logs`' own id types:
    /// `changerelay.prepare_numbered_webhook_logs()` makes it.
    public static let stagingTable = TableName(schema: "pg_temp", name: "webhook_logs_numbered")
    public static let configLog = TableName(schema: "changerelay", name: "webhook_config_log")

    public let name = "webhooks"
    public let tables: Set<String>
    public let reports: Set<DeliveryLog>
    public let staging: Staging?
    public let isFollowingOnly: Bool
    public let cache: WebhookConfigCache
    private let rules: [String: [WebhookRule]]
    /// The seed makes four of the rules' tables REPLICA IDENTITY FULL (their bodies carry the
    /// old record): a record's deliveries are ordered by its primary key, not by every column.
    private let primaryKeys: PrimaryKeys
    private let logger: Logger
    private let missingColumns: MissingColumns
    /// The columns each table's rule conditions read, by `schema.table`: what a change of it must carry.
    private let conditionColumns: [String: [String]]

    /// `rules` are the built-in ones followed by the operator's.
    public init(rules: [WebhookRule], cache: WebhookConfigCache, primaryKeys: PrimaryKeys = PrimaryKeys(), logger: Logger) {
        self.init(rules: rules, cache: cache, primaryKeys: primaryKeys, logger: logger, sends: true)
    }

    /// Webhooks that are off: only the config log follows the stream, so that turning them on
    /// again starts from the configs of the checkpoint, not from those of the last run before
    /// they went off. Nothing is planned; deliveries already queued are not its to send.
    public static func followingOnly(cache: WebhookConfigCache, logger: Logger) -> WebhookHandler {
        WebhookHandler(rules: [], cache: cache, primaryKeys: PrimaryKeys(), logger: logger, sends: false)
    }

    private init(rules: [WebhookRule], cache: WebhookConfigCache, primaryKeys: PrimaryKeys, logger: Logger, sends: Bool) {
        isFollowingOnly = !sends
        reports = sends ? [.webhookLog] : []
        staging = sends ? Staging(table: Self.stagingTable, statements: "EXECUTE changerelay_insert_numbered_webhook_logs",
                                  sessionSetup: "SELECT changerelay.prepare_numbered_webhook_logs()") : nil
        self.rules = Dictionary(grouping: rules, by: \.qualifiedTable)
        conditionColumns = self.rules.mapValues { Set($0.compactMap(\.condition?.column)).sorted() }
        tables = Set(rules.map(\.qualifiedTable)).union([Self.configsTable])
        self.cache = cache
        self.primaryKeys = primaryKeys
        self.logger = logger
        missingColumns = MissingColumns(handler: "webhooks", logger: logger)
    }

    public func batchEnded(committed: Bool) { cache.batchEnded(committed: committed) }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        let table = change.schema + "." + change.table
        var effects = Effects()
        if table == Self.configsTable {
            effects.rows = try follow(configChange: change, at: index, lsn: transaction.commitLSN)
        }
        guard let operation = Self.operation(of: change), let tableRules = rules[table] else { return effects }
        if let row = change.new {
            // A rule's condition on a column the row lacks never holds: said, not silent.
            _ = missingColumns.check(row, needs: conditionColumns[table] ?? [], change: change)
        }
        let new: [String: String]? = if let row = change.new { try Self.texts(row, change: change, handler: name) } else { nil }
        let old: [String: String]? = if let row = change.old { try Self.texts(row, change: change, handler: name) } else { nil }
        let columns = (change.new ?? change.old)?.columns ?? []
        // One event of each type: two rules that fire with one type (an operator's rule that
        // repeats a built-in one, or two conditions that both hold) name the same webhook-id,
        // which `deliveries` holds once; planned twice, it refused the whole batch.
        var seen: Set<String> = []
        let eventTypes = tableRules.filter { rule in
            rule.fires(for: operation, new: new, old: old) { column in
                columns.contains { $0.name == column && $0.typeOID == Self.boolOID }
            }
        }.map(\.eventType).filter { seen.insert($0).inserted }
        guard !eventTypes.isEmpty else { return effects }

        let data = try Self.data(of: change, handler: name)
        let position = transaction.position(of: change, at: index)
        let record = primaryKeys.recordKey(of: change)
        let formerRecord = primaryKeys.formerRecordKey(of: change)
        for eventType in eventTypes {
            let body = Self.body(type: eventType, timestamp: transaction.commitTime.rfc3339, data: data)
            for config in cache.subscribers(of: eventType) {
                let webhookID = "msg_" + StableID.uuid5(namespace: StableID.namespace,
                                                        name: position.key(handler: name, suffix: config.id + ":" + eventType))
                effects.deliveries.append(PlannedDelivery(
                    target: config.id + ":" + eventType, url: config.url,
                    headers: config.headers,
                    auth: WebhookDeliveryNames.credential(configID: config.id), body: body,
                    orderingKey: "webhook:" + config.id + ":" + table + ":" + (record ?? webhookID),
                    formerOrderingKey: formerRecord.map { "webhook:" + config.id + ":" + table + ":" + $0 },
                    retryPolicy: config.retryPolicy,
                    report: .webhookLog(webhookID: webhookID, configID: config.id, eventType: eventType, body: body),
                    endpoint: WebhookDeliveryNames.endpoint(configID: config.id), idempotencyKey: webhookID))
            }
        }
        return effects
    }

    // MARK: - The config cache, from the stream

    /// Updates the cache and returns what `webhook_config_log` records of the change:
    /// written with the checkpoint, it is what the cache is rebuilt from after a restart.
    private func follow(configChange change: Change, at index: Int, lsn: LSN) throws(HandlerError) -> [PlannedRow] {
        func logRow(_ operation: String, id: String? = nil, _ row: [String: String] = [:],
                    unchanged: Set<String> = []) -> PlannedRow {
            PlannedRow(table: Self.configLog, [
                "commit_lsn": "\(lsn)", "change_index": "\(index)", "operation": operation, "config_id": id,
                "name": row["name"], "url": row["url"], "events": row["events"], "headers": row["headers"],
                "retry_config": row["retry_config"], "is_active": row["is_active"],
                "unchanged": "{" + unchanged.sorted().joined(separator: ",") + "}",
            ])
        }
        switch change.operation {
        case .insert, .update:
            guard let new = change.new else { return [] }
            let row = try Self.texts(new, change: change, handler: name)
            var rows: [PlannedRow] = []
            var formerID: String?
            if change.operation == .update, let old = change.old,
               let oldID = try Self.texts(old, change: change, handler: name)["id"], oldID != row["id"] {
                formerID = oldID
                rows.append(logRow("delete", id: oldID))
            }
            guard let id = row["id"] else {
                if let formerID { cache.remove(formerID) }
                return rows
            }
            // Columns this UPDATE left alone in TOAST keep what is known of them, under the
            // id the row had before if the UPDATE changed it.
            let unchanged = Set(zip(new.columns, new.values).compactMap { column, value in
                if case .unchangedToast = value { column.name } else { nil }
            })
            let parsed = cache.record(id, fields: row, unchanged: unchanged, formerID: formerID)
            if let formerID { cache.remove(formerID) }
            if case .failure(let problem) = parsed, row["is_active"].flatMap(postgresBoolean) == true {
                logger.warning("webhook config cannot fire; it is skipped until it is fixed", metadata: [
                    "config": "\(id)", "lsn": "\(lsn)", "reason": "\(problem.reason)",
                ])
            }
            // The log holds the row as known, so a restart rebuilds it without the former id.
            let known = cache.fields(id: id) ?? row
            rows.append(logRow("upsert", id: id, known, unchanged: unchanged.filter { known[$0] == nil }))
            return rows
        case .delete:
            guard let old = change.old, let id = try Self.texts(old, change: change, handler: name)["id"] else { return [] }
            cache.remove(id)
            return [logRow("delete", id: id)]
        case .truncate:
            cache.removeEverything()
            return [logRow("truncate")]
        case .read:
            // The cache holds every config already: a backfilled one changes nothing.
            return []
        }
    }

    // MARK: - Events

    private static let boolOID: UInt32 = 16

    private static func operation(of change: Change) -> WebhookRule.Operation? {
        switch change.operation {
        case .insert: .insert
        case .update: .update
        case .delete: .delete
        case .read: .read
        case .truncate: nil
        }
    }

    private static func texts(_ row: Row, change: Change, handler: String) throws(HandlerError) -> [String: String] {
        var texts: [String: String] = [:]
        for (column, value) in zip(row.columns, row.values) {
            switch value {
            case .text(let bytes): texts[column.name] = String(decoding: bytes, as: UTF8.self)
            case .null, .unchangedToast: break
            case .binary:
                throw HandlerError(handler: handler, table: change.schema + "." + change.table, key: change.loggedKey,
                                   reason: "column \(column.name) arrived in binary form; run without pgoutput binary mode")
            }
        }
        return texts
    }

    /// `{"schema", "table", "record", "old_record"}`, values as `tail` renders them. A large
    /// (TOASTed) value an UPDATE left alone is not in the stream's new row: it is taken from
    /// the old row when the table sends it whole (REPLICA IDENTITY FULL), as the seed's
    /// trigger sent the whole `NEW`; otherwise its column is named in `unchanged_toast`, as
    /// `tail` does, so that a receiver can tell "unchanged" from "absent".
    private static func data(of change: Change, handler: String) throws(HandlerError) -> [UInt8] {
        var writer = JSONWriter(capacity: 512, storableAsJSONB: true)
        writer.beginObject()
        writer.key("schema")
        writer.string(change.schema)
        writer.key("table")
        writer.string(change.table)
        let new = change.new.map { new in change.old.map(new.fillingUnchangedToast) ?? new }
        do {
            writer.key("record")
            if let new { try ChangeRenderer.appendRow(new, of: change, to: &writer) } else { writer.null() }
            writer.key("old_record")
            if let old = change.old { try ChangeRenderer.appendRow(old, of: change, to: &writer) } else { writer.null() }
        } catch {
            throw HandlerError(handler: handler, table: change.schema + "." + change.table, key: change.loggedKey,
                               reason: error.description)
        }
        if let new { ChangeRenderer.appendUnchangedToast(of: new, to: &writer) }
        writer.endObject()
        return writer.bytes
    }

    static func body(type: String, timestamp: String, data: [UInt8]) -> String {
        var writer = JSONWriter(capacity: data.count + type.utf8.count + 64)
        writer.beginObject()
        writer.key("type")
        writer.string(type)
        writer.key("timestamp")
        writer.string(timestamp)
        writer.key("data")
        writer.embedded(data)
        writer.endObject()
        return writer.string
    }
}
