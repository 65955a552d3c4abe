import Core
import Decoding
import EmbeddedPostgres
import Foundation
import Handlers
import Logging
import PlannedEffects
import Replication
import TestSupport
@testable import StateStore
import Testing

/// Every statement of the store against the schema `sql/` creates, with the logs of the
/// built-in handlers: what the dispatcher, the planner and `deliveries` run, one step at a time.
@Suite struct StateStoreDatabaseTests {

    private static func startCluster() throws -> LocalPostgres {
        let cluster = try LocalPostgres()
        try cluster.start()
        for migration in try SchemaFiles.migrations() { try cluster.connect().execute(migration) }
        return cluster
    }

    private static let executionID = "6f1d4c1e-5b7a-5d0c-9a57-3f0c2b9e8d11"
    private static let oneTry = #"'{"kind":"fixed","delay_ms":1000,"max_attempts":1}'::jsonb"#

    private static func planned(_ index: Int, report: DeliveryReport?) -> PositionedDelivery {
        PositionedDelivery(
            handler: "test", position: ChangePosition(commitLSN: LSN(0x300), index: index),
            delivery: PlannedDelivery(target: "t", url: "http://127.0.0.1:9/\(index)", headers: [.init("X-Index", "\(index)")],
                                      body: "{}", orderingKey: nil, retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 1),
                                      report: report))
    }

    /// Rows in COPY's text format.
    private static func copyText(_ rows: [[String?]]) -> [UInt8] {
        Array(rows.map { row in
            row.map { value in
                value.map { $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\t", with: "\\t")
                    .replacingOccurrences(of: "\n", with: "\\n") } ?? "\\N"
            }.joined(separator: "\t") + "\n"
        }.joined().utf8)
    }

    @Test func arrayLiteralsComeBackAsTheValuesTheyCarry() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let values: [String?] = ["plain", nil, "NULL", "", #"say "hi""#, #"C:\path\"#, #"\""#, "a,b", "{c}", "}", " padded ",
                                 "line\nbreak\ttab", "e\u{301}", "👍🏽", "שלום", "'; DROP TABLE x; --"]
        let result = try cluster.connect().query(
            "SELECT v, v IS NULL AS null FROM unnest($1::text[]) WITH ORDINALITY AS a(v, n) ORDER BY n",
            [postgresArrayLiteral(values)])
        #expect(result.rows.count == values.count)
        #expect(result.rows.map { $0[0] } == values)
        #expect(result.rows.map { $0[1] } == values.map { $0 == nil ? "t" : "f" })
    }

    @Test func theCheckpointIsZeroUntilWrittenAndThenWhatWasWritten() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let checkpoint = SlotCheckpoint(slot: "changerelay")
        #expect(try checkpoint.read(on: db) == .zero)
        try db.execute("BEGIN")
        try db.execute(checkpoint.statement(writing: LSN(0x1_0000_0230)))
        try db.execute("COMMIT")
        #expect(try checkpoint.read(on: db) == LSN(0x1_0000_0230))
        try db.execute(checkpoint.statement(writing: LSN(0x1_0000_0460)))
        #expect(try checkpoint.read(on: db) == LSN(0x1_0000_0460))
        #expect(try SlotCheckpoint(slot: "other").read(on: db) == .zero)
        // A slot's name is a literal in the statement: one with a quote is written as it is.
        let quoted = SlotCheckpoint(slot: "it's")
        try db.execute(quoted.statement(writing: LSN(0x10)))
        #expect(try quoted.read(on: db) == LSN(0x10))
    }

    @Test func aDeliveryIsCopiedClaimedRecordedRequeuedAndReleasedWithItsLogRows() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("""
            INSERT INTO public.automation_execution_logs (id, status) VALUES ('\(Self.executionID)', 'processing')
            """)

        // The planner's COPY: one delivery per log, and one for a log no handler here writes.
        var rows = DeliveryRows()
        let foreign = DeliveryLog(key: "elsewhere", table: TableName(schema: "public", name: "elsewhere_logs"),
                                  recordFragment: "")
        try db.execute("BEGIN")
        try db.beginCopy(DeliveryRows.target.statement)
        try db.putCopyData(Self.copyText([
            try rows.values(of: Self.planned(0, report: .triggerAttempts(triggerName: "check_attempt", recordID: "7"))),
            try rows.values(of: Self.planned(1, report: .automationExecution(id: Self.executionID))),
            try rows.values(of: Self.planned(2, report: DeliveryReport(log: foreign, payload: "1"))),
        ]))
        try db.endCopy()
        try db.execute(DeliveryNotifications.statement)
        let listener = try cluster.connect()
        let queue = DeliveryQueue(logs: BuiltInHandlers.deliveryLogs, claimLimit: 10, lease: .seconds(45),
                                  logger: Logger(label: "test"))
        try queue.listen(on: listener)
        try db.execute("COMMIT")
        #expect(try listener.waitForNotifications(wakeDescriptors: [], timeout: .seconds(5)) == ["changerelay_deliveries"])
        #expect(try db.execute("SELECT report::text FROM changerelay.deliveries ORDER BY id").rows.map { $0[0] } == [
            #"{"trigger_attempts": {"record_id": "7", "trigger_name": "check_attempt"}}"#,
            #"{"automation_execution": "\#(Self.executionID)"}"#,
            #"{"elsewhere": 1}"#,
        ])

        // Only the deliveries whose logs this dispatcher writes are claimed.
        let claimed = try queue.claim(on: listener, claimer: "test|1|1|1", shares: [], unroutedFloor: nil)
        #expect(claimed.map(\.url) == ["http://127.0.0.1:9/0", "http://127.0.0.1:9/1"])
        #expect(claimed.allSatisfy { $0.attempt == 1 && $0.requeuedAtAttempt == 0 && $0.previousStatus == .pending })
        #expect(claimed.map { $0.headers.map(\.1) } == [["0"], ["1"]])
        #expect(claimed.first?.idempotencyKey == "test:0/300:0:t")

        let started = Date(timeIntervalSince1970: 1_700_000_000)
        try queue.record([
            RecordedAttempt(deliveryID: claimed[0].id, attempt: 1, status: .succeeded, httpStatus: 200, error: nil,
                            retryIn: .zero, started: started, responseBody: #"{"ok":"yes, \"quoted\""}"#),
            RecordedAttempt(deliveryID: claimed[1].id, attempt: 1, status: .dead, httpStatus: 500,
                            error: "gave up after 1 attempts, last: HTTP 500", retryIn: .zero, started: started,
                            responseBody: "broken, {really}"),
        ], on: listener)
        let attemptRow = try db.execute("""
            SELECT trigger_name, record_id, attempt, status, http_status, details->>'final' AS final
            FROM public.trigger_execution_logs
            """)
        #expect(attemptRow.rows == [["check_attempt", "7", "1", "success", "200", "true"]])
        let execution = try db.execute("""
            SELECT status, attempts, error_message, completed_at IS NULL AS open FROM public.automation_execution_logs
            """)
        #expect(execution.rows == [["failed", "1", "gave up after 1 attempts, last: HTTP 500", "t"]])
        #expect(try db.execute("SELECT response_body FROM changerelay.delivery_attempts ORDER BY id").rows.map { $0[0] }
                    == [#"{"ok":"yes, \"quoted\""}"#, "broken, {really}"])

        // The due time is UTC whatever the session's zone.
        try db.execute("SET timezone = 'Asia/Kolkata'")
        let listed = try DeliveryListing.newest(status: nil, limit: 10, on: db)
        let due = try db.query("SELECT floor(extract(epoch FROM next_attempt_at))::bigint FROM changerelay.deliveries ORDER BY id DESC",
                               []).rows.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double($0[0]!)!)) }
        #expect(listed.map(\.nextAttemptAt) == due)
        try db.execute("RESET timezone")
        #expect(listed.map(\.status) == ["pending", "dead", "succeeded"])
        #expect(listed[1].lastHTTPStatus == "500" && listed[0].lastHTTPStatus == "-" && listed[0].lastError == "")
        #expect(try DeliveryListing.newest(status: .status(.dead), limit: 10, on: db).map(\.id) == [String(claimed[1].id)])
        // A target with credentials in it (user-info, query values) is listed without them (the CLI and the admin API read this).
        try db.query("UPDATE changerelay.deliveries SET target_url = 'https://hook:pa55word@receiver.test/x?y=1' WHERE id = $1",
                     [String(claimed[1].id)])
        #expect(try DeliveryListing.newest(status: .status(.dead), limit: 10, on: db).map(\.url) == ["https://<redacted>@receiver.test/x?y=<redacted>"])

        // The re-queue puts the execution back to processing; a log whose table this
        // database lacks is left out rather than failing the statement.
        let missing = DeliveryLog(key: "missing", table: TableName(schema: "public", name: "missing_logs"),
                                  recordFragment: "", requeueFragment: "missing AS (DELETE FROM public.missing_logs)")
        #expect(try DeliveryRequeue.requeue(.allDead, logs: BuiltInHandlers.deliveryLogs.union([missing]), on: db) == 1)
        #expect(try listener.waitForNotifications(wakeDescriptors: [], timeout: .seconds(5)) == ["changerelay_deliveries"])
        #expect(try db.execute("SELECT status, error_message FROM public.automation_execution_logs").rows
                    == [["processing", nil]])
        #expect(try DeliveryRequeue.requeue(.ids([claimed[0].id]), logs: BuiltInHandlers.deliveryLogs, on: db) == 0)

        // Claimed again as attempt 2, then put back unsent as it was.
        let again = try queue.claim(on: listener, claimer: "test|1|1|1", shares: [], unroutedFloor: nil)
        #expect(again.map(\.id) == [claimed[1].id])
        #expect(again.first?.attempt == 2 && again.first?.requeuedAtAttempt == 1 && again.first?.policyAttempt == 1)
        try queue.release(again, on: listener)
        #expect(try db.query("SELECT status, attempt FROM changerelay.deliveries WHERE id = $1", [String(claimed[1].id)]).rows
                    == [["pending", "1"]])
    }

    /// Deliveries with a first try under way, by idempotency key, each leased until the SQL
    /// expression given.
    private static func insertTries(_ db: PostgresConnection, _ leases: [String: String]) throws {
        try db.execute("INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, "
            + "status, attempt, locked_until) VALUES " + leases.sorted { $0.key < $1.key }.map { key, until in
                "(\(quoteLiteral(key)), 'test', '0/300', 'http://127.0.0.1:9/', '{}', \(oneTry), 'sending', 1, \(until))"
            }.joined(separator: ", "))
    }

    /// A claim names its process and the attempt it makes (sql/033). The claims of a process
    /// of this machine that has ended (its pid gone, or taken by a later process) are made due
    /// at once and taken over by the next claim as an expired lease is; those of a running
    /// process, of another host, and a claim whose attempt is not the row's (a binary from
    /// before 033 claimed the row again under the older name) keep their leases.
    @Test func theClaimsOfAnEndedProcessAreTakenOverAndOthersKeepTheirLeases() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let own = try #require(ProcessIdentity.current())
        var reused = own
        reused.start += 1
        var vanished = own
        vanished.pid = 2_000_000_000
        var elsewhere = own
        elsewhere.host = "another-host"
        let claimers = ["reused": reused, "vanished": vanished, "overwritten": vanished, "running": own, "elsewhere": elsewhere]
        try db.execute("INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy) "
            + "VALUES " + claimers.keys.sorted().map { "('\($0)', 'test', '0/300', 'http://127.0.0.1:9/', '{}', \(Self.oneTry))" }
                .joined(separator: ", "))
        let queue = DeliveryQueue(logs: [], claimLimit: 1, lease: .seconds(3600), logger: Logger(label: "test"))
        for key in claimers.keys.sorted() {
            // One row at a time, in id order: the rows were inserted in key order.
            #expect(try queue.claim(on: db, claimer: claimers[key]!.description, shares: [], unroutedFloor: nil).count == 1)
        }
        try db.execute("UPDATE changerelay.deliveries SET attempt = attempt + 1 WHERE idempotency_key = 'overwritten'")
        let ended = { (text: String) in ProcessIdentity(parsing: text)?.hasEnded(seenFrom: own) ?? false }
        #expect(try DeliveryQueue.takeOverOrphans(on: db, ended: ended) == 2)
        #expect(try DeliveryQueue.takeOverOrphans(on: db, ended: ended) == 0, "a row made due is not taken over again")
        let taken = try (0..<3).flatMap { _ in try queue.claim(on: db, claimer: own.description, shares: [], unroutedFloor: nil) }
        #expect(taken.map(\.previousStatus) == [.sending, .sending] && taken.map(\.policyAttempt) == [1, 1])
        #expect(try db.query("SELECT idempotency_key FROM changerelay.deliveries WHERE id = ANY ($1::bigint[]) ORDER BY 1",
                             [postgresArrayLiteral(taken.map { String($0.id) })]).rows == [["reused"], ["vanished"]])
        #expect(try db.query("SELECT claimed_by FROM changerelay.deliveries WHERE idempotency_key = 'reused'", []).value("claimed_by")
            == own.description + "#2")
        // A release forgets the claimer: a binary from before 033 claiming the row again (no
        // claimer, the same attempt number) is not taken for the ended process's claim.
        try db.execute("UPDATE changerelay.deliveries SET claimed_by = '\(reused.description)#1', locked_until = now() - interval '1 second' "
                       + "WHERE idempotency_key = 'running'")
        let released = try queue.claim(on: db, claimer: reused.description, shares: [], unroutedFloor: nil)
        try queue.release(released, on: db)
        #expect(try queue.claim(on: db, claimer: nil, shares: [], unroutedFloor: nil).count == 1)
        #expect(try DeliveryQueue.takeOverOrphans(on: db, ended: ended) == 0)
    }

    /// A row whose lease ran out (its dispatcher died between claim and record) is claimed
    /// with its attempt number moved on but its retry allowance kept: the lost claim may never
    /// have been sent. Put back unsent, it is as it was before the takeover.
    @Test func aTakeOverKeepsTheRetryAllowanceAndAReleaseUndoesIt() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.insertTries(db, ["lost": "now() - interval '1 second'"])
        let queue = DeliveryQueue(logs: [], claimLimit: 10, lease: .seconds(45), logger: Logger(label: "test"))
        let taken = try queue.claim(on: db, claimer: "test|1|1|1", shares: [], unroutedFloor: nil)
        #expect(taken.map(\.attempt) == [2])
        #expect(taken.map(\.policyAttempt) == [1], "the lost claim's try is this one again")
        #expect(taken.map(\.previousStatus) == [.sending])
        try queue.release(taken, on: db)
        #expect(try db.execute("SELECT status || ':' || attempt || ':' || requeued_at_attempt AS s FROM changerelay.deliveries")
            .value("s") == "failed:1:0")
    }

    /// A try whose dispatcher died (its lease ran out) can be cancelled, with no dispatcher
    /// running to take it over first; one still within its lease cannot. A late record of the
    /// cancelled try leaves it cancelled.
    @Test func aTryWhoseLeaseRanOutCanBeCancelledAndItsLateRecordIsIgnored() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try Self.insertTries(db, ["stale": "now() - interval '1 second'", "live": "now() + interval '1 hour'"])
        let ids = try db.execute("SELECT string_agg(id::text, ',' ORDER BY idempotency_key DESC) AS ids FROM changerelay.deliveries")
            .value("ids")!.split(separator: ",").compactMap { Int64($0) }
        #expect(try DeliveryCancel.cancel(ids, logs: [], on: db) == 1)
        let queue = DeliveryQueue(logs: [], claimLimit: 10, lease: .seconds(45), logger: Logger(label: "test"))
        try queue.record([RecordedAttempt(deliveryID: ids[0], attempt: 1, status: .succeeded, httpStatus: 200, error: nil,
                                          retryIn: .zero, started: Date(), responseBody: nil)], on: db)
        #expect(try db.execute("""
            SELECT string_agg(idempotency_key || ':' || status, ',' ORDER BY idempotency_key) AS s FROM changerelay.deliveries
            """).value("s") == "live:sending,stale:dead")
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.delivery_attempts").value("n") == "0")
    }

    /// A claim changes no indexed column (017): each row's claimed version stays on its page
    /// and no index gets an entry, which halved what a claim wrote. Each endpoint gives at
    /// most the share it is asked for, in due order, and an endpoint not named gives none.
    @Test func aClaimRewritesRowsInPlaceAndTakesEachEndpointsShare() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, endpoint)
            SELECT 'k' || g, 'test', '0/300', 'http://127.0.0.1:9/', '{}', '{"kind":"fixed","delay_ms":1000,"max_attempts":1}',
                   CASE WHEN g % 3 = 0 THEN NULL ELSE 'webhook:' || (g % 3) END
            FROM generate_series(1, 60) g
            """)
        let queue = DeliveryQueue(logs: [], claimLimit: 64, lease: .seconds(45), logger: Logger(label: "test"))
        let open = try queue.openDeliveries(on: db)
        #expect(open.endpoints.map(\.endpoint) == ["webhook:1", "webhook:2"])
        try db.execute("BEGIN")
        let claimed = try queue.claim(on: db, claimer: "test|1|1|1", shares: [EndpointShare(open.endpoints[0], rows: 5)], unroutedFloor: open.unroutedFloor)
        let written = try db.query("""
            SELECT pg_stat_get_xact_tuples_updated('changerelay.deliveries'::regclass) AS updated,
                   pg_stat_get_xact_tuples_hot_updated('changerelay.deliveries'::regclass) AS hot
            """, [])
        try db.execute("COMMIT")
        #expect(claimed.filter { $0.endpoint == "webhook:1" }.count == 5)
        #expect(claimed.filter { $0.endpoint == nil }.count == 20)
        #expect(!claimed.contains { $0.endpoint == "webhook:2" })
        #expect(written.value("updated") == "25")
        #expect(written.value("hot") == "25")
        #expect(try db.execute("""
            SELECT count(*) FROM changerelay.deliveries WHERE status = 'sending' AND completed_at IS NULL
            """).rows == [["25"]])
    }

    /// A backfill request is its slot's service's (037): a runner reading another slot, which
    /// shares the state database, takes none of it, and one recorded before 037 (no slot) is
    /// taken by any runner, as it was.
    @Test func aBackfillRequestIsTakenOnlyByTheRunnerOfItsSlot() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let first = try BackfillRequests.request(schema: "public", table: "jobs", where: nil, chunkSize: 10, keyColumns: ["id"],
                                                 rowsEstimated: nil, slot: "groups_a", on: db)
        #expect(try db.query("SELECT slot_name FROM changerelay.backfills WHERE id = $1", [String(first)]).value("slot_name") == "groups_a")
        #expect(try BackfillRequests.next(slot: "groups_b", on: db) == nil)
        #expect(try BackfillRequests.next(slot: "groups_a", on: db)?.id == first)
        let second = try BackfillRequests.request(schema: "public", table: "jobs", where: nil, chunkSize: 10, keyColumns: ["id"],
                                                  rowsEstimated: nil, slot: "groups_b", on: db)
        #expect(try BackfillRequests.next(slot: "groups_b", on: db)?.id == second)
        try db.query("UPDATE changerelay.backfills SET slot_name = NULL WHERE id = $1", [String(first)])
        #expect(try BackfillRequests.next(slot: "groups_b", on: db)?.id == first)
        #expect(try BackfillRequests.next(slot: "groups_c", on: db)?.id == first)
    }

    /// A claim stays on its row's page whatever the rows' width (036). At 017's fillfactor of 60
    /// the room a page kept was less than its rows' claimed versions took, at every width here:
    /// a quarter to a third of each claim wrote an entry into every index. At 40 the room left
    /// is more than the rows written.
    @Test(arguments: [60, 300, 500, 900, 1_500])
    func aClaimKeepsEveryRowOnItsPageWhateverItsWidth(bodyBytes: Int) throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.query("""
            INSERT INTO changerelay.deliveries (idempotency_key, ordering_key, handler, source_lsn, target_url, body,
                                                retry_policy, headers, endpoint)
            SELECT 'msg_' || gen_random_uuid(), 'webhook:1:public.chat_messages:id=' || gen_random_uuid(), 'webhooks', '0/300',
                   'http://127.0.0.1:9/hook/1', '{"type":"chat.message.created","data":"' || repeat('x', $1) || g || '"}',
                   '{"kind": "exponential", "cap_ms": 3600000, "jitter": "full", "base_ms": 1000, "multiplier": 2, "max_attempts": 4}',
                   jsonb_build_object('X-Trace', repeat('t', 40), 'X-Webhook', 'msg_' || gen_random_uuid()), 'webhook:1'
            FROM generate_series(1, 60) g
            """, [String(bodyBytes)])
        let queue = DeliveryQueue(logs: [], claimLimit: 64, lease: .seconds(45), logger: Logger(label: "test"))
        let open = try queue.openDeliveries(on: db)
        try db.execute("BEGIN")
        let claimed = try queue.claim(on: db, claimer: "test|1|1|1", shares: [EndpointShare(open.endpoints[0], rows: 64)],
                                      unroutedFloor: open.unroutedFloor)
        let written = try db.query("""
            SELECT pg_stat_get_xact_tuples_updated('changerelay.deliveries'::regclass) AS updated,
                   pg_stat_get_xact_tuples_hot_updated('changerelay.deliveries'::regclass) AS hot
            """, [])
        try db.execute("COMMIT")
        #expect(claimed.count == 60)
        #expect(written.value("updated") == "60")
        #expect(written.value("hot") == "60")
    }

    /// A claim's scans start at the floors read with the endpoints: the earliest due time of
    /// each one's unfinished rows, in flight included, so rows finished since the last vacuum
    /// are not walked. A row due before its floor (committed since by a transaction that began
    /// earlier) waits for the next reading, and is found by it.
    @Test func aClaimStartsAtTheFloorsAndTheNextReadingFindsARowBelowThem() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        func insert(_ key: String, endpoint: String?, dueMinutesAgo minutes: Int) throws {
            try db.query("""
                INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy,
                                                    endpoint, next_attempt_at)
                VALUES ($1, 'test', '0/300', 'http://127.0.0.1:9/', '{}', '{"kind": "fixed", "delay_ms": 1000, "max_attempts": 1}',
                        $2, now() - $3::int * interval '1 minute')
                """, [key, endpoint, String(minutes)])
        }
        // Finished rows before the open ones: the floor is past them.
        try insert("done", endpoint: "webhook:1", dueMinutesAgo: 30)
        try db.execute("UPDATE changerelay.deliveries SET status = 'succeeded', completed_at = now()")
        try insert("a", endpoint: "webhook:1", dueMinutesAgo: 10)
        try insert("b", endpoint: "webhook:1", dueMinutesAgo: 5)
        try insert("u", endpoint: nil, dueMinutesAgo: 10)
        let queue = DeliveryQueue(logs: [], claimLimit: 64, lease: .seconds(45), logger: Logger(label: "test"))
        let open = try queue.openDeliveries(on: db)
        let floors = try db.query("""
            SELECT (SELECT next_attempt_at::text FROM changerelay.deliveries WHERE idempotency_key = 'a') AS routed,
                   (SELECT next_attempt_at::text FROM changerelay.deliveries WHERE idempotency_key = 'u') AS unrouted
            """, [])
        #expect(open == OpenDeliveries(endpoints: [OpenEndpoint(endpoint: "webhook:1", floor: floors.value("routed")!)],
                                       unroutedFloor: floors.value("unrouted")))

        try insert("late", endpoint: "webhook:1", dueMinutesAgo: 20)
        try insert("late-unrouted", endpoint: nil, dueMinutesAgo: 20)
        func keys(_ claimed: [ClaimedDelivery]) -> [String] { claimed.map(\.idempotencyKey).sorted() }
        let first = try queue.claim(on: db, claimer: "test|1|1|1", shares: [EndpointShare(open.endpoints[0], rows: 8)], unroutedFloor: open.unroutedFloor)
        #expect(keys(first) == ["a", "b", "u"])
        // Rows in flight keep the floor where they are; the next reading finds the late ones.
        let again = try queue.openDeliveries(on: db)
        let second = try queue.claim(on: db, claimer: "test|1|1|1", shares: [EndpointShare(again.endpoints[0], rows: 8)], unroutedFloor: again.unroutedFloor)
        #expect(keys(second) == ["late", "late-unrouted"])
        try queue.release(first + second, on: db)
        #expect(try queue.openDeliveries(on: db) == again)
    }

    /// What binaries from before 035 (and after 025) set up and ran: a batch's webhook
    /// deliveries staged in the committing session's own temporary table, in `deliveries`'
    /// columns, and queued by one prepared statement.
    static let webhookDeliveryStaging = Staging(
        table: TableName(schema: "pg_temp", name: "webhook_deliveries_staged"),
        statements: "EXECUTE changerelay_queue_webhook_deliveries",
        sessionSetup: "SELECT changerelay.create_webhook_deliveries_staging(); SELECT changerelay.prepare_webhook_deliveries()")

    /// The staging of binaries from before 035 still works, for them: another session never
    /// sees a batch's staged deliveries, and a rollback or the committer's emptying (a delete
    /// or a truncation) leaves the table empty. The statement the session prepared queues them
    /// in the order they were staged, each with one `webhook_logs` row whose id its report
    /// names; an event staged again (its batch replayed, or twice in one batch) is queued and
    /// logged once.
    @Test func webhookDeliveriesOfBinariesFromBefore035AreStagedPerSessionAndQueuedWithOneLogRowEach() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let other = try cluster.connect()
        let staging = Self.webhookDeliveryStaging
        let setup = try #require(staging.sessionSetup)
        // Again on a session that has it already: a reconnect's setup must not fail.
        for session in [db, db, other] { try session.execute(setup) }
        let config = try db.execute("""
            INSERT INTO public.webhook_configs (name, url, events) VALUES ('c', 'http://127.0.0.1:9/', '{x}') RETURNING id::text AS id
            """).value("id")!
        var rows = DeliveryRows()
        /// Copies the deliveries of `ids` into the staging table, as the committer does.
        func stage(_ ids: [String], config: String = config) throws {
            try db.beginCopy(CopyTarget(table: staging.table, columns: DeliveryRows.target.columns).statement)
            try db.putCopyData(Self.copyText(try ids.map { id in
                try rows.values(of: PositionedDelivery(
                    handler: "webhooks", position: ChangePosition(commitLSN: LSN(0x300), index: 0),
                    delivery: PlannedDelivery(target: config + ":x.created", url: "http://127.0.0.1:9/",
                                              body: #"{"type":"x.created","id":"\#(id)"}"#, orderingKey: "webhook:" + config,
                                              retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 1),
                                              report: DeliveryReport(log: .webhookLog, payload: """
                                                  {"webhook_id":"\(id)","config_id":"\(config)"}
                                                  """),
                                              endpoint: "webhook:" + config, idempotencyKey: id)))
            }))
            try db.endCopy()
        }
        func staged(on session: PostgresConnection) throws -> String? {
            try session.execute("SELECT count(*) AS n FROM pg_temp.webhook_deliveries_staged").value("n")
        }
        /// Every queued delivery in id order: its key, and its log row's payload id, config and event type.
        func queued() throws -> [[String?]] {
            try db.execute("""
                SELECT d.idempotency_key, w.payload->>'id' AS payload, coalesce(w.webhook_config_id::text, '-') AS config,
                       w.event_type, w.attempt_count::text
                FROM changerelay.deliveries d
                LEFT JOIN public.webhook_logs w ON w.id::text = d.report->'webhook_log'->>'id'
                ORDER BY d.id
                """).rows
        }
        func logged(_ ids: [String], config: String = config) -> [[String?]] {
            ids.map { [$0, $0, config, "x.created", "0"] }
        }

        try db.execute("BEGIN")
        try stage(["msg_c", "msg_a", "msg_b"])
        #expect(try staged(on: other) == "0")
        try db.execute(staging.statements)
        try db.execute(staging.emptying(truncating: false))
        try db.execute("COMMIT")
        #expect(try staged(on: db) == "0")
        #expect(try queued() == logged(["msg_c", "msg_a", "msg_b"]))

        try db.execute("BEGIN")
        try stage(["msg_e"])
        try db.execute("ROLLBACK")
        #expect(try staged(on: db) == "0")

        // Replayed (b, c), twice in one batch (d), and for a config deleted since (orphan).
        let gone = try db.execute("SELECT (max(id) + 1)::text AS id FROM public.webhook_configs").value("id")!
        try db.execute("BEGIN")
        try stage(["msg_b", "msg_d", "msg_c", "msg_d"])
        try stage(["msg_orphan"], config: gone)
        try db.execute(staging.statements)
        try db.execute(staging.emptying(truncating: true))
        try db.execute("COMMIT")
        #expect(try staged(on: db) == "0")
        #expect(try queued() == logged(["msg_c", "msg_a", "msg_b", "msg_d"]) + [["msg_orphan", "msg_orphan", "-", "x.created", "0"]])
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == "5")
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.webhook_log_ids").value("n") == "0")

        // 025 applied again, and its statement prepared again on a session that has it.
        try db.execute(try String(contentsOfFile: SchemaFiles.directory + "/025_webhook_deliveries_staged.sql", encoding: .utf8))
        try db.execute(setup)
        try db.execute("BEGIN")
        try stage(["msg_f"])
        try db.execute(staging.statements)
        try db.execute(staging.emptying(truncating: false))
        try db.execute("COMMIT")
        #expect(try queued().last == logged(["msg_f"])[0])

        // sql/README's repair of the rows an older dispatcher sent without logging (a rolling
        // update): msg_f sent, recorded in deliveries, its log row left as queued. Twice: it
        // touches only rows behind their delivery.
        try db.execute("""
            UPDATE changerelay.deliveries SET status = 'succeeded', attempt = 1, last_http_status = 200, completed_at = now()
            WHERE idempotency_key = 'msg_f';
            INSERT INTO changerelay.delivery_attempts (delivery_id, attempt, started_at, http_status, response_body)
            SELECT id, 1, now(), 200, 'ok' FROM changerelay.deliveries WHERE idempotency_key = 'msg_f'
            """)
        let readme = try String(contentsOfFile: SchemaFiles.directory + "/README.md", encoding: .utf8)
        let upgrading = try #require(readme.range(of: "## Upgrading across 025"))
        let opening = try #require(readme.range(of: "```sql\n", range: upgrading.upperBound..<readme.endIndex))
        let closing = try #require(readme.range(of: "```", range: opening.upperBound..<readme.endIndex))
        let repair = String(readme[opening.upperBound..<closing.lowerBound])
        for _ in 0..<2 {
            try db.execute(repair)
            #expect(try db.execute("""
                SELECT w.attempt_count::text, w.response_status::text, w.response_body, w.completed_at IS NOT NULL
                FROM public.webhook_logs w WHERE w.payload->>'id' = 'msg_f'
                """).rows == [["1", "200", "ok", "t"]])
            #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs WHERE attempt_count > 0").value("n") == "1")
        }

        // Rolled back, the queued deliveries are mapped for binaries from before 025; an event
        // mapped already (to a row of an earlier send) is mapped to its delivery's row now.
        try db.execute("INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id) VALUES ('msg_f', '0')")
        try db.execute(try String(contentsOfFile: SchemaFiles.directory + "/025_webhook_deliveries_staged.rollback.sql",
                                  encoding: .utf8))
        #expect(try db.execute("""
            SELECT count(*) AS n FROM changerelay.webhook_log_ids m JOIN public.webhook_logs w ON w.id::text = m.log_id
            WHERE w.payload->>'id' = m.webhook_id
            """).value("n") == "6")
    }

    /// The staged webhook_logs rows of binaries from before 025 (018, 020 to 022, 024) still
    /// get one row per event through their own statements, which stay for them.
    @Test func webhookLogRowsOfBinariesFromBefore025AreLoggedOncePerEvent() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let other = try cluster.connect()
        // What a binary from before 025 set up and ran: 024's table, 022's statement.
        let setup = "SELECT changerelay.create_webhook_logs_staging_kept(); SELECT changerelay.prepare_webhook_log_rows()"
        let staging = Staging(table: TableName(schema: "pg_temp", name: "webhook_logs_staged"),
                              statements: "EXECUTE changerelay_insert_webhook_log_rows", sessionSetup: setup)
        // Again on a session that has it already: a reconnect's setup must not fail.
        for session in [db, db, other] { try session.execute(setup) }
        /// The batch's insert, as the committer runs it; returns how many events got a row.
        func insertStaged() throws -> Int {
            let count = "SELECT count(*) AS n FROM changerelay.webhook_log_ids"
            let before = try #require(Int(try db.execute(count).value("n") ?? ""))
            try db.execute(staging.statements)
            return try #require(Int(try db.execute(count).value("n") ?? "")) - before
        }
        let config = try db.execute("""
            INSERT INTO public.webhook_configs (name, url, events) VALUES ('c', 'http://127.0.0.1:9/', '{x}') RETURNING id::text AS id
            """).value("id")!
        func stage(_ ids: [String]) throws {
            for id in ids {
                try db.query("""
                    INSERT INTO pg_temp.webhook_logs_staged (webhook_id, config_id, event_type, payload)
                    VALUES ($1, $2, 'x.created', '{"id":"' || $1 || '"}')
                    """, [id, config])
            }
        }
        func staged(on session: PostgresConnection) throws -> String? {
            try session.execute("SELECT count(*) AS n FROM pg_temp.webhook_logs_staged").value("n")
        }

        try db.execute("BEGIN")
        try stage(["msg_a", "msg_b", "msg_c"])
        #expect(try staged(on: other) == "0")
        #expect(try insertStaged() == 3)
        try db.execute(staging.emptying(truncating: false))
        try db.execute("COMMIT")
        #expect(try staged(on: db) == "0")

        try db.execute("BEGIN")
        try stage(["msg_e"])
        try db.execute("ROLLBACK")
        #expect(try staged(on: db) == "0")

        try db.execute("BEGIN")
        try stage(["msg_b", "msg_c", "msg_d"])
        #expect(try insertStaged() == 1)
        try db.execute(staging.emptying(truncating: true))
        try db.execute("COMMIT")
        #expect(try staged(on: db) == "0")

        var logs = try db.execute("""
            SELECT m.webhook_id, w.payload->>'id' AS payload, w.webhook_config_id::text AS config
            FROM changerelay.webhook_log_ids m JOIN public.webhook_logs w ON w.id::text = m.log_id ORDER BY m.webhook_id
            """).rows
        #expect(logs == ["a", "b", "c", "d"].map { ["msg_\($0)", "msg_\($0)", config] })
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == "4")
        #expect(try db.execute("SELECT to_regclass('changerelay.webhook_logs_staged') IS NULL AS gone").value("gone") == "t")

        // 020's lookup of the events logged already, rolled back to 018's and applied again.
        let lookup = SchemaFiles.directory + "/020_webhook_log_ids_lookup"
        for file in [lookup + ".rollback.sql", lookup + ".sql", lookup + ".sql"] {
            try db.execute(try String(contentsOfFile: file, encoding: .utf8))
            let fresh = "msg_\(logs.count + 1)"
            try db.execute("BEGIN")
            try stage(["msg_a", fresh])
            #expect(try db.execute("SELECT changerelay.insert_staged_webhook_logs() AS n").value("n") == "1", "\(file)")
            try db.execute("COMMIT")
            logs.append([fresh, fresh, config])
        }

        // 021's statement, for binaries from before 022, prepared beside 022's.
        let legacy = try cluster.connect()
        try legacy.execute("SELECT changerelay.create_webhook_logs_staging(); SELECT changerelay.prepare_webhook_logs_insert()")
        let legacyFresh = "msg_\(logs.count + 1)"
        try legacy.execute("BEGIN")
        try legacy.query("""
            INSERT INTO pg_temp.webhook_logs_staged (webhook_id, config_id, event_type, payload)
            SELECT id, $2, 'x.created', '{"id":"' || id || '"}' FROM unnest(ARRAY['msg_a', $1]) id
            """, [legacyFresh, config])
        try legacy.execute("EXECUTE changerelay_insert_staged_webhook_logs")
        try legacy.execute("COMMIT")
        logs.append([legacyFresh, legacyFresh, config])
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == String(logs.count))

        // 022 applied again, and its insert prepared again on a session that has it: the
        // prepared statement goes on as before. A config deleted since its event was staged
        // leaves the row without a reference; an event staged twice in one batch gets one row.
        let prepared = try String(contentsOfFile: SchemaFiles.directory + "/022_webhook_log_rows_conflict.sql", encoding: .utf8)
        try db.execute(prepared)
        try db.execute(setup)
        let gone = try db.execute("SELECT (max(id) + 1)::text AS id FROM public.webhook_configs").value("id")!
        try db.execute("BEGIN")
        try stage(["msg_a", "msg_kept", "msg_kept"])
        try db.query("""
            INSERT INTO pg_temp.webhook_logs_staged (webhook_id, config_id, event_type, payload)
            VALUES ('msg_orphan', $1, 'x.created', '{"id":"msg_orphan"}')
            """, [gone])
        #expect(try insertStaged() == 2)
        try db.execute("COMMIT")
        let added = try db.execute("""
            SELECT m.webhook_id, w.payload->>'id' AS payload, coalesce(w.webhook_config_id::text, '-') AS config, w.event_type
            FROM changerelay.webhook_log_ids m JOIN public.webhook_logs w ON w.id::text = m.log_id
            WHERE m.webhook_id IN ('msg_kept', 'msg_orphan') ORDER BY m.webhook_id
            """).rows
        #expect(added == [["msg_kept", "msg_kept", config, "x.created"], ["msg_orphan", "msg_orphan", "-", "x.created"]])
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs").value("n") == String(logs.count + 2))
    }

    /// The dual-write sync's, message buffering's and backfills' staged rows (019, 024) are
    /// the committer session's own: another session never sees them, the committer's emptying
    /// and a rollback both leave the tables empty, the rows are kept at a commit (Postgres
    /// does not truncate the session's tables at every commit), a reconnect's setup runs again
    /// without error, and the shared tables of 008, 014 and 016 are gone.
    @Test func dualWriteBufferAndBackfillRowsAreStagedPerSessionAndEmptiedByTheCommitter() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let other = try cluster.connect()
        let windows = BufferBook.Windows(duration: .seconds(30), maxAge: .seconds(300), maxSize: 3)
        let handlers: [any Handler] = DualWriteHandler.Mode.allCases.map { DualWriteHandler(mode: $0, logger: Logger(label: "test")) } + [
            MessageBufferingHandler(.init(baseURL: "http://127.0.0.1:9/", windows: windows),
                                    state: MessageBufferState(restored: .init(book: BufferBook(windows: windows), buffering: true))),
            BackfillProgressHandler(),
        ]
        let setups = try handlers.map { try #require($0.staging?.sessionSetup, "\($0.name)") }
        for session in [db, db, other] {
            for setup in setups { try session.execute(setup) }
        }
        let tables = [DualWriteHandler.stagingTable, MessageBufferingHandler.stagingTable, BackfillProgressHandler.stagingTable]
        #expect(tables.allSatisfy { $0.schema == "pg_temp" })
        func stage() throws {
            try db.execute("""
                INSERT INTO pg_temp.dual_write_staged (habit_tracker_id, source_lsn, operation, mode, idempotency_key, request_data)
                VALUES (1, '0/10', 'DELETE', 'apply', 'dual_write:0/10:0', '{}');
                INSERT INTO pg_temp.message_buffer_staged (kind, event_lsn, event_index, buffering) VALUES ('flag', '0/10', 0, true);
                INSERT INTO pg_temp.backfill_progress_staged (backfill_id, chunk, rows_read, rows_superseded, last)
                VALUES (1, 1, 10, 0, false);
                """)
        }
        func staged(on session: PostgresConnection) throws -> [String?] {
            try tables.map { try session.execute("SELECT count(*) AS n FROM \($0)").value("n") }
        }

        try db.execute("BEGIN")
        try stage()
        #expect(try staged(on: db) == ["1", "1", "1"])
        #expect(try staged(on: other) == ["0", "0", "0"])
        #expect(try db.execute("SELECT count(*) AS n FROM pg_temp.dual_write_final").value("n") == "1")
        #expect(try db.execute("SELECT changerelay.apply_staged_message_buffers() AS n").value("n") == "0")
        #expect(try db.execute("SELECT count(*) AS n FROM changerelay.apply_staged_backfill_progress()").value("n") == "0")
        try db.execute("COMMIT")
        #expect(try staged(on: db) == ["1", "1", "1"])
        let scratch = "SELECT count(*) AS n FROM pg_temp.dual_write_rows"
        try db.execute("INSERT INTO pg_temp.dual_write_rows (habit_tracker_id) VALUES (1)")
        for (index, handler) in handlers.enumerated() {
            try db.execute(try #require(handler.staging).emptying(truncating: index % 2 == 0))
        }
        #expect(try staged(on: db) == ["0", "0", "0"])
        #expect(try db.execute(scratch).value("n") == "0")
        #expect(try db.execute("SELECT buffering_enabled::text AS b FROM changerelay.message_buffering_state").value("b") == "true")

        try db.execute("BEGIN")
        try stage()
        try db.execute("ROLLBACK")
        #expect(try staged(on: db) == ["0", "0", "0"])
        let shared = try db.execute("""
            SELECT to_regclass('changerelay.dual_write_staged') IS NULL AND to_regclass('changerelay.message_buffer_staged') IS NULL
                   AND to_regclass('changerelay.backfill_progress_staged') IS NULL AND to_regclass('changerelay.dual_write_final') IS NULL
                   AS gone
            """)
        #expect(shared.value("gone") == "t")

        // The rollback brings back 008's, 014's and 016's shared tables and functions; applied
        // again (twice), 019 leaves a database whose new sessions stage as above.
        let file = SchemaFiles.directory + "/019_session_staging"
        try db.execute(try String(contentsOfFile: file + ".rollback.sql", encoding: .utf8))
        #expect(try db.execute("SELECT to_regclass('changerelay.dual_write_staged') IS NOT NULL AS back").value("back") == "t")
        #expect(try db.execute("SELECT changerelay.apply_staged_message_buffers() AS n").value("n") == "0")
        for _ in 0..<2 { try db.execute(try String(contentsOfFile: file + ".sql", encoding: .utf8)) }
        let fresh = try cluster.connect()
        for setup in setups { try fresh.execute(setup) }
        #expect(try staged(on: fresh) == ["0", "0", "0"])
        #expect(try db.execute("SELECT to_regclass('changerelay.dual_write_staged') IS NULL AS gone").value("gone") == "t")
    }

    /// A staged dual-write row lives for one batch: its request and projection, together past
    /// the 2 KB at which Postgres would compress them, are stored as they came (and never
    /// decompressed by the batch's statements); a row longer than a page is still compressed.
    @Test func stagedDualWriteRowsAreStoredUncompressedUpToAPage() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute(try #require(DualWriteHandler(mode: .apply, logger: Logger(label: "test")).staging?.sessionSetup))
        func stage(_ id: Int, days: Int) throws -> (compression: [String?], bytes: Int) {
            let json = "(SELECT jsonb_agg(jsonb_build_object('date', date '2026-01-05' + g, 'status', 'done')) "
                + "FROM generate_series(1, \(days)) g)"
            try db.execute("""
                INSERT INTO pg_temp.dual_write_staged (habit_tracker_id, source_lsn, operation, mode, idempotency_key,
                                                       request_data, projection)
                VALUES (\(id), '0/10', 'INSERT', 'apply', 'dual_write:0/10:\(id)', \(json), \(json))
                """)
            let row = try db.execute("""
                SELECT pg_column_compression(request_data) AS request, pg_column_compression(projection) AS projection,
                       pg_column_size(s.*) AS bytes
                FROM pg_temp.dual_write_staged s WHERE habit_tracker_id = \(id)
                """)
            return ([row.value("request"), row.value("projection")], Int(row.value("bytes") ?? "") ?? -1)
        }
        let week = try stage(1, days: 35)
        #expect(week.bytes > 2_500 && week.bytes < 8_000, "a staged row of \(week.bytes) bytes")
        #expect(week.compression == [nil, nil])
        let long = try stage(2, days: 200)
        #expect(long.compression.contains("pglz"), "a row longer than a page: \(long.compression), \(long.bytes) bytes")
    }

    /// The plan `EXPLAIN` gives for `statement` on `db`'s session, one line of text per node.
    private static func plan(of statement: String, on db: PostgresConnection) throws -> String {
        try db.execute("EXPLAIN " + statement).rows.compactMap(\.first).compactMap { $0 }.joined(separator: "\n")
    }

    /// The record statement is prepared once per connection, and Postgres may keep the plan
    /// it made for the tables as they were then. Made while `deliveries` was empty, that
    /// plan scanned the whole table on every record once it had grown; on a dispatcher's
    /// connection it stays an index lookup whatever the table held when it was made.
    @Test func aRecordPlannedOnAnEmptyTableStaysAnIndexLookupOnceTheTableGrows() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("VACUUM ANALYZE changerelay.deliveries")
        let queue = DeliveryQueue(logs: BuiltInHandlers.deliveryLogs, claimLimit: 10, lease: .seconds(45),
                                  logger: Logger(label: "test"))
        try queue.listen(on: db)
        let attempt = RecordedAttempt(deliveryID: 1, attempt: 1, status: .succeeded, httpStatus: 200, error: nil,
                                      retryIn: .zero, started: Date(), responseBody: "ok")
        // Past the five custom plans after which Postgres settles on a generic one.
        for _ in 0..<8 { try queue.record([attempt], on: db) }
        try db.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy)
            SELECT 'k' || g, 'test', '0/1', 'http://127.0.0.1:9/', '{}', '{}' FROM generate_series(1, 20000) g
            """)
        let plan = try Self.plan(
            of: "EXECUTE changerelay_record('{1}', '{succeeded}', '{200}', '{NULL}', '{0}', '{1}', '{0}', '{ok}')", on: db)
        #expect(!plan.contains("Seq Scan on deliveries"), "\(plan)")
        #expect(plan.contains("Index Scan using deliveries_pkey on deliveries"), "\(plan)")
    }

    /// A dispatcher's session plans its claim once (a generic plan), on whatever the table
    /// held then: made on an empty table, that plan must still claim a few rows of a large
    /// one by key, not join them by walking every row (1.4 s a claim at 80 000 rows).
    @Test func aClaimPlannedOnAnEmptyTableIsPlannedOnceAndStaysAKeyLookup() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("VACUUM ANALYZE changerelay.deliveries")
        let queue = DeliveryQueue(logs: BuiltInHandlers.deliveryLogs, claimLimit: 64, lease: .seconds(45),
                                  logger: Logger(label: "test"))
        try queue.listen(on: db)
        #expect(try queue.claim(on: db, claimer: "test|1|1|1", shares: [], unroutedFloor: nil).isEmpty)
        try db.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, endpoint)
            SELECT 'k' || g, 'test', '0/1', 'http://127.0.0.1:9/', '{}', '{}', 'e' || (g % 4)
            FROM generate_series(1, 20000) g;
            ANALYZE changerelay.deliveries
            """)
        let open = try queue.openDeliveries(on: db)
        let claimed = try queue.claim(on: db, claimer: "test|1|1|1", shares: open.endpoints.map { EndpointShare($0, rows: 2) },
                                      unroutedFloor: open.unroutedFloor)
        #expect(claimed.count == 8, "two rows of each of four endpoints: \(claimed.count)")
        let plans = try db.execute("""
            SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'changerelay_claim'
            """)
        #expect(plans.rows == [["2", "0"]])
        let plan = try Self.plan(
            of: "EXECUTE changerelay_claim('45 seconds', '{e1,e2}', '{2,2}', '{-infinity,-infinity}', NULL, 'test|1|1|1')", on: db)
        #expect(!plan.contains("Seq Scan on deliveries") && !plan.contains("Hash"), "\(plan)")
        #expect(plan.contains("Index Cond: (id = ANY"), "\(plan)")
    }

    /// The queueing of staged webhook deliveries (binaries from before 035) has no
    /// parameters, so its session plans it once and keeps that plan. Made while `deliveries` was empty (a new
    /// install, a retention sweep), it must still find the events queued already by the
    /// unique key's conflict check, which no plan turns into a scan, once the table has grown.
    @Test func theWebhookQueueingPlannedOnAnEmptyTableNeverScansTheQueuedEvents() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        try db.execute("VACUUM ANALYZE changerelay.deliveries")
        let staging = Self.webhookDeliveryStaging
        try db.execute(try #require(staging.sessionSetup))
        try db.execute(staging.statements)
        try db.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy)
            SELECT 'msg_' || g, 'webhooks', '0/1', 'http://127.0.0.1:9/', '{}', \(Self.oneTry) FROM generate_series(1, 20000) g;
            INSERT INTO pg_temp.webhook_deliveries_staged (idempotency_key, handler, source_lsn, target_url, method, headers,
                                                           body, retry_policy, report)
            VALUES ('msg_1', 'webhooks', '0/1', 'http://127.0.0.1:9/', 'POST', '{}', '{"type":"x"}', \(Self.oneTry),
                    '{"webhook_log":{"webhook_id":"msg_1","config_id":"1"}}')
            """)
        let plan = try Self.plan(of: staging.statements, on: db)
        #expect(!plan.split(separator: "\n").contains { $0.contains("Scan") && $0.contains("on deliveries") }, "\(plan)")
        #expect(plan.contains("Conflict Resolution: NOTHING"), "\(plan)")
    }

    /// A try rewrites the seed log row its delivery keeps current (webhook_logs,
    /// automation_execution_logs) in place: none of the columns it sets is indexed, and the
    /// tables `sql/002` creates keep room on each page for the new version, so the tries of
    /// a batch write no index entry. Packed full (the default fillfactor, which a table the
    /// applications created keeps), most rewrites are not in place. Half the webhook
    /// deliveries name their row's id in their report (sql/025); the others, as a delivery
    /// queued before 025, are found through `webhook_log_ids`: every row is rewritten, and
    /// reopened by a re-queue.
    @Test func aTryRewritesItsSeedLogRowInPlace() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        let queue = DeliveryQueue(logs: BuiltInHandlers.deliveryLogs, claimLimit: 400, lease: .seconds(45),
                                  logger: Logger(label: "test"))
        #expect(try db.execute("""
            SELECT relname, array_to_string(reloptions, ',') FROM pg_class
            WHERE oid IN ('public.webhook_logs'::regclass, 'public.automation_execution_logs'::regclass,
                          'public.buffer_processing_jobs'::regclass)
            ORDER BY relname
            """).rows == ["automation_execution_logs", "buffer_processing_jobs", "webhook_logs"].map { [$0, "fillfactor=50"] })
        for packed in [false, true] {
            if packed {
                for table in ["webhook_logs", "automation_execution_logs"] {
                    try db.execute("ALTER TABLE public.\(table) RESET (fillfactor)")
                }
            }
            try db.execute("""
                TRUNCATE public.webhook_logs, public.webhook_configs, public.automation_execution_logs,
                         changerelay.webhook_log_ids, changerelay.deliveries CASCADE;
                INSERT INTO public.webhook_configs (name, url, events) VALUES ('c', 'http://127.0.0.1:9/', '{x}');
                WITH logged AS (
                    INSERT INTO public.webhook_logs (webhook_config_id, event_type, payload, attempt_count)
                    SELECT (SELECT id FROM public.webhook_configs), 'x.created',
                           jsonb_build_object('n', g, 'text', repeat('payload ', 40)), 0
                    FROM generate_series(1, 150) g RETURNING id)
                INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id) SELECT 'msg_' || id, id::text FROM logged;
                INSERT INTO public.automation_execution_logs (id, status, trigger_data)
                SELECT md5('e' || g)::uuid, 'processing', jsonb_build_object('text', repeat('trigger ', 40))
                FROM generate_series(1, 150) g;
                INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, report)
                SELECT 'w' || webhook_id, 'webhooks', '0/1'::pg_lsn, 'http://127.0.0.1:9/', '{}', \(Self.oneTry),
                       jsonb_build_object('webhook_log', jsonb_build_object('webhook_id', webhook_id, 'config_id', '1')
                           || CASE WHEN log_id::bigint % 2 = 0 THEN jsonb_build_object('id', log_id) ELSE '{}' END)
                FROM changerelay.webhook_log_ids
                UNION ALL
                SELECT 'a' || id, 'automations', '0/1'::pg_lsn, 'http://127.0.0.1:9/', '{}', \(Self.oneTry),
                       jsonb_build_object('automation_execution', id)
                FROM public.automation_execution_logs
                """)
            let claimed = try queue.claim(on: db, claimer: "test|1|1|1", shares: [], unroutedFloor: nil)
            #expect(claimed.count == 300)
            // A backend's counts of this transaction's rewrites carry those it has not yet
            // reported, so the rewrites are the difference across the record.
            let rewrites = """
                SELECT t, pg_stat_get_xact_tuples_updated(('public.' || t)::regclass) AS updated,
                       pg_stat_get_xact_tuples_hot_updated(('public.' || t)::regclass) AS hot
                FROM unnest(ARRAY['webhook_logs', 'automation_execution_logs']) t ORDER BY t
                """
            try db.execute("BEGIN")
            let before = try db.execute(rewrites).rows
            try queue.record(claimed.map {
                RecordedAttempt(deliveryID: $0.id, attempt: $0.attempt, status: .succeeded, httpStatus: 200, error: nil,
                                retryIn: .zero, started: Date(), responseBody: "ok")
            }, on: db)
            let after = try db.execute(rewrites).rows
            try db.execute("COMMIT")
            for (start, end) in zip(before, after) {
                let count = { (column: Int) in (Int(end[column] ?? "") ?? 0) - (Int(start[column] ?? "") ?? 0) }
                let table = "\(end[0] ?? "")\(packed ? ", packed" : "")"
                #expect(count(1) == 150, "\(table)")
                #expect(packed ? count(2) < 50 : count(2) == 150, "\(table): \(count(2)) in place")
            }
            #expect(try db.execute("""
                SELECT count(*) AS n FROM public.webhook_logs WHERE response_status = 200 AND completed_at IS NOT NULL
                """).value("n") == "150")
        }
        // `deliveries retry` reopens the rows of both kinds of delivery alike.
        try db.execute("UPDATE changerelay.deliveries SET status = 'dead' WHERE handler = 'webhooks'")
        #expect(try DeliveryRequeue.requeue(.allDead, logs: BuiltInHandlers.deliveryLogs, on: db) == 150)
        #expect(try db.execute("SELECT count(*) AS n FROM public.webhook_logs WHERE completed_at IS NULL").value("n") == "150")
    }

    /// A purge that waits for an operator's re-queue of a row it collected must not delete
    /// the row once the re-queue commits: it is pending again, work to be sent.
    @Test func aPurgeWaitingForARequeueLeavesTheRequeuedRow() throws {
        let cluster = try Self.startCluster()
        defer { try? cluster.stop() }
        let operatorSession = try cluster.connect()
        try operatorSession.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, status,
                                                completed_at, updated_at)
            VALUES ('dead-one', 'echo', '0/0', 'http://127.0.0.1:9/', '{}', '{}', 'dead', now() - interval '1 day', now())
            """)
        try operatorSession.execute("""
            BEGIN;
            UPDATE changerelay.deliveries SET status = 'pending', completed_at = NULL WHERE idempotency_key = 'dead-one'
            """)
        let purge = PurgeOutcome()
        let url = cluster.url
        Thread {
            purge.finish(Result { () throws(PostgresError) -> Int64 in
                let db = try PostgresConnection(url: url, parameters: [("application_name", "purger")])
                return try DeliveryRetention.purgeDead(olderThanSeconds: 0, on: db)
            })
        }.start()
        let watcher = try cluster.connect()
        let deadline = ContinuousClock.now + .seconds(30)
        while try watcher.execute("SELECT wait_event_type AS w FROM pg_stat_activity WHERE application_name = 'purger'")
            .value("w") != "Lock" {
            try #require(ContinuousClock.now < deadline, "the purge never waited for the re-queue's lock")
            Thread.sleep(forTimeInterval: 0.01)
        }
        try operatorSession.execute("COMMIT")
        #expect(purge.done.wait(timeout: .now() + 30) == .success)
        #expect(try purge.result?.get() == 0)
        #expect(try watcher.execute("SELECT status FROM changerelay.deliveries WHERE idempotency_key = 'dead-one'")
            .value("status") == "pending")
    }
}

private final class PurgeOutcome: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    private(set) var result: Result<Int64, PostgresError>?

    func finish(_ result: Result<Int64, PostgresError>) {
        self.result = result
        done.signal()
    }
}
