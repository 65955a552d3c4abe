import RelayConfiguration
import Core
import Decoding
import Handlers
import Logging
import PlannedEffects
import Testing
@testable import Pipeline

/// How a replay decides what of one handler's effects for one change is planned already.
@Suite struct ReplayPlannerTests {
    static let lsn = LSN(0x1234)

    static func delivery(_ handler: String, index: Int, target: String = "t", key: String? = nil) -> PlannedEffect {
        .delivery(PositionedDelivery(
            handler: handler, position: ChangePosition(commitLSN: lsn, index: index),
            delivery: PlannedDelivery(target: target, url: "http://x/", body: "{}", orderingKey: nil,
                                      retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 3), idempotencyKey: key)))
    }

    static func key(_ effect: PlannedEffect) -> String {
        guard case .delivery(let delivery) = effect else { return "" }
        return delivery.idempotencyKey
    }

    static let queued = PlannedEffect.row(PlannedRow(table: ConversationCheckHandler.logTable, [
        "trigger_name": "check_conversations_trigger", "record_id": "7", "status": "queued",
    ]))

    static func staged(_ key: String) -> PlannedEffect {
        .row(PlannedRow(table: DualWriteHandler.stagingTable, ["habit_tracker_id": "1", "idempotency_key": key]))
    }

    func verdict(_ effects: [PlannedEffect], handler: String = "h",
                 known: [KeyLookup: Set<String>] = [:]) throws(ReplayError) -> ReplayPlanner.Verdict {
        try ReplayPlanner.verdict(on: effects, handler: handler, lsn: Self.lsn, known: known)
    }

    @Test func aDeliveryWithAKnownKeyIsLeftOutAndCountedAsPlanned() throws {
        let effects = [Self.delivery("echo", index: 0), Self.delivery("echo", index: 1)]
        let known: [KeyLookup: Set<String>] = [.deliveries: [Self.key(effects[0])]]
        let decided = try verdict(effects, known: known)
        #expect(decided == ReplayPlanner.Verdict(write: [effects[1]], new: 1, alreadyPlanned: 1))
        #expect(Self.key(effects[0]) == "echo:0/1234:0:t", "the live service's key format")
    }

    /// A conversation check's queued log row has no key: it goes with its delivery.
    @Test func aRowWithoutAKeyFollowsItsChangesDeliveries() throws {
        let check = Self.delivery("conversation_checks", index: 3)
        let planned = try verdict([Self.queued, check], known: [.deliveries: [Self.key(check)]])
        #expect(planned == ReplayPlanner.Verdict(write: [], new: 0, alreadyPlanned: 1))
        let new = try verdict([Self.queued, check])
        #expect(new == ReplayPlanner.Verdict(write: [Self.queued, check], new: 1, alreadyPlanned: 0))
    }

    /// A change with several deliveries, one new and one planned: its follower rides along
    /// with the new one. (A webhook's log row is no planned row: it rides in its delivery's
    /// report, and is numbered and written with it, sql/035.)
    @Test func followersAreWrittenWhenAnyDeliveryOfTheirChangeIsNew() throws {
        let old = Self.delivery("webhooks", index: 0, key: "msg_old")
        let new = Self.delivery("webhooks", index: 0, key: "msg_new")
        let decided = try verdict([Self.queued, old, new], known: [.deliveries: ["msg_old"]])
        #expect(decided == ReplayPlanner.Verdict(write: [Self.queued, new], new: 1, alreadyPlanned: 1))
    }

    /// A staged dual-write change is known by its own key in idempotency_log.
    @Test func aKeyedRowIsDecidedByItsOwnKey() throws {
        let effects = [Self.staged("dual_write:0/1234:0:old"), Self.staged("dual_write:0/1234:0")]
        #expect(try ReplayPlanner.keys(of: effects, handler: "dual_write").map(\.1)
            == ["dual_write:0/1234:0:old", "dual_write:0/1234:0"])
        let decided = try verdict(effects, handler: "dual_write", known: [.idempotencyLog: ["dual_write:0/1234:0:old"]])
        #expect(decided == ReplayPlanner.Verdict(write: [effects[1]], new: 1, alreadyPlanned: 1))
    }

    @Test func rowsReplayCannotKeepOnceAreRefusedByTable() {
        let workflowLog = PlannedEffect.row(PlannedRow(table: AutomationHandler.workflowLog, ["operation": "upsert"]))
        #expect(throws: ReplayError.unreplayableRows(handler: "automations", table: AutomationHandler.workflowLog)) {
            try ReplayPlanner.keys(of: [workflowLog], handler: "automations")
        }
        #expect(throws: ReplayError.rowWithoutDelivery(handler: "conversation_checks", table: ConversationCheckHandler.logTable,
                                                         lsn: Self.lsn)) {
            try verdict([Self.queued], handler: "conversation_checks")
        }
    }

    /// Counts become final with the batch: a batch thrown away is forgotten, since it is planned again.
    @Test func theTallyCountsCommittedBatchesOnly() {
        let tally = ReplayTally()
        tally.record(new: 3, alreadyPlanned: 2)
        tally.settle(committed: false)
        #expect(tally.counts == ReplayTally.Counts())
        tally.record(new: 3, alreadyPlanned: 2)
        tally.record(new: 1, alreadyPlanned: 0)
        tally.settle(committed: true)
        #expect(tally.counts == ReplayTally.Counts(new: 4, alreadyPlanned: 2))
    }

    /// The webhook fan-out plans with today's configs: past config changes do not reach it.
    @Test func aReplayedHandlerDoesNotFollowTheTablesItIgnores() {
        let webhooks = WebhookHandler(rules: WebhookRule.builtIn, cache: WebhookConfigCache(), logger: Logger(label: "test"))
        let replayed = ReplayedHandler(webhooks, ignoring: [WebhookHandler.configsTable])
        #expect(webhooks.tables.contains(WebhookHandler.configsTable))
        #expect(!replayed.tables.contains(WebhookHandler.configsTable))
        #expect(replayed.tables == webhooks.tables.subtracting([WebhookHandler.configsTable]))
        #expect(replayed.name == "webhooks" && replayed.staging == webhooks.staging)
    }

    @Test func aPeekedByteaIsReadFromItsHexText() throws {
        #expect(try SlotPeek.bytes(ofHex: "\\x00ff7Fa0") == [0x00, 0xFF, 0x7F, 0xA0])
        #expect(try SlotPeek.bytes(ofHex: "\\x") == [])
        #expect(throws: SlotPeek.MalformedBytea.self) { try SlotPeek.bytes(ofHex: "\\x0") }
        #expect(throws: SlotPeek.MalformedBytea.self) { try SlotPeek.bytes(ofHex: "00ff") }
        #expect(throws: SlotPeek.MalformedBytea.self) { try SlotPeek.bytes(ofHex: "\\xzz") }
    }
}
