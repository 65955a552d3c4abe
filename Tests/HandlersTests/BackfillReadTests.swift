import Core
import Decoding
import Handlers
import Logging
import MetricsTestKit
import PlannedEffects
import Testing

/// What `read` (a backfilled row) means to each handler, and the keys of its effects: named
/// by (backfill, table, primary key), so the same backfill never plans a row twice under two
/// keys, whatever position its chunk was handled at.
@Suite struct BackfillReadTests {
    static func row(_ pairs: KeyValuePairs<String, String?>, keys: Set<String> = ["id"]) -> Row {
        Row(columns: pairs.map { Column(name: $0.key, typeOID: $0.key == "id" ? 20 : 25, isKey: keys.contains($0.key)) },
            values: pairs.map { $0.value.map { .text(ArraySlice($0.utf8)) } ?? .null })
    }

    static func chunk(_ table: String, _ rows: [Row], commitLSN: UInt64 = 0x500, backfill: Int64 = 7,
                      keyColumns: [String] = ["id"]) -> Transaction {
        var transaction = Transaction(
            xid: 9, commitLSN: LSN(commitLSN), endLSN: LSN(commitLSN + 8), commitTime: PostgresTimestamp(microsecondsSince2000: 0),
            changes: rows.map { Change(lsn: LSN(commitLSN - 8), schema: "public", table: table, operation: .read, new: $0) })
        transaction.backfill = BackfillChunk(backfill: backfill, number: 3, table: TableName(schema: "public", name: table),
                                             keyColumns: keyColumns, cursor: ["x"], rowsRead: rows.count, rowsSuperseded: 0,
                                             isLast: false)
        return transaction
    }

    static func planned(_ router: Router, _ transaction: Transaction) throws -> [PlannedEffect] {
        var effects: [PlannedEffect] = []
        try router.plan(transaction) { effects.append($0) }
        return effects
    }

    static func deliveryKeys(_ effects: [PlannedEffect]) -> [String] {
        effects.compactMap { if case .delivery(let delivery) = $0 { delivery.idempotencyKey } else { nil } }
    }

    @Test func aBackfilledRowIsNamedByItsKeyNotByItsPlaceInTheWAL() throws {
        let row = Self.row(["tenant": "3", "id": "42", "v": "x"], keys: ["tenant", "id", "v"])
        let first = Self.chunk("items", [row], commitLSN: 0x500, keyColumns: ["tenant", "id"])
        let again = Self.chunk("items", [row], commitLSN: 0x9000, keyColumns: ["tenant", "id"])
        let change = try first.changes.loaded()[0]
        #expect(first.position(of: change, at: 0).key(handler: "echo", suffix: "echo")
            == "echo:backfill:7:public.items:tenant=3,id=42:echo")
        #expect(first.position(of: change, at: 0).key(handler: "echo") == again.position(of: change, at: 5).key(handler: "echo"))
        // Any other change keeps its WAL position.
        var insert = change
        insert.operation = .insert
        #expect(first.position(of: insert, at: 2).key(handler: "echo") == "echo:0/500:2")
    }

    @Test func conversationChecksCheckABackfilledConversationAsAnInsertWithTheSkipRules() throws {
        let handler = ConversationCheckHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1"))
        let router = Router([handler])
        let columns: [String] = ["id", "clerk_id", "agent_id", "elevenlabs_conversation_id", "status"]
        func conversation(_ id: String, _ eleven: String?, _ status: String) -> Row {
            Self.row(KeyValuePairs(dictionaryLiteral: (columns[0], id), (columns[1], "c"), (columns[2], "a"),
                                   (columns[3], eleven), (columns[4], status)))
        }
        let effects = try Self.planned(router, Self.chunk("user_conversations", [
            conversation("1", "el_1", "unknown"), conversation("2", nil, "unknown"), conversation("3", "el_3", "processed"),
        ]))
        #expect(Self.deliveryKeys(effects) == ["conversation_checks:backfill:7:public.user_conversations:id=1:check-conversation"])
        let queued = effects.compactMap { if case .row(let row) = $0 { row } else { nil } }
        #expect(queued.count == 1 && queued[0].values.contains("queued"))
    }

    @Test func dualWriteStagesABackfilledRowAsAnInsert() throws {
        let handler = DualWriteHandler(mode: .apply, logger: Logger(label: "test"))
        let effects = try Self.planned(Router([handler]), Self.chunk("habit_tracker", [Self.row([
            "id": "7", "child_name": "Ada", "week_start_date": "2026-11-23", "week_period": "week",
            "habits": #"[{"name": "Read", "times": ["done", "", null, "", "", "", "missed"]}]"#,
            "user_id": "00000000-0000-0000-0000-000000000001",
        ])]))
        let rows = effects.compactMap { if case .row(let row) = $0 { Dictionary(uniqueKeysWithValues: zip(row.columns, row.values)) } else { nil } }
        #expect(rows.count == 1)
        #expect(rows.first?["operation"] == "INSERT")
        #expect(rows.first?["idempotency_key"] == "dual_write:backfill:7:public.habit_tracker:id=7")
        #expect(rows.first?["projection"] != .some(nil))
    }

    @Test func automationsDoNothingForABackfilledJob() throws {
        let handler = AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1", maxAttempts: 5),
                                        cache: AutomationCache(rateLimitWindow: .seconds(60)), logger: Logger(label: "test"))
        for table in handler.tables.sorted() {
            let name = String(table.split(separator: ".").last ?? "")
            let effects = try Self.planned(Router([handler]), Self.chunk(name, [Self.row(["id": "1", "status": "completed"])]))
            #expect(effects.isEmpty, "\(table)")
        }
    }

    @Test func echoSendsABackfilledRowAsARead() throws {
        let effects = try Self.planned(Router([EchoHandler(url: "http://127.0.0.1:9/echo", tables: ["items"])]),
                                       Self.chunk("items", [Self.row(["id": "5", "v": "five"])]))
        guard case .delivery(let delivery)? = effects.first else {
            Issue.record("no delivery")
            return
        }
        #expect(delivery.idempotencyKey == "echo:backfill:7:public.items:id=5:echo")
        #expect(delivery.delivery.body.contains(#""op":"read""#))
    }

    @Test func aChunksProgressIsStagedWithItsEffectsAndCountedOnceCommitted() throws {
        let metrics = TestMetrics()
        let handler = BackfillProgressHandler(metrics: metrics)
        var transaction = Self.chunk("items", [Self.row(["id": "5"])])
        transaction.backfill?.cursor = ["5", "a \"quoted\" key"]
        transaction.backfill?.isLast = true
        let effects = try handler.committed(transaction)
        let staged = try #require(effects.rows.first)
        #expect(staged.table == BackfillProgressHandler.stagingTable)
        #expect(Dictionary(uniqueKeysWithValues: zip(staged.columns, staged.values)) == [
            "backfill_id": "7", "chunk": "3", "cursor": #"{"5","a \"quoted\" key"}"#, "rows_read": "1",
            "rows_superseded": "0", "last": "t",
        ])
        transaction.backfill = nil
        #expect(try handler.committed(transaction).rows.isEmpty)
        handler.stagedBatchCommitted(QueryResult(columns: ["backfill_id", "table_name", "rows_read"],
                                                 rows: [["7", "public.items", "1000"]]))
        let counter = try metrics.expectCounter(BackfillProgressHandler.rowsMetric, [("table", "public.items")])
        #expect(counter.totalValue == 1000)
    }
}
