import Core
import Decoding
import Foundation
import Handlers
import Logging
import MetricsTestKit
import PlannedEffects
import Testing

private let columnNames = ["id", "clerk_id", "agent_id", "elevenlabs_conversation_id", "status"]
private let columns = columnNames.map { Column(name: $0, typeOID: $0 == "id" ? 20 : 25, isKey: true) }

private func row(_ values: [String?]) -> Row {
    Row(columns: columns, values: values.map { $0.map { .text(ArraySlice($0.utf8)) } ?? .null })
}

private func change(_ operation: Change.Operation, new: [String?], old: [String?]? = nil) -> Change {
    Change(lsn: LSN(0x10), schema: "public", table: "user_conversations", operation: operation,
           new: row(new), old: old.map(row))
}

private let verification: [String?] = ["1", "test_clerk", "test_agent", "test_elevenlabs_id", "unknown"]
private let handler = ConversationCheckHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1/", maxAttempts: 3,
                                                     retryDelay: .milliseconds(10_000)))

@Suite struct ConversationCheckHandlerTests {
    @Test func theSeedsVerificationInsertPlansOneCheckAndAQueuedRow() throws {
        guard case .planned(let effects) = try handler.decide(change(.insert, new: verification)) else {
            Issue.record("expected a planned check")
            return
        }
        let delivery = try #require(effects.deliveries.first)
        #expect(effects.deliveries.count == 1)
        #expect(delivery.url == "http://127.0.0.1:9/functions/v1/check-conversation")
        #expect(delivery.method == "POST")
        #expect(delivery.auth == "service_key")
        #expect(delivery.headers == [.init("Content-Type", "application/json")])
        #expect(delivery.body == #"{"conversation_id":1,"elevenlabs_conversation_id":"test_elevenlabs_id","clerk_id":"test_clerk","agent_id":"test_agent","status":"unknown"}"#)
        #expect(delivery.retryPolicy == .fixed(delay: .milliseconds(10_000), maxAttempts: 3))
        #expect(delivery.orderingKey == "public.user_conversations:1")
        #expect(delivery.report == .triggerAttempts(triggerName: "check_conversations_trigger_attempt", recordID: "1"))
        #expect(delivery.attemptField == "attempt")
        let queued = try #require(effects.rows.first)
        #expect(queued.table == TableName(schema: "public", name: "trigger_execution_logs"))
        #expect(queued.columns == ["trigger_name", "record_id", "attempt", "status", "details"])
        #expect(Array(queued.values.prefix(4)) == ["check_conversations_trigger", "1", "0", "queued"])
    }

    /// An id that is not a number (the table's id retyped to text or uuid) is sent as the
    /// string it is, as the seed's trigger would have: it stopped the stream on every start.
    @Test(arguments: [(#"conv-"x""#, #""conv-\"x\"""#), ("007", #""007""#), ("+5", #""+5""#), ("-5", "-5"),
                      ("9223372036854775807", "9223372036854775807")])
    func anIdThatIsNotANumberIsSentAsAString(id: String, json: String) throws {
        guard case .planned(let effects) = try handler.decide(change(.insert, new: [id, "c", "a", "el", "unknown"])) else {
            Issue.record("expected a planned check")
            return
        }
        let body = try #require(effects.deliveries.first?.body)
        #expect(body.hasPrefix(#"{"conversation_id":"# + json + ","), "\(body)")
        #expect((try? JSONParser.parse(body)) != nil, "the body is JSON: \(body)")
    }

    @Test(arguments: [nil, "", "   "])
    func aMissingOrBlankElevenLabsIDIsSkipped(id: String?) throws {
        let values: [String?] = ["1", "c", "a", id, "unknown"]
        #expect(try handler.decide(change(.insert, new: values)) == .skipped(.noElevenLabsID))
    }

    /// REPLICA IDENTITY FULL sends the old row whole: a large ElevenLabs id (or clerk or
    /// agent id) that the UPDATE left alone is taken from it, not read as NULL.
    @Test func anUnchangedToastedValueIsTakenFromTheOldRow() throws {
        let large = String(repeating: "el", count: 20_000)
        let old: [String?] = ["7", "clerk", "agent", large, "pending"]
        var update = change(.update, new: ["7", "clerk", "agent", nil, "pending2"], old: old)
        update.new?.values[3] = .unchangedToast
        guard case .planned(let effects) = try handler.decide(update) else {
            Issue.record("a status change of a row with a large id was not checked")
            return
        }
        let body = try JSONParser.parse(try #require(effects.deliveries.first).body)
        #expect(body["elevenlabs_conversation_id"] == .string(large))
        #expect(body["status"] == .string("pending2"))
        // The same row updated in another column only: still unrelated.
        var unrelated = change(.update, new: ["7", "clerk2", "agent", nil, "pending"], old: old)
        unrelated.new?.values[3] = .unchangedToast
        #expect(try handler.decide(unrelated) == .skipped(.unrelatedUpdate))
    }

    /// Postgres compares text by its bytes: `café` spelled with a combining accent is a
    /// different value from `café` with a precomposed one, though Swift's `==` calls them equal.
    @Test func canonicallyEquivalentSpellingsAreDifferentValues() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        let newStatus = try handler.decide(change(.update, new: ["1", "c", "a", "el", decomposed],
                                                  old: ["1", "c", "a", "el", composed]))
        #expect(newStatus != .skipped(.unrelatedUpdate))
        let newID = try handler.decide(change(.update, new: ["1", "c", "a", decomposed, "s"], old: ["1", "c", "a", composed, "s"]))
        #expect(newID != .skipped(.unrelatedUpdate))
        #expect(try handler.decide(change(.update, new: ["1", "c2", "a", composed, "s"], old: ["1", "c", "a", composed, "s"]))
            == .skipped(.unrelatedUpdate))
    }

    @Test func aProcessedConversationIsSkipped() throws {
        let values: [String?] = ["1", "c", "a", "el", "processed"]
        #expect(try handler.decide(change(.insert, new: values)) == .skipped(.processed))
        // The edge function marking the row processed: no loop.
        #expect(try handler.decide(change(.update, new: values, old: verification)) == .skipped(.processed))
    }

    @Test func onlyUpdatesOfTheIDOrStatusAreChecked() throws {
        let otherClerk: [String?] = ["1", "other_clerk", "test_agent", "test_elevenlabs_id", "unknown"]
        #expect(try handler.decide(change(.update, new: otherClerk, old: verification)) == .skipped(.unrelatedUpdate))
        let newStatus: [String?] = ["1", "test_clerk", "test_agent", "test_elevenlabs_id", "in_progress"]
        guard case .planned = try handler.decide(change(.update, new: newStatus, old: verification)) else {
            Issue.record("a status change is checked")
            return
        }
        #expect(try handler.decide(Change(lsn: LSN(1), schema: "public", table: "user_conversations", operation: .delete,
                                          old: row(verification))) == .skipped(.notInsertOrUpdate))
    }

    @Test func anUpdateWithoutTheOldRowIsRefusedNamingTheFix() {
        #expect {
            try handler.decide(change(.update, new: verification))
        } throws: { error in
            "\(error)".contains("REPLICA IDENTITY FULL") && "\(error)".contains("public.user_conversations")
                && "\(error)".contains("run once with conversation_checks.enabled = false")
        }
    }

    @Test func aBinaryValueIsRefusedNamingTheColumn() {
        let binary = Change(lsn: LSN(1), schema: "public", table: "user_conversations", operation: .insert,
                            new: Row(columns: columns, values: [.binary([0, 0, 0, 1]), .null, .null, .null, .null]))
        #expect {
            try handler.decide(binary)
        } throws: { error in
            "\(error)".contains("column id") && "\(error)".contains("binary")
        }
    }

    /// Skips are counted by reason; a planned check counts nothing.
    @Test func skipsAreCountedInAMetricByReason() throws {
        let metrics = TestMetrics()
        let counted = ConversationCheckHandler(.init(baseURL: "http://127.0.0.1:9"), metrics: metrics)
        let transaction = Transaction(xid: 1, commitLSN: LSN(0x10), endLSN: LSN(0x18),
                                      commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [])
        var blank = verification
        blank[3] = " "
        var processed = verification
        processed[4] = "processed"
        for values in [blank, blank, processed, verification] {
            _ = try counted.plan(change(.insert, new: values), at: 0, in: transaction)
        }
        let label = ConversationCheckHandler.skippedMetric
        #expect(metrics.counterTotal(label: label, dimensions: [("reason", "no_elevenlabs_id")]) == 2)
        #expect(metrics.counterTotal(label: label, dimensions: [("reason", "processed")]) == 1)
        #expect(metrics.counterTotal(label: label) == 3)
    }

    /// A table whose ElevenLabs id column was renamed: every change is skipped as missing a
    /// column (it read as "no ElevenLabs id", silently), with one warning naming the column.
    @Test func aColumnTheCheckDecidesByThatIsGoneIsSkippedAndSaidOnce() throws {
        let logs = CapturedLogs()
        let renamed = ConversationCheckHandler(.init(baseURL: "http://127.0.0.1:9"), logger: logs.logger)
        let names = ["id", "clerk_id", "agent_id", "el_id", "status"]
        let row = Row(columns: names.map { Column(name: $0, typeOID: 25, isKey: $0 == "id") },
                      values: ["1", "c", "a", "el_1", "unknown"].map { .text(ArraySlice($0.utf8)) })
        let insert = Change(lsn: LSN(0x10), schema: "public", table: "user_conversations", operation: .insert, new: row)
        #expect(try renamed.decide(insert) == .skipped(.missingColumn))
        #expect(try renamed.decide(insert) == .skipped(.missingColumn))
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["missing"] == "elevenlabs_conversation_id")
        #expect(warnings.first?.metadata["table"] == "public.user_conversations")
    }
}
