import Core
import Decoding
import Logging
import PlannedEffects

/// What seed 002's `buffered_messages` trigger, its `message_buffer` tables and the
/// `buffer-processor` poll did: incoming messages are gathered per conversation into a
/// window (`BufferBook`), and each closed window is sent once to the `buffer-processor`
/// edge function with its messages in commit order and their contents joined.
///
/// Windows are decided by commit times, so a backlog, a restart or a replay gives the same
/// ones. A window closes when a commit later than its deadline is read: another change, or
/// the tick `CommitTicker` writes into the WAL when the deadline passes on a quiet database.
///
/// Every step is a staged row applied in the checkpoint transaction
/// (`changerelay.apply_staged_message_buffers()`): `message_buffer` kept current,
/// `buffered_messages.buffer_id` set, the open buffers' messages kept in
/// `changerelay.buffer_messages` (so a restart carries on where the checkpoint left off),
/// and one `buffer_processing_jobs` row per flush, which each try keeps current.
public struct MessageBufferingHandler: Handler {
    public struct Settings: Sendable, Hashable {
        /// `{functions.base_url}/buffer-processor`.
        public var url: String
        public var windows: BufferBook.Windows
        /// The seed's jobs were tried three times.
        public var maxAttempts: Int
        public var retryDelay: Duration

        public init(baseURL: String, windows: BufferBook.Windows, maxAttempts: Int = 3, retryDelay: Duration = .seconds(5)) {
            url = (baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL) + "/buffer-processor"
            self.windows = windows
            self.maxAttempts = maxAttempts
            self.retryDelay = retryDelay
        }
    }

    public static let messagesTable = "public.buffered_messages"
    public static let flagsTable = "public.feature_flags"
    public static let flagName = "message_buffering"
    /// The committer session's own (024): `changerelay.create_message_buffer_staging_kept()` makes it.
    public static let stagingTable = TableName(schema: "pg_temp", name: "message_buffer_staged")

    public let name = "message_buffering"
    public let tables: Set<String> = [Self.messagesTable, Self.flagsTable]
    public let reports: Set<DeliveryLog> = [.bufferProcessingJob]
    public let staging: Staging? = Staging(table: Self.stagingTable,
                                           statements: "SELECT changerelay.release_reused_buffer_ids(); "
                                               + "SELECT changerelay.apply_staged_message_buffers() AS applied",
                                           sessionSetup: "SELECT changerelay.create_message_buffer_staging_kept()")
    public let followsCommitTime = true
    public let settings: Settings
    public let state: MessageBufferState
    private let logger: Logger
    private let missingColumns: MissingColumns

    public init(_ settings: Settings, state: MessageBufferState,
                logger: Logger = Logger(label: "changerelay.message_buffering")) {
        self.settings = settings
        self.state = state
        self.logger = logger
        missingColumns = MissingColumns(handler: "message_buffering", logger: logger)
    }

    public func committed(_ transaction: Transaction) throws(HandlerError) -> Effects {
        let due = state.update { $0.book.closeDue(before: transaction.commitTime) }
        var effects = Effects()
        for buffer in due {
            flush(buffer, due: buffer.deadline(settings.windows), at: transaction.position(ofChange: -1), with: nil,
                  into: &effects)
        }
        return effects
    }

    public func plan(_ change: Change, at index: Int, in transaction: Transaction) throws(HandlerError) -> Effects {
        // Windows are decided by commit times: a backfilled message has none of its own, and
        // its conversation's window closed long ago. The flag's state is known already.
        guard change.operation != .read else { return .none }
        let position = transaction.position(ofChange: index)
        if change.schema + "." + change.table == Self.flagsTable {
            return try followFlag(change, at: position, committed: transaction.commitTime)
        }
        // A column renamed or dropped is said, not read as NULL: the message would have been
        // skipped (no conversation, not incoming) or joined with no content, without a word.
        guard change.operation == .insert, let row = change.new,
              missingColumns.check(row, needs: ["id", "conversation_id", "message_type", "content"], change: change).isEmpty
        else { return .none }
        let fields = try Fields(row, handler: name, change: change)
        guard fields["message_type"] == "incoming", let id = fields["id"], let conversation = fields["conversation_id"] else {
            return .none
        }
        var record = JSONWriter(capacity: 256, storableAsJSONB: true)
        do { try ChangeRenderer.appendRow(row, of: change, to: &record) } catch {
            throw HandlerError(handler: name, table: Self.messagesTable, key: change.loggedKey, reason: error.description)
        }
        let message = BufferBook.Message(id: id, record: record.string, content: fields["content"] ?? "")
        let arrival = state.update { state in
            state.book.add(message, conversationID: conversation, at: transaction.commitTime, buffering: state.buffering)
        }
        var effects = Effects()
        if arrival.closed {
            // Full, or buffering is off: due with the message that closed it.
            flush(arrival.buffer, due: transaction.commitTime, at: position, with: message, into: &effects)
        } else {
            effects.rows.append(stagedBuffer(arrival.buffer, status: "active", due: arrival.buffer.deadline(settings.windows),
                                             at: position, message: message))
        }
        return effects
    }

    public func batchEnded(committed: Bool) {
        state.batchEnded(committed: committed)
    }

    /// `feature_flags.message_buffering`, from its commit on; a deleted flag is off. Turned
    /// off, it closes the open buffers at its commit: a message after it is flushed alone, and
    /// never joins a buffer opened before.
    private func followFlag(_ change: Change, at position: ChangePosition,
                            committed commitTime: PostgresTimestamp) throws(HandlerError) -> Effects {
        let enabled: Bool
        switch change.operation {
        case .truncate:
            enabled = false
        case .delete:
            guard let old = change.old, try Fields(old, handler: name, change: change)["flag_name"] == Self.flagName else {
                return .none
            }
            enabled = false
        case .read:
            return .none
        case .insert, .update:
            guard let new = change.new else { return .none }
            let fields = try Fields(new, handler: name, change: change)
            if fields["flag_name"] == Self.flagName {
                // A flag the handler cannot read leaves buffering as it was, said: read as
                // off, a column renamed or retyped to text turned buffering off unseen.
                guard missingColumns.check(new, needs: ["is_enabled"], change: change).isEmpty else { return .none }
                // NULL is off, as the seed's `coalesce` made it.
                guard let value = fields["is_enabled"].map(postgresBoolean) ?? false else {
                    logger.warning("the message_buffering flag's is_enabled is not a boolean: buffering stays as it was", metadata: [
                        "value": "\(quotedExcerpt(fields["is_enabled"] ?? ""))", "lsn": "\(change.lsn)",
                        "buffering": "\(state.update { $0.buffering })",
                    ])
                    return .none
                }
                enabled = value
            } else if change.operation == .update, let old = change.old,
                      try Fields(old, handler: name, change: change)["flag_name"] == Self.flagName {
                // Renamed away (flag_name is the key, so the old row names it): the flag is
                // gone, as when deleted.
                enabled = false
            } else {
                return .none
            }
        }
        let (changed, closed) = state.update { state in
            defer { state.buffering = enabled }
            guard state.buffering != enabled else { return (false, [BufferBook.Buffer]()) }
            return (true, enabled ? [] : state.book.closeAll())
        }
        guard changed else { return .none }
        var effects = Effects(rows: [PlannedRow(table: Self.stagingTable, [
            "kind": "flag", "event_lsn": "\(position.commitLSN)", "event_index": String(position.index),
            "buffering": enabled ? "t" : "f",
        ])])
        for buffer in closed { flush(buffer, due: commitTime, at: position, with: nil, into: &effects) }
        return effects
    }

    /// The buffer closes (with `message`, when the message closed it): `processing`, its
    /// job row, and the request.
    private func flush(_ buffer: BufferBook.Buffer, due: PostgresTimestamp, at position: ChangePosition,
                       with message: BufferBook.Message?, into effects: inout Effects) {
        effects.rows.append(stagedBuffer(buffer, status: "processing", due: due, at: position, message: message))
        effects.deliveries.append(PlannedDelivery(
            target: "buffer-processor", url: settings.url, headers: [.init("Content-Type", "application/json")],
            auth: "service_key", body: Self.body(of: buffer),
            orderingKey: "message_buffer:" + buffer.conversationID,
            retryPolicy: .fixed(delay: settings.retryDelay, maxAttempts: settings.maxAttempts),
            report: .bufferProcessingJob(bufferID: buffer.id),
            idempotencyKey: Self.flushKey(of: buffer)))
    }

    /// `message_buffering:buffer:<id>@<first commit, Unix µs>`. The id is the first message's,
    /// which an application can use again (rows deleted and inserted with their ids, a
    /// `TRUNCATE … RESTART IDENTITY`): named by the id alone, the new buffer's flush took the
    /// key of the old one, whose delivery row holds it for good, and every batch that planned
    /// it failed, on every read, stopping the stream. The opening commit's time is the same on
    /// every read of that message and after a restart (`buffer_start_time`).
    static func flushKey(of buffer: BufferBook.Buffer) -> String {
        "message_buffering:buffer:\(buffer.id)@\(buffer.firstCommit.unixMicroseconds)"
    }

    /// The buffer as it stands after the event at `position`, with `flush_due_at` = `due`;
    /// with the message that joined it, if any.
    private func stagedBuffer(_ buffer: BufferBook.Buffer, status: String, due: PostgresTimestamp,
                              at position: ChangePosition, message: BufferBook.Message?) -> PlannedRow {
        PlannedRow(table: Self.stagingTable, [
            "kind": "buffer", "event_lsn": "\(position.commitLSN)", "event_index": String(position.index),
            "buffer_id": buffer.id, "conversation_id": buffer.conversationID, "status": status,
            "message_count": String(buffer.messages.count), "buffer_start_time": buffer.firstCommit.postgresText,
            "last_message_at": buffer.lastCommit.postgresText,
            "flush_due_at": due.postgresText,
            "message_id": message?.id, "message_position": message.map { _ in String(buffer.messages.count - 1) },
            "message_record": message?.record, "message_content": message?.content,
        ])
    }

    /// `{"bufferId", "conversationId", "messages", "combinedContent"}`: ids as numbers when
    /// they are integers (the seed's bigint ids), the messages as their rows.
    static func body(of buffer: BufferBook.Buffer) -> String {
        var writer = JSONWriter(capacity: 256 + buffer.messages.reduce(0) { $0 + $1.record.utf8.count * 2 })
        writer.beginObject()
        writer.key("bufferId")
        identifier(buffer.id, to: &writer)
        writer.key("conversationId")
        identifier(buffer.conversationID, to: &writer)
        writer.key("messages")
        writer.beginArray()
        for message in buffer.messages { writer.embedded(message.record.utf8) }
        writer.endArray()
        writer.key("combinedContent")
        writer.string(buffer.messages.map(\.content).joined(separator: "\n"))
        writer.endObject()
        return writer.string
    }

    /// A number when the id's text is one as Postgres prints it (the seed's bigint ids);
    /// otherwise its text, so two text ids (`007` and `7`, `+5` and `5`) stay two.
    private static func identifier(_ text: String, to writer: inout JSONWriter) {
        if let number = Int64(text), String(number) == text { writer.number(number) } else { writer.string(text) }
    }
}
