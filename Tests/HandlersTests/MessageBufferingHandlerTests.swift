import Core
import Decoding
import Handlers
import PlannedEffects
import Testing

private let start = PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000)
private let windows = BufferBook.Windows(duration: .seconds(30), maxAge: .seconds(300), maxSize: 3)

private func row(_ pairs: KeyValuePairs<String, String?>) -> Row {
    Row(columns: pairs.map { Column(name: $0.key, typeOID: $0.key == "id" ? 20 : 25, isKey: $0.key == "id") },
        values: pairs.map { $0.value.map { .text(ArraySlice($0.utf8)) } ?? .null })
}

private func message(_ id: Int, conversation: String = "7", type: String? = "incoming", content: String? = nil) -> Change {
    Change(lsn: LSN(0x100), schema: "public", table: "buffered_messages", operation: .insert,
           new: row(["id": String(id), "conversation_id": conversation, "content": content ?? "m\(id)", "message_type": type]))
}

private func flag(_ enabled: Bool, _ operation: Change.Operation = .update) -> Change {
    let flagRow = row(["flag_name": "message_buffering", "is_enabled": enabled ? "t" : "f"])
    return Change(lsn: LSN(0x100), schema: "public", table: "feature_flags", operation: operation,
                  new: operation == .delete ? nil : flagRow, old: operation == .delete ? flagRow : nil)
}

private func transaction(_ changes: [Change], at seconds: Double, lsn: UInt64) -> Transaction {
    Transaction(xid: 1, commitLSN: LSN(lsn), endLSN: LSN(lsn + 8),
                commitTime: start.advanced(by: .milliseconds(Int64(seconds * 1000))), changes: changes)
}

private func makeHandler(buffering: Bool = true) -> MessageBufferingHandler {
    MessageBufferingHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1/", windows: windows),
                            state: MessageBufferState(restored: .init(book: BufferBook(windows: windows),
                                                                      buffering: buffering)))
}

/// What the router does with a transaction for this handler: time first, then each change.
private func plan(_ handler: MessageBufferingHandler, _ transaction: Transaction, commit: Bool = true) throws -> Effects {
    var all = try handler.committed(transaction)
    try transaction.changes.forEach { index, change in
        let effects = try handler.plan(change, at: index, in: transaction)
        all.rows += effects.rows
        all.deliveries += effects.deliveries
    }
    handler.batchEnded(committed: commit)
    return all
}

private func column(_ name: String, of row: PlannedRow) -> String? {
    row.columns.firstIndex(of: name).flatMap { row.values[$0] }
}

@Suite struct MessageBufferingHandlerTests {
    @Test func aWindowIsFlushedOnceByTheFirstCommitAfterItsDeadline() throws {
        let handler = makeHandler()
        let first = try plan(handler, transaction([message(11)], at: 0, lsn: 0x10))
        #expect(first.deliveries.isEmpty)
        #expect(first.rows.map { column("status", of: $0) } == ["active"])
        #expect(first.rows.map { column("message_id", of: $0) } == ["11"])
        #expect(try plan(handler, transaction([message(12, content: "second")], at: 10, lsn: 0x20)).deliveries.isEmpty)
        #expect(handler.state.nextDeadline.current == start.advanced(by: .seconds(40)))

        // A commit exactly at the deadline is still inside; the tick after it closes the window.
        #expect(try plan(handler, transaction([], at: 40, lsn: 0x30)).deliveries.isEmpty)
        let tick = try plan(handler, transaction([], at: 40.001, lsn: 0x40))
        let flush = try #require(tick.deliveries.first)
        #expect(tick.deliveries.count == 1)
        #expect(flush.url == "http://127.0.0.1:9/functions/v1/buffer-processor" && flush.auth == "service_key")
        #expect(flush.idempotencyKey == "message_buffering:buffer:11@1746684800000000")
        #expect(flush.report == .bufferProcessingJob(bufferID: "11"))
        #expect(flush.retryPolicy == .fixed(delay: .seconds(5), maxAttempts: 3))
        #expect(flush.body == #"{"bufferId":11,"conversationId":7,"messages":[{"id":11,"conversation_id":"7","content":"m11","message_type":"incoming"},{"id":12,"conversation_id":"7","content":"second","message_type":"incoming"}],"combinedContent":"m11\nsecond"}"#)
        #expect(tick.rows.map { column("status", of: $0) } == ["processing"])
        #expect(handler.state.nextDeadline.current == nil)
        #expect(try plan(handler, transaction([], at: 100, lsn: 0x50)).deliveries.isEmpty)
    }

    @Test func onlyIncomingInsertsAreBuffered() throws {
        let handler = makeHandler()
        let outgoing = try plan(handler, transaction([message(1, type: "outgoing"), message(2, type: nil)], at: 0, lsn: 0x10))
        #expect(outgoing == .none)
        var update = message(3)
        update.operation = .update
        #expect(try plan(handler, transaction([update], at: 1, lsn: 0x20)) == .none)
        #expect(handler.state.committed.book.open.isEmpty)
    }

    /// Turned off, the flag closes the open buffers at its commit: message 1's buffer is
    /// flushed there, and messages 2 and 3, of its conversation or another, are flushed alone.
    @Test func theFlagIsFollowedFromItsCommitOn() throws {
        let handler = makeHandler()
        let off = try plan(handler, transaction([message(1), flag(false), message(2, conversation: "8"), message(3)],
                                                at: 0, lsn: 0x10))
        #expect(off.deliveries.map(\.idempotencyKey) == ["message_buffering:buffer:1@1746684800000000",
                                                         "message_buffering:buffer:2@1746684800000000",
                                                         "message_buffering:buffer:3@1746684800000000"])
        #expect(off.deliveries.map(\.body).allSatisfy { $0.contains(#""messages":[{"#) })
        #expect(off.rows.compactMap { column("buffering", of: $0) } == ["f"])
        #expect(handler.state.committed.book.open.isEmpty)
        #expect(handler.state.nextDeadline.current == nil)
        let deleted = try plan(handler, transaction([flag(true), flag(true, .delete)], at: 1, lsn: 0x20))
        #expect(deleted.rows.compactMap { column("buffering", of: $0) } == ["t", "f"])
        #expect(!handler.state.committed.buffering)
    }

    /// The flag's row renamed away is the flag gone, as a delete is (flag_name is the key,
    /// so the update carries the old name); renamed back, it is followed again. Another
    /// row renamed leaves buffering alone.
    @Test func theFlagRenamedAwayTurnsBufferingOff() throws {
        let handler = makeHandler()
        func rename(_ from: String, to: String) -> Change {
            Change(lsn: LSN(0x100), schema: "public", table: "feature_flags", operation: .update,
                   new: row(["flag_name": to, "is_enabled": "t"]), old: row(["flag_name": from]))
        }
        let other = try plan(handler, transaction([rename("dark_mode", to: "dark_theme")], at: 0, lsn: 0x10))
        #expect(other.rows.isEmpty)
        #expect(handler.state.committed.buffering)
        let away = try plan(handler, transaction([message(1), rename("message_buffering", to: "renamed")], at: 1, lsn: 0x20))
        #expect(away.rows.compactMap { column("buffering", of: $0) } == ["f"])
        #expect(away.deliveries.count == 1, "the open buffer is flushed when the flag goes")
        #expect(!handler.state.committed.buffering)
        let back = try plan(handler, transaction([rename("renamed", to: "message_buffering")], at: 2, lsn: 0x30))
        #expect(back.rows.compactMap { column("buffering", of: $0) } == ["t"])
        #expect(handler.state.committed.buffering)
    }

    @Test func aBatchReadAgainLandsInTheSameWindows() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([message(1)], at: 0, lsn: 0x10))
        let lost = try plan(handler, transaction([message(2), message(3)], at: 5, lsn: 0x20), commit: false)
        #expect(lost.deliveries.count == 1)
        #expect(handler.state.committed.book.open["7"]?.messages.map(\.id) == ["1"])
        let again = try plan(handler, transaction([message(2), message(3)], at: 5, lsn: 0x20))
        #expect(again == lost)
    }

    @Test func aFullWindowIsFlushedWithItsLastMessage() throws {
        let handler = makeHandler()
        let effects = try plan(handler, transaction([message(1), message(2), message(3), message(4)], at: 0, lsn: 0x10))
        #expect(effects.deliveries.map(\.idempotencyKey) == ["message_buffering:buffer:1@1746684800000000"])
        #expect(effects.rows.map { column("status", of: $0) } == ["active", "active", "processing", "active"])
        #expect(effects.rows.map { column("buffer_id", of: $0) } == ["1", "1", "1", "4"])
        // Due when it filled up, not when its window would have closed.
        #expect(column("flush_due_at", of: effects.rows[2]) == start.postgresText)
        #expect(column("flush_due_at", of: effects.rows[3]) == start.advanced(by: .seconds(30)).postgresText)
    }

    /// A column the handler reads, renamed or dropped, is said and the message skipped: read
    /// as NULL it was skipped (no conversation, not incoming) or joined with no content,
    /// without a word. One warning per table and set of missing columns.
    @Test(arguments: ["id", "conversation_id", "message_type", "content"])
    func aMessageLackingAColumnTheHandlerReadsIsSkippedAndSaid(column: String) throws {
        let logs = CapturedLogs()
        let handler = MessageBufferingHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1/", windows: windows),
                                              state: MessageBufferState(restored: .init(book: BufferBook(windows: windows),
                                                                                        buffering: true)),
                                              logger: logs.logger)
        func lacking(_ id: Int) -> Change {
            var change = message(id)
            let row = change.new!
            let kept = row.columns.indices.filter { row.columns[$0].name != column }
            change.new = Row(columns: kept.map { row.columns[$0] }, values: kept.map { row.values[$0] })
            return change
        }
        let planned = try plan(handler, transaction([lacking(11), lacking(12)], at: 0, lsn: 0x10))
        #expect(planned.rows.isEmpty && planned.deliveries.isEmpty)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1 && warnings.first?.metadata["missing"] == .string(column), "\(warnings)")
        #expect(warnings.first?.metadata["lsn"] == .string("0/100"))
    }

    /// The flag's value is read as Postgres reads a boolean's text (a column retyped to text
    /// holds `true`); a value that is none, or a flag row without the column, leaves
    /// buffering as it was, with a warning: it turned buffering off unseen.
    @Test func aFlagTheHandlerCannotReadLeavesBufferingAsItWas() throws {
        let logs = CapturedLogs()
        let handler = MessageBufferingHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1/", windows: windows),
                                              state: MessageBufferState(restored: .init(book: BufferBook(windows: windows),
                                                                                        buffering: true)),
                                              logger: logs.logger)
        func flagged(_ value: String?, column: String = "is_enabled") -> Change {
            Change(lsn: LSN(0x100), schema: "public", table: "feature_flags", operation: .update,
                   new: row(["flag_name": "message_buffering", column: value]))
        }
        _ = try plan(handler, transaction([flagged("false")], at: 0, lsn: 0x10))
        #expect(!handler.state.committed.buffering)
        _ = try plan(handler, transaction([flagged("TRUE")], at: 1, lsn: 0x20))
        #expect(handler.state.committed.buffering)
        _ = try plan(handler, transaction([flagged("maybe")], at: 2, lsn: 0x30))
        #expect(handler.state.committed.buffering)
        _ = try plan(handler, transaction([flagged("f", column: "enabled")], at: 3, lsn: 0x40))
        #expect(handler.state.committed.buffering)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 2, "\(warnings)")
        #expect(warnings.first?.metadata["value"] == .string("'maybe'"))
        #expect(warnings.last?.metadata["missing"] == .string("is_enabled"))
        _ = try plan(handler, transaction([flagged(nil)], at: 4, lsn: 0x50))
        #expect(!handler.state.committed.buffering, "NULL is off, as the seed's coalesce made it")
    }
}
