import Core
import PlannedEffects
import Testing
@testable import Pipeline

@Suite struct BatchPolicyTests {
    let start = ContinuousClock.now

    func policy(durable: UInt64 = 0x100, maxChanges: Int = 10, maxAge: Duration = .milliseconds(20)) -> BatchPolicy {
        BatchPolicy(durable: LSN(durable), maxChanges: maxChanges, maxAge: maxAge)
    }

    @Test func transactionsAtOrBelowTheCheckpointAreSkipped() {
        var batch = policy()
        let result1 = batch.admit(endingAt: LSN(0x100))
        #expect(result1 == .skip)
        let result2 = batch.admit(endingAt: LSN(0x80))
        #expect(result2 == .skip)
        let result3 = batch.admit(endingAt: LSN(0x101))
        #expect(result3 == .plan)
    }

    @Test func aBatchCommitsOnSizeAndALargeTransactionIsNeverSplit() {
        var batch = policy(maxChanges: 10)
        let result4 = batch.admit(endingAt: LSN(0x200))
        #expect(result4 == .plan)
        let result5 = batch.planned(endingAt: LSN(0x200), changes: 4, at: start)
        #expect(!result5)
        let result6 = batch.admit(endingAt: LSN(0x300))
        #expect(result6 == .plan)
        // 5 000 changes in one transaction: the batch is full only once the whole of it is planned.
        let result7 = batch.planned(endingAt: LSN(0x300), changes: 5_000, at: start)
        #expect(result7)
        #expect(batch.end == LSN(0x300) && batch.transactions == 2 && batch.changes == 5_004)
        batch.committed()
        #expect(batch.durable == LSN(0x300) && !batch.hasPending)
    }

    @Test func aBatchCommitsOnAgeAndNotBefore() {
        var batch = policy(maxAge: .milliseconds(20))
        #expect(!batch.isDue(at: start.advanced(by: .seconds(60))), "no batch open")
        _ = batch.admit(endingAt: LSN(0x200))
        _ = batch.planned(endingAt: LSN(0x200), changes: 1, at: start)
        #expect(!batch.isDue(at: start.advanced(by: .milliseconds(19))))
        #expect(batch.isDue(at: start.advanced(by: .milliseconds(20))))
        // The age runs from the batch's first transaction, not its last.
        _ = batch.admit(endingAt: LSN(0x300))
        _ = batch.planned(endingAt: LSN(0x300), changes: 1, at: start.advanced(by: .milliseconds(15)))
        #expect(batch.isDue(at: start.advanced(by: .milliseconds(20))))
    }

    @Test func aBatchInDoubtIsCommittedWhenTheStoredCheckpointReachesItsEnd() {
        var batch = policy()
        _ = batch.admit(endingAt: LSN(0x200))
        _ = batch.planned(endingAt: LSN(0x200), changes: 1, at: start)
        batch.discard()
        #expect(batch.unsettled == .inDoubt(LSN(0x200)))
        #expect(!batch.hasPending)
        let result8 = batch.settle(storedCheckpoint: LSN(0x200))
        #expect(result8, "its COMMIT went through after all")
        #expect(batch.durable == LSN(0x200))
        let result9 = batch.admit(endingAt: LSN(0x200))
        #expect(result9 == .skip, "so it is not planned twice")
    }

    @Test func aBatchInDoubtBelowTheStoredCheckpointIsReadAgain() {
        var batch = policy()
        _ = batch.admit(endingAt: LSN(0x200))
        _ = batch.planned(endingAt: LSN(0x200), changes: 1, at: start)
        batch.discard()
        let result10 = batch.settle(storedCheckpoint: LSN(0x100))
        #expect(!result10, "the handlers forget what it taught them")
        #expect(batch.durable == LSN(0x100) && batch.unsettled == nil)
        let result11 = batch.admit(endingAt: LSN(0x200))
        #expect(result11 == .plan)
    }

    @Test func aBatchDiscardedBeforeAnyTransactionEndedWasNotCommitted() {
        var batch = policy()
        _ = batch.admit(endingAt: LSN(0x200))
        // Planning failed midway (a spill file, a handler): no transaction of the batch completed.
        batch.discard()
        #expect(batch.unsettled == .discarded)
        let result12 = batch.settle(storedCheckpoint: nil)
        #expect(!result12)
    }

    @Test func discardingWithNothingPlannedLeavesNothingToSettle() {
        var batch = policy()
        batch.discard()
        #expect(batch.unsettled == nil)
        _ = batch.admit(endingAt: LSN(0x200))
        _ = batch.planned(endingAt: LSN(0x200), changes: 1, at: start)
        batch.committed()
        batch.discard()
        #expect(batch.unsettled == nil, "everything planned was committed")
    }

    @Test func aSecondDiscardKeepsTheFirstBatchInDoubt() {
        var batch = policy()
        _ = batch.admit(endingAt: LSN(0x200))
        _ = batch.planned(endingAt: LSN(0x200), changes: 1, at: start)
        batch.discard()
        batch.discard()
        #expect(batch.unsettled == .inDoubt(LSN(0x200)))
    }
}
