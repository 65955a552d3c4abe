import Core
import PlannedEffects
import Testing
@testable import Pipeline

@Suite struct AcknowledgementTests {
    @Test func confirmsWhatTheSinkMadeDurableAndRemembersTheHighest() {
        var ack = Acknowledgement(confirmed: LSN(0x100))
        let result1 = ack.durable(through: nil)
        #expect(result1 == nil, "nothing durable yet: nothing to confirm")
        let result2 = ack.durable(through: LSN(0x200))
        #expect(result2 == LSN(0x200))
        // A lower durable position is passed on (a new stream learns it) but never lowers what was confirmed.
        let result3 = ack.durable(through: LSN(0x150))
        #expect(result3 == LSN(0x150))
        #expect(ack.confirmed == LSN(0x200))
    }

    @Test func aKeepaliveIsConfirmedOnlyWithNoOpenTransactionAndNoPendingBatch() {
        var ack = Acknowledgement(confirmed: LSN(0x100))
        let result4 = ack.keepalive(walEnd: LSN(0x900), transactionOpen: true, batchPending: false)
        #expect(result4 == nil,
                "the walsender read past a commit the decoder has not seen")
        let result5 = ack.keepalive(walEnd: LSN(0x900), transactionOpen: false, batchPending: true)
        #expect(result5 == nil,
                "the batch is not durable yet")
        #expect(ack.confirmed == LSN(0x100))
        let result6 = ack.keepalive(walEnd: LSN(0x900), transactionOpen: false, batchPending: false)
        #expect(result6 == LSN(0x900),
                "an idle publication still advances the slot")
        #expect(ack.confirmed == LSN(0x900))
    }

    @Test func aPendingBatchIsCommittedAsSoonAsTheStreamIsQuiet() {
        #expect(Acknowledgement.readTimeout(batchPending: true) < Acknowledgement.readTimeout(batchPending: false))
        #expect(Acknowledgement.readTimeout(batchPending: true) <= .milliseconds(1))
    }
}
