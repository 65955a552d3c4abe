import Core
import Handlers
import Logging
import Replication
import Schema

/// The message buffers and the `message_buffering` flag as of the checkpoint, for the
/// handler to carry on from: the open (`active`) `message_buffer` rows with their messages
/// from `changerelay.buffer_messages`, and the flag from `message_buffering_state`. Both are
/// written in the checkpoint transaction, so they are exactly what the committed batches
/// left. On the first start the flag is read from `feature_flags` and written down, and an open buffer the
/// seed's own code left (no copy of its messages) is adopted with its `buffered_messages`,
/// which are copied then.
enum MessageBufferLoader {
    static func load(from db: PostgresConnection, windows: BufferBook.Windows, logger: Logger) throws
        -> MessageBufferState.Snapshot {
        try RequiredMigration.messageBuffering.require(neededBy: "message buffering", on: db)
        try RequiredMigration.bufferMarks.require(neededBy: "message buffering", on: db)
        try RequiredMigration.bufferIDsReused.require(neededBy: "message buffering", on: db)
        try RequiredMigration.sessionStaging.require(neededBy: "message buffering", on: db)
        try RequiredMigration.keptStaging.require(neededBy: "message buffering", on: db)
        let buffers = try db.execute("""
            SELECT id::text, conversation_id::text,
                   (extract(epoch FROM buffer_start_time) * 1000000)::bigint AS first_commit,
                   (extract(epoch FROM last_message_at) * 1000000)::bigint AS last_commit
            FROM public.message_buffer WHERE status = 'active' ORDER BY id
            """)
        let copied = try db.execute("""
            SELECT buffer_id, message_id, record, content FROM changerelay.buffer_messages ORDER BY buffer_id, position
            """)
        var messages: [String: [BufferBook.Message]] = [:]
        for row in copied.rows {
            guard let buffer = row[0], let id = row[1], let record = row[2] else { continue }
            messages[buffer, default: []].append(BufferBook.Message(id: id, record: record, content: row[3] ?? ""))
        }
        var open: [BufferBook.Buffer] = []
        for row in buffers.rows {
            guard let id = row[0], let conversation = row[1], let first = row[2].flatMap({ Int64($0) }),
                  let last = row[3].flatMap({ Int64($0) }) else { continue }
            let contents = try messages[id] ?? adopted(buffer: id, from: db, logger: logger)
            open.append(BufferBook.Buffer(id: id, conversationID: conversation,
                                          firstCommit: PostgresTimestamp(unixMicroseconds: first),
                                          lastCommit: PostgresTimestamp(unixMicroseconds: last), messages: contents))
        }
        // The first start writes down the flag it starts from, and every later start reads
        // it there, as of the checkpoint: read from `feature_flags` while the stream had not
        // yet brought a change of it, a flag turned off while the service was stopped was
        // already off at the restart, the change then read changed nothing, and the buffers
        // opened before it took in messages committed after it.
        if try db.execute("SELECT count(*) AS n FROM changerelay.message_buffering_state").value("n") == "0" {
            try db.query("""
                INSERT INTO changerelay.message_buffering_state (buffering_enabled, changed_at_lsn) VALUES ($1::boolean, '0/0')
                ON CONFLICT (singleton) DO NOTHING
                """, [try startingFlag(db, logger: logger) ? "true" : "false"])
        }
        let flag = try db.execute("SELECT buffering_enabled AS enabled FROM changerelay.message_buffering_state")
            .value("enabled") == "t"
        logger.info("message buffers restored", metadata: ["open": "\(open.count)", "buffering": "\(flag)"])
        return MessageBufferState.Snapshot(book: BufferBook(windows: windows, open: open), buffering: flag)
    }

    /// `feature_flags.message_buffering` as the stream reads it (`postgresBoolean`, NULL or no
    /// row off), at the very first start: a column the handler cannot read is off, said, not
    /// a start that fails, as the handler leaves such a flag on the stream.
    private static func startingFlag(_ db: PostgresConnection, logger: Logger) throws(PostgresError) -> Bool {
        let hasColumn = try db.execute("""
            SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.feature_flags'::regclass
                           AND attname = 'is_enabled' AND NOT attisdropped) AS present
            """).value("present") == "t"
        guard hasColumn else {
            logger.warning("feature_flags has no is_enabled column (renamed or dropped?): message buffering starts off")
            return false
        }
        guard let text = try db.execute("""
            SELECT is_enabled::text AS enabled FROM public.feature_flags WHERE flag_name = 'message_buffering'
            """).value("enabled") else { return false }
        guard let enabled = postgresBoolean(text) else {
            logger.warning("the message_buffering flag's is_enabled is not a boolean: message buffering starts off",
                           metadata: ["value": "\(quotedExcerpt(text))"])
            return false
        }
        return enabled
    }

    /// The messages of an open buffer the seed's code opened, in insertion order, copied into
    /// `changerelay.buffer_messages` as the committer copies its own: a message that joins the
    /// buffer later is stored after them, and a restart finds them all there. Read and not
    /// copied, they were known only to this run: the next start found the later messages'
    /// copies, took the buffer for one of its own, and its flush left the seed's out.
    private static func adopted(buffer id: String, from db: PostgresConnection, logger: Logger) throws
        -> [BufferBook.Message] {
        let rows = try db.query("""
            WITH seed AS (
                SELECT m.id::text AS message_id, to_jsonb(m)::text AS record, coalesce(m.content, '') AS content,
                       (row_number() OVER (ORDER BY m.created_at, m.id) - 1)::int AS position
                FROM public.buffered_messages m WHERE m.buffer_id::text = $1),
            copied AS (
                INSERT INTO changerelay.buffer_messages (buffer_id, position, message_id, record, content)
                SELECT $1, position, message_id, record, content FROM seed
                ON CONFLICT DO NOTHING)
            SELECT message_id, record, content FROM seed ORDER BY position
            """, [id]).rows
        logger.info("adopted an open buffer the seed's code opened", metadata: ["buffer": "\(id)", "messages": "\(rows.count)"])
        return rows.compactMap { row in
            guard let messageID = row[0], let record = row[1] else { return nil }
            return BufferBook.Message(id: messageID, record: record, content: row[2] ?? "")
        }
    }
}
