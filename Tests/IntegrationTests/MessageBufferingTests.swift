import Core
import Decoding
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Testing

/// Message buffering through `changerelay run`: windows by commit time, the flush and its
/// seed rows, the feature flag, failures, and crashes.
@Suite struct MessageBufferingTests {
    static func environment(_ setup: RunPipelineTests.Setup, durationMilliseconds: Int = 400,
                            maxSize: Int = 50) -> [String: String] {
        var environment = ConversationChecksTests.environment(setup)
        environment["CHANGERELAY_MESSAGE_BUFFER_DURATION_MS"] = String(durationMilliseconds)
        environment["CHANGERELAY_MESSAGE_BUFFER_MAX_SIZE"] = String(maxSize)
        environment["CHANGERELAY_MESSAGE_BUFFER_RETRY_DELAY_MS"] = "100"
        return environment
    }

    /// Inserts one incoming message in a transaction of its own; returns its id.
    @discardableResult
    static func message(_ db: PostgresConnection, conversation: Int, content: String, type: String = "incoming") throws -> String {
        try db.execute("""
            INSERT INTO buffered_messages (conversation_id, content, message_type, sender)
            VALUES (\(conversation), \(quoteLiteral(content)), \(quoteLiteral(type)), '{"name": "guest"}')
            RETURNING id::text AS id
            """).value("id")!
    }

    static func flushes(_ receiver: LocalReceiver) throws -> [JSONValue] {
        try receiver.requests.filter { $0.path == "/functions/v1/buffer-processor" }.map { try JSONParser.parse($0.body) }
    }

    static func ids(_ messages: JSONValue?) -> [String] {
        guard case .array(let items)? = messages else { return [] }
        return items.compactMap { item -> String? in
            guard case .number(let id)? = item["id"] else { return nil }
            return id
        }
    }

    /// Through either plugin: the tick that closes the window travels as a logical message.
    @Test(arguments: ["pgoutput", "wal2json"])
    func aWindowIsFlushedOnceAfterItsDeadlineWithItsMessagesInCommitOrder(plugin: String) throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_SOURCE_PLUGIN": plugin])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let first = try Self.message(setup.db, conversation: 41, content: "hello")
        let other = try Self.message(setup.db, conversation: 42, content: "another conversation")
        let second = try Self.message(setup.db, conversation: 41, content: "are you there?")
        try Self.message(setup.db, conversation: 41, content: "an answer", type: "outgoing")
        let third = try Self.message(setup.db, conversation: 41, content: "hello?")
        try RunPipelineTests.waitFor("the flushes") { setup.receiver.requestCount >= 2 }
        let request = try #require(setup.receiver.requests.first {
            $0.header("Idempotency-Key")?.hasPrefix("message_buffering:buffer:\(first)@") == true
        })
        let alone = try #require(setup.receiver.requests.first {
            $0.header("Idempotency-Key")?.hasPrefix("message_buffering:buffer:\(other)@") == true
        })
        #expect(Self.ids(try JSONParser.parse(alone.body)["messages"]) == [other])
        #expect(request.header("Authorization") == "Bearer " + ConversationChecksTests.serviceKey)
        #expect(request.header("Content-Type") == "application/json")
        // Named by the buffer's id and its first message's commit time, which the buffer row keeps.
        let opened = try setup.db.execute("""
            SELECT (extract(epoch FROM buffer_start_time) * 1000000)::bigint::text AS t FROM message_buffer WHERE id = \(first)
            """).value("t")
        #expect(request.header("Idempotency-Key") == "message_buffering:buffer:\(first)@\(opened ?? "?")")
        let body = try JSONParser.parse(request.body)
        #expect(body["bufferId"] == .number(first) && body["conversationId"] == .number("41"))
        #expect(Self.ids(body["messages"]) == [first, second, third])
        #expect(body["combinedContent"] == .string("hello\nare you there?\nhello?"))

        try RunPipelineTests.waitFor("the buffer completed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(first)").value("status") == "completed"
        }
        let buffer = try setup.db.execute("""
            SELECT message_count, processed_at IS NOT NULL AS processed,
                   flush_due_at = last_message_at + interval '400 milliseconds' AS due_after_last,
                   (SELECT created_at >= b.flush_due_at FROM buffer_processing_jobs WHERE buffer_id = b.id) AS not_early
            FROM message_buffer b WHERE id = \(first)
            """)
        #expect(buffer.rows == [["3", "t", "t", "t"]])
        #expect(try setup.db.execute("SELECT status, attempts FROM buffer_processing_jobs ORDER BY buffer_id").rows
                    == [["completed", "1"], ["completed", "1"]])
        #expect(try setup.db.execute("SELECT buffer_id::text FROM buffered_messages ORDER BY id").rows
                    == [[first], [other], [first], [nil], [first]])
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.buffer_messages").value("n") == "0")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(setup.receiver.requestCount == 2)
        #expect(!run.stderr.contains(ConversationChecksTests.serviceKey))
    }

    /// A full buffer is flushed at once; one that keeps receiving messages is closed
    /// `max_age_ms` after its first.
    /// A flag the first start cannot read (`is_enabled` retyped to text holding no boolean, or
    /// renamed) starts buffering off with a warning, as the stream leaves such a flag: the
    /// start's own read failed on the cast, or on the missing column, and the service stopped.
    @Test(arguments: [
        "ALTER TABLE feature_flags ALTER COLUMN is_enabled TYPE text; UPDATE feature_flags SET is_enabled = 'maybe' WHERE flag_name = 'message_buffering'",
        "ALTER TABLE feature_flags RENAME COLUMN is_enabled TO enabled",
    ])
    func aFlagTheFirstStartCannotReadStartsBufferingOff(change: String) throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute(change)
        let run = try Background(["run"], environment: Self.environment(setup))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        #expect(run.stderr.contains("message buffering starts off"), "\(run.stderr.suffix(2000))")
        #expect(try setup.db.execute("SELECT buffering_enabled FROM changerelay.message_buffering_state").value("buffering_enabled") == "f")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// A flag retyped to text keeps working: `true` is read at the first start as Postgres reads it.
    @Test func aFlagRetypedToTextIsReadAtTheFirstStart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            ALTER TABLE feature_flags ALTER COLUMN is_enabled TYPE text;
            UPDATE feature_flags SET is_enabled = ' TRUE ' WHERE flag_name = 'message_buffering'
            """)
        let run = try Background(["run"], environment: Self.environment(setup))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        #expect(try setup.db.execute("SELECT buffering_enabled FROM changerelay.message_buffering_state").value("buffering_enabled") == "t")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func maxSizeAndMaxAgeCloseABufferThatKeepsGrowing() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        var environment = Self.environment(setup, durationMilliseconds: 600, maxSize: 8)
        environment["CHANGERELAY_MESSAGE_BUFFER_MAX_AGE_MS"] = "1000"
        let run = try Background(["run"], environment: environment)
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let full = try (0..<8).map { try Self.message(setup.db, conversation: 1, content: "f\($0)") }
        try RunPipelineTests.waitFor("the full buffer") { try Self.flushes(setup.receiver).count == 1 }
        #expect(try Self.flushes(setup.receiver).map { Self.ids($0["messages"]) } == [full])
        #expect(try setup.db.execute("SELECT flush_due_at = last_message_at AS at_once FROM message_buffer WHERE id = \(full[0])")
                    .value("at_once") == "t")
        // A message every 150 ms for 1.8 s: each comes within the 600 ms window of the last,
        // so only max_age_ms closes the first buffer (it holds at most 7, under max_size).
        for index in 0..<12 {
            try Self.message(setup.db, conversation: 2, content: "g\(index)")
            usleep(150_000)
        }
        try RunPipelineTests.waitFor("every message flushed") {
            try setup.db.execute("""
                SELECT count(*) FILTER (WHERE b.status = 'completed') = count(*) AS done
                FROM buffered_messages m JOIN message_buffer b ON b.id = m.buffer_id WHERE m.conversation_id = 2
                """).value("done") == "t"
        }
        let buffers = try setup.db.execute("""
            SELECT message_count, flush_due_at - buffer_start_time = interval '1 second' AS by_age,
                   flush_due_at - buffer_start_time <= interval '1 second' AS within_age
            FROM message_buffer WHERE conversation_id = 2 ORDER BY id
            """).rows
        #expect(buffers.count >= 2)
        #expect(buffers.first?[1] == "t" && buffers.allSatisfy { $0[2] == "t" })
        #expect(buffers.compactMap { $0[0].flatMap { Int($0) } }.reduce(0, +) == 12)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// SIGTERM and kill -9 with a buffer open: after the restart the buffer is flushed once,
    /// with the messages from before and after.
    @Test func aBufferOpenAcrossRestartsIsFlushedOnceWithAllItsMessages() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = Self.environment(setup, durationMilliseconds: 3000)
        var ids: [String] = []
        for signal in [SIGTERM, SIGKILL] {
            let run = try Background(["run"], environment: environment)
            try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
            ids.append(try Self.message(setup.db, conversation: 9, content: "before \(signal)"))
            try RunPipelineTests.waitFor("the message in its buffer") {
                try setup.db.execute("SELECT count(*) AS n FROM changerelay.buffer_messages").value("n") == String(ids.count)
            }
            run.child.signal(signal)
            _ = run.waitForExit()
        }
        let run = try Background(["run"], environment: environment)
        ids.append(try Self.message(setup.db, conversation: 9, content: "after"))
        try RunPipelineTests.waitFor("the flush") { try Self.flushes(setup.receiver).count >= 1 }
        try RunPipelineTests.waitFor("the buffer completed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(ids[0])").value("status") == "completed"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(try Self.flushes(setup.receiver).map { Self.ids($0["messages"]) } == [ids])
    }

    /// Message ids an application uses again (`TRUNCATE … RESTART IDENTITY`, or rows deleted and
    /// inserted with their ids) open buffers with the ids of flushed ones: each flush is its own
    /// delivery, and the stream goes on.
    @Test func aMessageIdUsedAgainOpensABufferWithAFlushOfItsOwn() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let first = try Self.message(setup.db, conversation: 5, content: "one")
        try RunPipelineTests.waitFor("the first flush") { try Self.flushes(setup.receiver).count == 1 }
        try setup.db.execute("TRUNCATE buffered_messages, message_buffer, buffer_processing_jobs RESTART IDENTITY")
        let again = try Self.message(setup.db, conversation: 5, content: "two")
        #expect(again == first)
        try RunPipelineTests.waitFor("the second flush") { try Self.flushes(setup.receiver).count == 2 }
        try RunPipelineTests.waitFor("the new buffer completed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(again)").value("status") == "completed"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(try Self.flushes(setup.receiver).map { $0["combinedContent"] } == [.string("one"), .string("two")])
        #expect(Set(setup.receiver.requests.compactMap { $0.header("Idempotency-Key") }).count == 2)
    }

    /// A message id used again while the old buffer's row stays (the message deleted and
    /// inserted again with its id, in another conversation): the new buffer takes the id, the
    /// finished row goes, and the stream goes on. The old row was made active again under the
    /// new conversation, and with the old conversation's next buffer open that was a unique
    /// violation on every read of the batch: the stream stopped for good.
    @Test func aMessageIdUsedAgainBesideItsFinishedBufferDoesNotStopTheStream() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, durationMilliseconds: 2_000))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let first = try Self.message(setup.db, conversation: 1, content: "one")
        try RunPipelineTests.waitFor("the first buffer completed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(first)").value("status") == "completed"
        }
        try setup.db.execute("""
            INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (\(first) + 100, 1, 'next', 'incoming');
            DELETE FROM buffered_messages WHERE id = \(first);
            INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (\(first), 5, 'again', 'incoming');
            """)
        try RunPipelineTests.waitFor("both new buffers flushed") { try Self.flushes(setup.receiver).count == 3 }
        try RunPipelineTests.waitFor("the reused id's buffer completed") {
            try setup.db.execute("SELECT status || ':' || conversation_id AS s FROM message_buffer WHERE id = \(first)")
                .value("s") == "completed:5"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        let contents = try Self.flushes(setup.receiver).compactMap { flush -> String? in
            guard case .string(let text)? = flush["combinedContent"] else { return nil }
            return text
        }
        #expect(contents.first == "one" && Set(contents.dropFirst()) == ["next", "again"], "\(contents)")
        let jobs = try setup.db.execute("SELECT count(*) AS n FROM buffer_processing_jobs WHERE buffer_id = \(first)")
        #expect(jobs.value("n") == "1")
    }

    /// A message id used again while the buffer it named is open, in another conversation:
    /// the new buffer gets an id of its own (the old one negated), so each has its own
    /// `message_buffer` row and kept messages, and a restart inside the window flushes both.
    /// They shared one row before, and the second conversation's message was lost.
    @Test func aMessageIdUsedAgainWhileItsBufferIsOpenLosesNothingAcrossARestart() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = Self.environment(setup, durationMilliseconds: 4_000)
        let first = try Background(["run"], environment: environment)
        try first.waitFor("streaming") { _ in first.stderr.contains("streaming") }
        // One transaction, so one batch stages both messages of id 100 (and both marks).
        try setup.db.execute("""
            INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (100, 1, 'conv1', 'incoming');
            DELETE FROM buffered_messages WHERE id = 100;
            INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (100, 2, 'conv2', 'incoming');
            """)
        try RunPipelineTests.waitFor("two open buffers, the row marked with the second") {
            try setup.db.execute("""
                SELECT (SELECT string_agg(id || ':' || conversation_id || ':' || status, ',' ORDER BY id) FROM message_buffer)
                       || ' ' || (SELECT buffer_id FROM buffered_messages WHERE id = 100) AS b
                """).value("b") == "-100:2:active,100:1:active -100"
        }
        first.child.signal(SIGTERM)
        #expect(first.waitForExit() == 0, "\(first.stderr.suffix(2000))")
        #expect(try Self.flushes(setup.receiver).isEmpty, "the window outlives the restart")
        let second = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("both flushes") { try Self.flushes(setup.receiver).count == 2 }
        second.child.signal(SIGTERM)
        #expect(second.waitForExit() == 0, "\(second.stderr.suffix(2000))")
        let contents = try Self.flushes(setup.receiver).compactMap { flush -> String? in
            guard case .string(let text)? = flush["combinedContent"] else { return nil }
            return text
        }
        #expect(Set(contents) == ["conv1", "conv2"], "\(contents)")
    }

    /// A message deleted before its mark could be applied leaves the mark kept; when its id
    /// is used again, the new message's mark replaces it. The kept one won, and the new row
    /// was marked with the deleted message's buffer.
    @Test func aMarkLeftForADeletedMessageGivesWayToItsIdsNextMessage() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (4, 1, 'm4', 'incoming')")
        try setup.db.execute("INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (5, 1, 'm5', 'incoming')")
        try setup.db.execute("DELETE FROM buffered_messages WHERE id = 5")
        let run = try Background(["run"], environment: Self.environment(setup))
        try RunPipelineTests.waitFor("buffer 4 flushed, message 5's mark kept") {
            try Self.flushes(setup.receiver).count == 1
                && setup.db.execute("SELECT buffer_id FROM changerelay.buffer_message_marks WHERE message_id = '5'").value("buffer_id") == "4"
        }
        try setup.db.execute("INSERT INTO buffered_messages (id, conversation_id, content, message_type) VALUES (5, 2, 'again', 'incoming')")
        try RunPipelineTests.waitFor("buffer 5 completed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = 5").value("status") == "completed"
        }
        try RunPipelineTests.waitFor("the new message 5 marked with its own buffer") {
            try setup.db.execute("SELECT buffer_id FROM buffered_messages WHERE id = 5").value("buffer_id") == "5"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// A buffer the seed's own code opened before the switch is adopted with its messages; a
    /// message that joins it, a kill -9 and a restart later, its flush still carries them all.
    @Test func aBufferTheSeedsCodeOpenedKeepsItsMessagesAcrossACrash() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = Self.environment(setup, durationMilliseconds: 60_000, maxSize: 4)
        // What the seed's trigger left before the slot was made: the service never reads it.
        let buffer = try setup.db.execute("""
            INSERT INTO message_buffer (conversation_id, status, message_count, buffer_start_time, last_message_at, flush_due_at)
            VALUES (42, 'active', 2, now(), now(), now() + interval '60 seconds') RETURNING id::text AS id
            """).value("id")!
        var ids = try setup.db.execute("""
            INSERT INTO buffered_messages (conversation_id, content, message_type, sender, buffer_id)
            SELECT 42, c, 'incoming', '{"name": "guest"}', \(buffer) FROM unnest(ARRAY['a', 'b']) c RETURNING id::text AS id
            """).rows.compactMap { $0[0] }
        try setup.db.execute("""
            SELECT pg_drop_replication_slot('changerelay');
            SELECT pg_create_logical_replication_slot('changerelay', 'pgoutput')
            """)

        let first = try Background(["run"], environment: environment)
        try first.waitFor("streaming") { _ in first.stderr.contains("streaming") }
        ids.append(try Self.message(setup.db, conversation: 42, content: "c"))
        try RunPipelineTests.waitFor("the joining message copied") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.buffer_messages").value("n") == "3"
        }
        first.child.signal(SIGKILL)
        _ = first.waitForExit()

        let run = try Background(["run"], environment: environment)
        ids.append(try Self.message(setup.db, conversation: 42, content: "d"))
        try RunPipelineTests.waitFor("the flush") { try Self.flushes(setup.receiver).count >= 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let flushes = try Self.flushes(setup.receiver)
        #expect(flushes.map { Self.ids($0["messages"]) } == [ids])
        #expect(flushes.first?["combinedContent"] == .string("a\nb\nc\nd"), "\(flushes)")
    }

    /// Messages read long after they were committed (the service was down) land in the
    /// windows their commit times give, not in one.
    @Test func windowsFollowCommitTimesWhenTheServiceReadsThemLate() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let first = try Self.message(setup.db, conversation: 7, content: "one")
        try Self.message(setup.db, conversation: 7, content: "two")
        try RunPipelineTests.waitFor("the window to pass") {
            try setup.db.execute("""
                SELECT clock_timestamp() > max(created_at) + interval '600 milliseconds' AS passed FROM buffered_messages
                """).value("passed") == "t"
        }
        let third = try Self.message(setup.db, conversation: 7, content: "three")
        let run = try Background(["run"], environment: Self.environment(setup))
        try RunPipelineTests.waitFor("two flushes") { try Self.flushes(setup.receiver).count >= 2 }
        let flushes = try Self.flushes(setup.receiver)
        #expect(flushes.map { Self.ids($0["messages"]) }.count == 2)
        #expect(flushes.first?["bufferId"] == .number(first) && flushes.first?["combinedContent"] == .string("one\ntwo"))
        #expect(flushes.last?["bufferId"] == .number(third) && flushes.last?["combinedContent"] == .string("three"))
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// A message's commit can reach the stream before other sessions see its row (here a
    /// synchronous standby that never answers holds the writer's commit): the buffer opens at
    /// once, its mark of the message finds no row, and is kept until the row is there.
    @Test func aMessageWhoseRowIsNotVisibleYetStillGetsItsBufferID() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // Every session but the writer's commits without waiting for the standby.
        try setup.db.execute("ALTER ROLE postgres SET synchronous_commit = local")
        try setup.db.execute("SET synchronous_commit = local")
        try setup.db.execute("ALTER SYSTEM SET synchronous_standby_names = 'ghost'")
        try setup.db.execute("SELECT pg_reload_conf()")
        // A window long enough that the flush never comes first; a message of another
        // conversation, after the row is visible, is the later batch that applies the mark.
        let run = try Background(["run"], environment: Self.environment(setup, durationMilliseconds: 60_000))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let url = setup.cluster.url
        let writer = Thread {
            guard let db = try? PostgresConnection(url: url) else { return }
            _ = try? db.execute("""
                SET synchronous_commit = on;
                INSERT INTO buffered_messages (conversation_id, content, message_type, sender)
                VALUES (77, 'held back', 'incoming', '{"name": "guest"}')
                """)
        }
        writer.start()
        try RunPipelineTests.waitFor("the buffer opened while the row is invisible, its mark kept") {
            try setup.db.execute("""
                SELECT (SELECT count(*) FROM changerelay.buffer_messages) = 1
                   AND (SELECT count(*) FROM changerelay.buffer_message_marks) = 1
                   AND (SELECT count(*) FROM buffered_messages) = 0 AS opened
                """).value("opened") == "t"
        }
        // Ends the writer's wait: its transaction committed locally, and its row becomes visible.
        try setup.db.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        try RunPipelineTests.waitFor("the row visible") {
            try setup.db.execute("SELECT count(*) AS n FROM buffered_messages WHERE conversation_id = 77").value("n") == "1"
        }
        try Self.message(setup.db, conversation: 78, content: "a later batch")
        try RunPipelineTests.waitFor("the message marked with its buffer") {
            try setup.db.execute("""
                SELECT buffer_id IS NOT NULL AND buffer_id = id AS marked FROM buffered_messages WHERE conversation_id = 77
                """).value("marked") == "t"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        #expect(try setup.db.execute("SELECT count(*) AS n FROM changerelay.buffer_message_marks").value("n") == "0")
    }

    /// A buffer's row takes its first message's id: the table's identity is moved past it, so
    /// a row inserted by identity afterwards (the seed's code after a rollback) gets a new id.
    @Test func rowsInsertedLaterByIdentityDoNotCollideWithTheBuffersIds() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        let ids = try (1...3).map { try Self.message(setup.db, conversation: 60 + $0, content: "m\($0)") }
        try RunPipelineTests.waitFor("three flushes") { try Self.flushes(setup.receiver).count == 3 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        let later = try setup.db.execute("""
            INSERT INTO message_buffer (conversation_id, status) VALUES (99, 'active') RETURNING id::text AS id
            """).value("id")
        #expect(later.flatMap { Int($0) }.map { $0 > ids.compactMap { Int($0) }.max()! } == true, "\(String(describing: later))")
    }

    @Test func withTheFlagOffEachMessageIsFlushedAloneFromTheFlagsCommitOn() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, durationMilliseconds: 60_000))
        try run.waitFor("streaming") { _ in run.stderr.contains("streaming") }
        // Buffered before the flag goes off, in a 60 s window: the flag's commit closes it.
        let before = try Self.message(setup.db, conversation: 3, content: "before")
        try setup.db.execute("UPDATE feature_flags SET is_enabled = false WHERE flag_name = 'message_buffering'")
        let first = try Self.message(setup.db, conversation: 3, content: "a")
        let second = try Self.message(setup.db, conversation: 3, content: "b")
        try RunPipelineTests.waitFor("three flushes") { try Self.flushes(setup.receiver).count == 3 }
        #expect(try Self.flushes(setup.receiver).map { Self.ids($0["messages"]) } == [[before], [first], [second]])
        // Back on: a 60 s window, so nothing more is sent while the test runs.
        try setup.db.execute("UPDATE feature_flags SET is_enabled = true WHERE flag_name = 'message_buffering'")
        let third = try Self.message(setup.db, conversation: 3, content: "c")
        try RunPipelineTests.waitFor("the open buffer") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(third)").value("status") == "active"
        }
        #expect(try Self.flushes(setup.receiver).count == 3)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        // The open buffer and the flag survive the restart as of the checkpoint.
        let state = try setup.db.execute("SELECT buffering_enabled FROM changerelay.message_buffering_state")
        #expect(state.rows == [["t"]])
        #expect(try setup.db.execute("SELECT message_id FROM changerelay.buffer_messages").rows == [[third]])
    }

    /// The flag is read as of the checkpoint, not as it is at a restart: turned off while the
    /// service was stopped, its change still closes the buffer opened before it, and the
    /// message committed after it is flushed alone.
    @Test func theFlagTurnedOffWhileStoppedStillClosesTheBuffersOpenedBeforeIt() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = Self.environment(setup, durationMilliseconds: 5000)
        let run = try Background(["run"], environment: environment)
        let before = try Self.message(setup.db, conversation: 4, content: "before")
        try RunPipelineTests.waitFor("the open buffer") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.buffer_messages").value("n") == "1"
        }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
        try setup.db.execute("UPDATE feature_flags SET is_enabled = false WHERE flag_name = 'message_buffering'")
        let after = try Self.message(setup.db, conversation: 4, content: "after")
        let again = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("two flushes") { try Self.flushes(setup.receiver).count == 2 }
        again.child.signal(SIGTERM)
        #expect(again.waitForExit() == 0)
        #expect(try Self.flushes(setup.receiver).map { Self.ids($0["messages"]) } == [[before], [after]])
    }

    @Test func aFlushThatFailsOnceIsCompletedByItsSecondTry() throws {
        let setup = try RunPipelineTests.prepare(behavior: .sequence([.status(503), .status(200)]))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, durationMilliseconds: 100))
        let id = try Self.message(setup.db, conversation: 5, content: "x")
        try RunPipelineTests.waitFor("the buffer completed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(id)").value("status") == "completed"
        }
        #expect(try setup.db.execute("SELECT status, attempts FROM buffer_processing_jobs").rows == [["completed", "2"]])
        #expect(setup.receiver.requestCount == 2)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    @Test func aFlushThatKeepsFailingIsTriedThreeTimesAndMarkedFailed() throws {
        let setup = try RunPipelineTests.prepare(behavior: .status(500, body: "processor down"))
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: Self.environment(setup, durationMilliseconds: 100))
        let id = try Self.message(setup.db, conversation: 5, content: "x")
        try RunPipelineTests.waitFor("the buffer failed") {
            try setup.db.execute("SELECT status FROM message_buffer WHERE id = \(id)").value("status") == "failed"
        }
        let job = try setup.db.execute("SELECT status, attempts, error_message FROM buffer_processing_jobs")
        #expect(job.rows.count == 1 && job.value("status") == "failed" && job.value("attempts") == "3")
        #expect(job.value("error_message")?.contains("500") == true)
        #expect(setup.receiver.requestCount == 3)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// kill -9 at the crash points and at random instants during a burst over several
    /// conversations: every message ends up in exactly one flushed buffer, every buffer has
    /// one job row, and a buffer re-sent after a crash is the same buffer.
    @Test func killNineDuringABurstLosesNoMessageAndSplitsNoBuffer() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let environment = Self.environment(setup, durationMilliseconds: 300, maxSize: 7)
        let total = 240
        let writer = Thread {
            guard let db = try? setup.cluster.connect() else { return }
            for index in 0..<total {
                _ = try? Self.message(db, conversation: index % 6, content: "m\(index)")
                if index % 40 == 39 { usleep(400_000) }
            }
        }
        writer.start()
        try killRunRepeatedly(environment: environment)
        try RunPipelineTests.waitFor("every message written") {
            try setup.db.execute("SELECT count(*) AS n FROM buffered_messages").value("n") == String(total)
        }
        let final = try Background(["run"], environment: environment)
        // Its SIGTERM must find the service running, not starting: what it waits for may all be done by then.
        try RunPipelineTests.waitFor("the last run to stream") { final.stderr.contains("streaming") }
        try RunPipelineTests.waitFor("every buffer completed", timeout: .seconds(180)) {
            try setup.db.execute("""
                SELECT count(*) FILTER (WHERE buffer_id IS NULL) = 0
                       AND NOT EXISTS (SELECT FROM message_buffer WHERE status <> 'completed') AS done
                FROM buffered_messages
                """).value("done") == "t"
        }
        final.child.signal(SIGTERM)
        #expect(final.waitForExit() == 0)
        // Each message in one buffer, each buffer sent with the same messages every time.
        var sent: [String: [String]] = [:]
        for flush in try Self.flushes(setup.receiver) {
            guard case .number(let buffer)? = flush["bufferId"] else { continue }
            let ids = Self.ids(flush["messages"])
            #expect(sent[buffer] == nil || sent[buffer] == ids, "buffer \(buffer) was sent with other messages")
            sent[buffer] = ids
        }
        #expect(sent.values.allSatisfy { $0.count <= 7 })
        let all = sent.values.flatMap { $0 }
        #expect(all.count == total && Set(all).count == total)
        let stored = try setup.db.execute("""
            SELECT (SELECT count(*) FROM message_buffer) AS buffers, (SELECT count(*) FROM buffer_processing_jobs) AS jobs,
                   (SELECT count(DISTINCT buffer_id) FROM buffer_processing_jobs) AS distinct_jobs,
                   (SELECT sum(message_count) FROM message_buffer) AS counted
            """)
        #expect(stored.value("buffers") == String(sent.count))
        #expect(stored.value("jobs") == String(sent.count) && stored.value("distinct_jobs") == String(sent.count))
        #expect(stored.value("counted") == String(total))
        // A buffer's messages are one conversation's, in commit order.
        for (buffer, ids) in sent {
            let rows = try setup.db.execute("""
                SELECT count(DISTINCT conversation_id) AS conversations, bool_and(buffer_id::text = '\(buffer)') AS marked
                FROM buffered_messages WHERE id IN (\(ids.joined(separator: ",")))
                """)
            #expect(rows.value("conversations") == "1" && rows.value("marked") == "t")
        }
    }
}
