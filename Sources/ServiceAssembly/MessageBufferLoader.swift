import Core
import Handlers
import Logging
import Replication
import Schema

/// The message buffers and the `message_buffering` flag as of the checkpoint, for the
/// handler to carry on from: the open (`active`) `message_buffer` rows with their messages
/// from `changerelay.buffer_messages`, and the flag from `message_buffering_state`. Both are
/// written in the checkpoint transaction, so they are exactly what the committed batches
/// left. On the first start the flag is read from `feature_flags`, and an open buffer the
/// seed's own code left (no copy of its messages) is adopted with its `buffered_messages`.
enum MessageBufferLoader {
    static func load(from db: PostgresConnection, windows: BufferBook.Windows, logger: Logger) throws
        -> MessageBufferState.Snapshot {
        try RequiredMigration.messageBuffering.require(neededBy: "message buffering", on: db)
        try RequiredMigration.sessionStaging.require(neededBy: "message buffering", on: db)
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
        let flag = try db.execute("""
            SELECT coalesce((SELECT buffering_enabled FROM changerelay.message_buffering_state),
                            (SELECT is_enabled FROM public.feature_flags WHERE flag_name = 'message_buffering'),
                            false) AS enabled
            """).value("enabled") == "t"
        logger.info("message buffers restored", metadata: ["open": "\(open.count)", "buffering": "\(flag)"])
        return MessageBufferState.Snapshot(book: BufferBook(windows: windows, open: open), buffering: flag)
    }

    /// The messages of an open buffer the seed's code opened, in insertion order.
    private static func adopted(buffer id: String, from db: PostgresConnection, logger: Logger) throws
        -> [BufferBook.Message] {
        let rows = try db.query("""
            SELECT m.id::text, to_jsonb(m)::text, coalesce(m.content, '')
            FROM public.buffered_messages m WHERE m.buffer_id::text = $1 ORDER BY m.created_at, m.id
            """, [id]).rows
        logger.info("adopted an open buffer the seed's code opened", metadata: ["buffer": "\(id)", "messages": "\(rows.count)"])
        return rows.compactMap { row in
            guard let messageID = row[0], let record = row[1] else { return nil }
            return BufferBook.Message(id: messageID, record: record, content: row[2] ?? "")
        }
    }
}
