import RelayConfiguration
import Core
import Testing
@testable import Pipeline

@Suite struct ReplayEndTests {
    let live = ReplayEnd.LivePosition(slot: "changerelay", lsn: LSN(0x5000))

    @Test func withoutToLSNTheEndIsTheWALEndUnlessTheLiveServiceIsBehindIt() {
        #expect(ReplayEnd.decide(requested: nil, walEnd: LSN(0x4000), live: live)
            == ReplayEnd(lsn: LSN(0x4000), limit: .walEnd, requested: nil))
        #expect(ReplayEnd.decide(requested: nil, walEnd: LSN(0x6000), live: live)
            == ReplayEnd(lsn: LSN(0x5000), limit: .liveService(slot: "changerelay"), requested: nil))
        // No live slot: nothing can plan below the WAL end of now.
        #expect(ReplayEnd.decide(requested: nil, walEnd: LSN(0x6000), live: nil)
            == ReplayEnd(lsn: LSN(0x6000), limit: .walEnd, requested: nil))
        // Level with the live service is not a cap: nothing lies between.
        #expect(ReplayEnd.decide(requested: nil, walEnd: LSN(0x5000), live: live).limit == .walEnd)
    }

    @Test func toLSNIsKeptBelowBothLimitsAndCappedAboveEither() {
        #expect(ReplayEnd.decide(requested: LSN(0x3000), walEnd: LSN(0x6000), live: live)
            == ReplayEnd(lsn: LSN(0x3000), limit: .requested, requested: LSN(0x3000)))
        #expect(ReplayEnd.decide(requested: LSN(0x5800), walEnd: LSN(0x6000), live: live)
            == ReplayEnd(lsn: LSN(0x5000), limit: .liveService(slot: "changerelay"), requested: LSN(0x5800)))
        #expect(ReplayEnd.decide(requested: LSN(0x9000), walEnd: LSN(0x4000), live: live)
            == ReplayEnd(lsn: LSN(0x4000), limit: .walEnd, requested: LSN(0x9000)))
    }

    @Test func theExplanationSaysWhyTheEndIsThere() {
        #expect(ReplayEnd.decide(requested: LSN(0x3000), walEnd: LSN(0x6000), live: live).explanation
            == "to 0/3000, inclusive (--to-lsn)")
        #expect(ReplayEnd.decide(requested: nil, walEnd: LSN(0x4000), live: nil).explanation
            == "to 0/4000, inclusive: the server's WAL end when the replay started")
        #expect(ReplayEnd.decide(requested: LSN(0x9000), walEnd: LSN(0x4000), live: nil).explanation
            == "to 0/4000, inclusive: the server's WAL end when the replay started (--to-lsn 0/9000 lies past it)")
        let capped = ReplayEnd.decide(requested: nil, walEnd: LSN(0x6000), live: live).explanation
        #expect(capped.hasPrefix("to 0/5000, inclusive: capped at the live service's position (slot changerelay); "))
        #expect(capped.contains("the live service plans itself"))
    }
}

@Suite struct ReplaySlotTests {
    func refusal(_ slot: ReplaySlot?, name: String = "retained") -> ReplayError? {
        ReplaySlot.refusal(name, slot: slot, serviceSlot: "changerelay", plugin: .pgoutput, database: "app")
    }

    let readable = ReplaySlot(name: "retained", plugin: "pgoutput", database: "app", confirmedFlush: LSN(0x100))

    @Test func anInactiveLogicalSlotOfThePluginAndDatabaseMayBeRead() {
        #expect(refusal(readable) == nil)
        var extended = readable
        extended.walStatus = "unreserved"
        #expect(refusal(extended) == nil, "still readable, though not for long")
    }

    @Test func eachRefusalNamesTheSlot() {
        #expect(refusal(readable, name: "changerelay") == .ownSlot("changerelay"))
        #expect(refusal(nil) == .noSuchSlot("retained", plugin: "pgoutput"))
        // The advice is SQL an operator pastes: the name is a quoted literal there, whatever it holds.
        #expect(ReplayError.noSuchSlot("x'; drop table jobs; --", plugin: "wal2json").description
            == "slot 'x'; drop table jobs; --' does not exist (pg_replication_slots); a retained slot is created with "
            + "SELECT pg_create_logical_replication_slot('x''; drop table jobs; --', 'wal2json') and keeps WAL from then on")
        var slot = readable
        slot.isLogical = false
        slot.plugin = nil
        #expect(refusal(slot) == .physicalSlot("retained"))
        slot = readable
        slot.database = "other"
        #expect(refusal(slot) == .otherDatabase(slot: "retained", database: "other", connected: "app"))
        slot = readable
        slot.plugin = "wal2json"
        #expect(refusal(slot) == .otherPlugin(slot: "retained", plugin: "wal2json", configured: "pgoutput"))
        slot = readable
        slot.walStatus = "lost"
        #expect(refusal(slot) == .lost(slot: "retained"))
        slot = readable
        slot.isActive = true
        slot.activePID = "4242"
        #expect(refusal(slot) == .active(slot: "retained", pid: "4242"))
        #expect(ReplayError.active(slot: "retained", pid: "4242").description.contains("slot retained is active (held by process 4242)"))
        #expect(ReplayError.lost(slot: "retained").description.contains("slot retained has lost WAL it needed (wal_status = lost)"))
    }

    /// A name no slot can have is said to be one, not advised to be created.
    @Test(arguments: ["BAD-NAME", "", "Upper", "with space", "x'; drop table jobs; --", String(repeating: "a", count: 64)])
    func aNameNoSlotCanHaveIsRefusedAsSuch(name: String) {
        #expect(refusal(nil, name: name) == .invalidSlotName(name))
        #expect(!ReplayError.invalidSlotName(name).description.contains("pg_create_logical_replication_slot"))
    }

    @Test func theLongestValidNameIsAdvisedToBeCreated() {
        let name = "a_1" + String(repeating: "z", count: 60)
        #expect(refusal(nil, name: name) == .noSuchSlot(name, plugin: "pgoutput"))
    }

    /// Its own slot is refused whatever the server holds under the name.
    @Test func theServicesOwnSlotIsRefusedFirst() {
        #expect(refusal(nil, name: "changerelay") == .ownSlot("changerelay"))
    }
}
