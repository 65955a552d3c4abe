import Core
import PlannedEffects
@testable import Delivery
import Foundation
import Replication
import StateStore
import Testing
import TestSupport

/// The dispatcher's rules walked one event at a time, in the order `Dispatcher.run` reports
/// them, including orders that a real database and receiver rarely produce on cue.
@Suite struct DispatchStateMachineTests {
    private static let start = ContinuousClock.now
    private static let threeTries = RetryPolicy.fixed(delay: .seconds(10), maxAttempts: 3)
    private static let lost = PostgresError(.connectionLost, "server closed the connection unexpectedly",
                                            endpoint: "localhost:5432/state")

    private static func machine(concurrency: Int) -> DispatchStateMachine {
        DispatchStateMachine(concurrency: concurrency, pausedByGone: ["webhook:"], pollInterval: .seconds(1),
                             drain: .seconds(10), start: start)
    }

    /// Connected and about to claim, where every cycle after the first starts.
    private static func claiming(concurrency: Int) -> DispatchStateMachine {
        var machine = machine(concurrency: concurrency)
        #expect(machine.woken(at: start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        return machine
    }

    /// Deliveries 1 and 2 in flight, nothing queued, and a stop requested at `start`.
    private static func stoppingWithTwoInFlight() -> DispatchStateMachine {
        var machine = claiming(concurrency: 2)
        #expect(machine.claimed([delivery(1), delivery(2)]).step == .send([1, 2]))
        machine.stopRequested(at: start)
        return machine
    }

    private static func later(_ duration: Duration) -> ContinuousClock.Instant {
        start.advanced(by: duration)
    }

    private static func delivery(_ id: Int64, attempt: Int = 1, requeuedAtAttempt: Int = 0,
                                 endpoint: String? = nil) -> ClaimedDelivery {
        ClaimedDelivery(id: id, idempotencyKey: "key-\(id)", url: "http://receiver.test/hook", method: "POST",
                        headers: [], auth: nil, body: "{}", attemptField: nil, policy: threeTries,
                        attempt: attempt, requeuedAtAttempt: requeuedAtAttempt, orderingKey: nil,
                        endpoint: endpoint, previousStatus: .pending)
    }

    private static func answered(_ delivery: ClaimedDelivery, status: Int = 200, headers: [(String, String)] = [],
                                 body: String = "", at ended: Date = Date(timeIntervalSince1970: 1_700_000_000))
        -> Dispatcher.Finished {
        Dispatcher.Finished(delivery: delivery, started: ended.addingTimeInterval(-0.25), ended: ended,
                            result: .response(HTTPResponse(status: status, headers: headers, body: Array(body.utf8))))
    }

    /// Sent once and answered, so the machine's record action shows what the try does to its row.
    private static func record(of finished: Dispatcher.Finished) throws -> AttemptRecord {
        var machine = claiming(concurrency: 1)
        #expect(machine.claimed([finished.delivery]).step == .send([finished.delivery.id]))
        let records = try #require(machine.woken([finished], at: start).records)
        #expect(records.count == 1)
        return try #require(records.first)
    }

    @Test func claimedRowsAreSentUpToTheConcurrencyAndTheRestRefillFinishedSlots() {
        var machine = Self.machine(concurrency: 2)
        let rows = (1...5).map { Self.delivery($0) }
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        #expect(machine.claimed(Array(rows[0...2])).step == .send([1, 2]))
        // Two in flight and one queued is more than the concurrency: no claim, only a wait.
        #expect(machine.woken(at: Self.start).step == .wait(.seconds(1)))
        // The freed slot is refilled from the queue before the round trip that records.
        #expect(machine.woken([Self.answered(rows[0])], at: Self.start).step == .send([3]))
        #expect(machine.woken(at: Self.start).step == .record([1]))
        // Two in flight and nothing queued: claim ahead, and keep what cannot go yet.
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimed(Array(rows[3...4])).step == .wait(.seconds(1)))
        #expect(machine.woken([Self.answered(rows[1]), Self.answered(rows[2])], at: Self.start).step == .send([4, 5]))
        #expect(machine.woken(at: Self.start).step == .record([2, 3]))
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimed([]).step == .wait(.seconds(1)))
    }

    /// An endpoint's rows beyond its limit wait queued, in order, while the rows of other
    /// endpoints and rows without one behind them take the free slots; a finished request of
    /// the endpoint lets its next row go at once, without a round trip.
    @Test func anEndpointAtItsLimitWaitsWhileOthersTakeTheFreeSlots() {
        var machine = DispatchStateMachine(concurrency: 4, maxInFlightPerEndpoint: 1, pollInterval: .seconds(1),
                                           drain: .seconds(10), start: Self.start)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        let hanging = (1...2).map { Self.delivery($0, endpoint: "webhook:1") }
        let other = Self.delivery(5, endpoint: "webhook:2")
        #expect(machine.claimed(hanging + [other, Self.delivery(6)]).step == .send([1, 5, 6]))
        // A slot is free and only a row of the saturated endpoint is queued: claim ahead.
        #expect(machine.woken(at: Self.start).step == .claim)
        #expect(machine.claimed([Self.delivery(7, endpoint: "webhook:2")]).step == .lookAhead)
        #expect(machine.lookedAhead(nil).step == .wait(.seconds(1)))
        // webhook:2 finished: its next row goes; webhook:1's stays queued.
        #expect(machine.woken([Self.answered(other)], at: Self.start).step == .send([7]))
        #expect(machine.woken(at: Self.start).step == .record([5]))
        // webhook:1 finished: its next row goes at once.
        #expect(machine.woken([Self.answered(hanging[0])], at: Self.start).step == .send([2]))
    }

    /// A webhook config whose endpoint answers 410 is set inactive by the record of that try,
    /// and its deliveries wait, paused: the rows of it still queued here are not sent to an
    /// endpoint that has said it is gone (each would end dead) but put back after the record.
    /// Another endpoint's queued rows, and those of an endpoint a 410 does not pause, go on.
    @Test func aGoneEndpointsQueuedRowsArePutBackUnsentAfterTheRecordThatPausesIt() throws {
        var machine = DispatchStateMachine(concurrency: 4, maxInFlightPerEndpoint: 1, pausedByGone: ["webhook:"],
                                           pollInterval: .seconds(1), drain: .seconds(10), start: Self.start)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        let gone = (1...3).map { Self.delivery($0, endpoint: "webhook:1") }
        let other = (4...5).map { Self.delivery($0, endpoint: "webhook:2") }
        let plain = (6...7).map { Self.delivery($0, endpoint: "https://example.test") }
        #expect(machine.claimed(gone + other + plain).step == .send([1, 4, 6]))
        // webhook:1 answers 410: its next row does not go; the other endpoints' do.
        #expect(machine.woken([Self.answered(gone[0], status: 410), Self.answered(other[0]),
                               Self.answered(plain[0], status: 410)], at: Self.start).step == .send([5, 7]))
        let recorded = try #require(machine.woken(at: Self.start).records)
        #expect(recorded.map(\.delivery.id) == [1, 4, 6])
        // Only a webhook endpoint's 410 ends its delivery; elsewhere it is a failure to retry.
        #expect(recorded.map(\.status) == [.dead, .succeeded, .failed])
        #expect(recorded[0].decision == .dead(.gaveUp(.endpointGone)))
        #expect(machine.recorded().step == .release([2, 3]))
        #expect(machine.released().step == .claim)
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(nil).step == .wait(.seconds(1)))
        // Nothing of webhook:1 is left to send, and a stop has nothing more to put back.
        #expect(machine.woken([Self.answered(other[1]), Self.answered(plain[1])], at: Self.start).step == .record([5, 7]))
        machine.stopRequested(at: Self.start)
        #expect(machine.recorded().step == .exit(.drained))
    }

    /// An operator turns a webhook config off while rows of it wait in the queue: the next
    /// claim finds it paused, and those rows are put back unsent; the rows in flight finish,
    /// and another endpoint's queued rows go on.
    @Test func queuedRowsOfAnEndpointAClaimFindsPausedArePutBackUnsent() {
        var machine = DispatchStateMachine(concurrency: 4, maxInFlightPerEndpoint: 1, pausedByGone: ["webhook:"],
                                           pollInterval: .seconds(1), drain: .seconds(10), start: Self.start)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        let off = (1...3).map { Self.delivery($0, endpoint: "webhook:1") }
        let other = (4...5).map { Self.delivery($0, endpoint: "webhook:2") }
        #expect(machine.claimed(off + other).step == .send([1, 4]))
        #expect(machine.queued.map(\.id) == [2, 3, 5])
        // Nothing more was due; the claim's look at the configs finds webhook:1 turned off.
        #expect(machine.claimed([], pausing: ["webhook:1"]).step == .release([2, 3]))
        #expect(machine.released().step == .claim)
        #expect(machine.queued.map(\.id) == [5])
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(nil).step == .wait(.seconds(1)))
        #expect(machine.woken([Self.answered(off[0]), Self.answered(other[0])], at: Self.start).step == .send([5]))
    }

    /// The claim landed but the read after it failed with the connection: its rows are put
    /// back unsent once the connection is back, before anything is claimed, instead of waiting
    /// out their leases with a try used.
    @Test func rowsClaimedJustBeforeTheConnectionFailedArePutBackFirst() {
        var machine = Self.claiming(concurrency: 4)
        let rows = [Self.delivery(1, endpoint: "webhook:1"), Self.delivery(2)]
        machine.claimedUnsendable(rows)
        #expect(machine.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .release([1, 2]))
        #expect(machine.released().step == .claim)
    }

    /// A claim may take twice an endpoint's in-flight limit less what this dispatcher holds
    /// of it: queued, in flight, or finished and not yet recorded. An endpoint with nothing
    /// left to take is not named at all, and a limit above the concurrency is the concurrency.
    @Test func aClaimsShareOfAnEndpointIsTwiceItsLimitLessWhatIsHeld() {
        var machine = DispatchStateMachine(concurrency: 4, maxInFlightPerEndpoint: 2, pollInterval: .seconds(1),
                                           drain: .seconds(10), start: Self.start)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        let endpoints = (1...3).map { OpenEndpoint(endpoint: "webhook:\($0)", floor: "2026-12-03 07:00:0\($0)+00") }
        #expect(machine.claimShares(for: endpoints) == endpoints.map { EndpointShare($0, rows: 4) })
        let first = (1...4).map { Self.delivery($0, endpoint: "webhook:1") }
        // Two in flight and two queued: webhook:1 has no share left.
        #expect(machine.claimed(first + [Self.delivery(5, endpoint: "webhook:2")]).step == .send([1, 2, 5]))
        #expect(machine.claimShares(for: endpoints) == [EndpointShare(endpoints[1], rows: 3), EndpointShare(endpoints[2], rows: 4)])
        // Finished but not recorded still holds its row; recorded, it frees it.
        #expect(machine.woken([Self.answered(first[0])], at: Self.start).step == .send([3]))
        #expect(machine.claimShares(for: [endpoints[0]]).isEmpty)
        #expect(machine.woken(at: Self.start).step == .record([1]))
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimShares(for: [endpoints[0]]) == [EndpointShare(endpoints[0], rows: 1)])

        let unlimited = DispatchStateMachine(concurrency: 3, pollInterval: .seconds(1), drain: .seconds(10), start: Self.start)
        #expect(unlimited.claimShares(for: [endpoints[0]]) == [EndpointShare(endpoints[0], rows: 3)])
    }

    /// With a free slot and nothing due, the wait ends when the next row falls due (a retry
    /// 300 ms away is tried 300 ms later, not a poll later); the poll interval only bounds
    /// it, and the due times other dispatchers set are looked up at most once an interval.
    @Test func nothingDueSleepsUntilTheNextRowFallsDue() {
        var machine = Self.claiming(concurrency: 2)
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(.milliseconds(300)).step == .wait(.milliseconds(300)))
        // Woken when it fell due: claimed (by this claim or another dispatcher's), and
        // looked up a moment ago, so only the poll bounds the wait.
        #expect(machine.woken(at: Self.later(.milliseconds(300))).step == .claim)
        #expect(machine.claimed([]).step == .wait(.seconds(1)))
        #expect(machine.woken(at: Self.later(.milliseconds(1300))).step == .claim)
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(nil).step == .wait(.seconds(1)))
        // Due already (it fell due during the round trip): no wait at all.
        #expect(machine.woken(at: Self.later(.milliseconds(2400))).step == .claim)
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(.milliseconds(-5)).step == .wait(.zero))
    }

    /// Its own retries it knows when it records them: the wait for one needs no look-up.
    @Test func itsOwnRetryIsWaitedForExactly() {
        var machine = Self.claiming(concurrency: 2)
        let row = ClaimedDelivery(id: 1, idempotencyKey: "k", url: "http://receiver.test/", method: "POST", headers: [],
                                  auth: nil, body: "{}", attemptField: nil,
                                  policy: .fixed(delay: .milliseconds(300), maxAttempts: 3), attempt: 1,
                                  requeuedAtAttempt: 0, orderingKey: nil, previousStatus: .pending)
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(nil).step == .wait(.seconds(1)))
        #expect(machine.woken(at: Self.start).step == .claim)
        #expect(machine.claimed([row]).step == .send([1]))
        #expect(machine.woken([Self.answered(row, status: 500)], at: Self.later(.milliseconds(10))).step == .record([1]))
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimed([]).step == .wait(.milliseconds(300)))
        // Two more retries fall due later: each is waited for in turn, without a look-up.
        let more = [ClaimedDelivery](repeating: row, count: 2).enumerated().map { index, delivery in
            var next = delivery
            next.id = Int64(index + 2)
            return next
        }
        #expect(machine.woken(at: Self.later(.milliseconds(20))).step == .claim)
        #expect(machine.claimed(more).step == .send([2, 3]))
        #expect(machine.woken([Self.answered(more[0], status: 500)], at: Self.later(.milliseconds(50))).step == .record([2]))
        #expect(machine.recorded().step == .claim)
        #expect(machine.woken([Self.answered(more[1], status: 500)], at: Self.later(.milliseconds(80))).step == .record([3]))
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimed([]).step == .wait(.milliseconds(230)))
        #expect(machine.woken(at: Self.later(.milliseconds(310))).step == .claim)
        #expect(machine.claimed([row]).step == .send([1]))
        #expect(machine.woken(at: Self.later(.milliseconds(311))).step == .claim)
        #expect(machine.claimed([]).step == .wait(.milliseconds(39)))
    }

    /// A retry falls due its delay after the record's transaction, which comes back after
    /// the wake that found the failure: counted from the wake, the retry would be claimed
    /// before the database has it due, and left to a poll.
    @Test func aRetryIsCountedFromTheRecordNotFromTheFailure() {
        var machine = Self.claiming(concurrency: 2)
        let row = ClaimedDelivery(id: 1, idempotencyKey: "k", url: "http://receiver.test/", method: "POST", headers: [],
                                  auth: nil, body: "{}", attemptField: nil,
                                  policy: .fixed(delay: .milliseconds(300), maxAttempts: 3), attempt: 1,
                                  requeuedAtAttempt: 0, orderingKey: nil, previousStatus: .pending)
        #expect(machine.claimed([row]).step == .send([1]))
        #expect(machine.woken([Self.answered(row, status: 500)], at: Self.later(.milliseconds(10))).step == .record([1]))
        #expect(machine.recorded(at: Self.later(.milliseconds(25))).step == .claim)
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.lookedAhead(nil).step == .wait(.milliseconds(315)))
    }

    /// The claim statement hands out one row per ordering key, oldest first; the queue must
    /// not undo that by sending in any other order.
    @Test func theQueueIsSentInClaimOrder() {
        var machine = Self.claiming(concurrency: 1)
        let rows = [Self.delivery(7), Self.delivery(3), Self.delivery(5)]
        #expect(machine.claimed(rows).step == .send([7]))
        #expect(machine.woken([Self.answered(rows[0])], at: Self.start).step == .send([3]))
        #expect(machine.woken([Self.answered(rows[1])], at: Self.start).step == .send([5]))
    }

    /// Orphaned claims (a dispatcher killed mid-try) are taken over by a connection opened
    /// holding nothing, before its first claim; a connection opened while this dispatcher
    /// still holds claims made under the session it lost does not, since those are its own
    /// to send, and a later connection holding nothing does again.
    @Test func orphanedClaimsAreTakenOverOnlyByAConnectionThatHoldsNothing() {
        var machine = Self.machine(concurrency: 2)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        let first = Self.delivery(1), second = Self.delivery(2), third = Self.delivery(3)
        #expect(machine.claimed([first, second, third]).step == .send([1, 2]))
        #expect(machine.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        // One in flight, one queued: the new connection claims, and takes over nothing.
        #expect(machine.woken([Self.answered(first)], at: Self.start).step == .send([3]))
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .record([1]))
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimed([]).step == .wait(.seconds(1)))
        #expect(machine.woken([Self.answered(second), Self.answered(third)], at: Self.start).step == .record([2, 3]))
        #expect(machine.recorded().step == .claim)
        // Everything recorded: a connection lost now leaves nothing of this dispatcher's.
        #expect(machine.claimed([]).step == .lookAhead)
        #expect(machine.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
    }

    @Test func aFinishedTryOutlivesALostStateConnectionAndFreesItsSlot() {
        var machine = Self.claiming(concurrency: 1)
        let first = Self.delivery(1)
        #expect(machine.claimed([first]).step == .send([1]))
        #expect(machine.woken(at: Self.start).step == .claim)
        #expect(machine.claimed([]).step == .wait(.seconds(1)))
        #expect(machine.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        // It finished while the state database was away.
        #expect(machine.woken([Self.answered(first)], at: Self.start).step == .connect)
        #expect(machine.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .record([1]))
        // The record itself failed: the attempt is asked for again on the next connection.
        #expect(machine.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .record([1]))
        // Its slot is free: with a concurrency of one, the next row goes at once.
        #expect(machine.recorded().step == .claim)
        #expect(machine.claimed([Self.delivery(2)]).step == .send([2]))
    }

    /// The pause grows while connecting fails, and while a statement fails on every new
    /// connection (a privilege the role lacks): only a statement that works resets it.
    @Test func reconnectsAfterAGrowingPauseThatAWorkingStatementResets() throws {
        var machine = Self.machine(concurrency: 1)
        _ = machine.woken(at: Self.start)
        var pauses: [Duration] = []
        for _ in 1...3 {
            pauses.append(try #require(machine.connectionLost(Self.lost, at: Self.start).pause))
            #expect(machine.woken(at: Self.start).step == .connect)
        }
        #expect(pauses[0] >= .milliseconds(100) && pauses[0] <= .milliseconds(200))
        #expect(pauses[2] >= .milliseconds(400) && pauses[2] <= .milliseconds(800))
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        // The claim is refused on the new connection: the pause goes on growing.
        let refused = try #require(machine.connectionLost(Self.lost, at: Self.start).pause)
        #expect(refused >= .milliseconds(800) && refused <= .milliseconds(1600))
        #expect(machine.woken(at: Self.start).step == .connect)
        #expect(machine.connected().step == .takeOverOrphans)
        #expect(machine.tookOverOrphans().step == .claim)
        _ = machine.claimed([])
        let pause = try #require(machine.connectionLost(Self.lost, at: Self.start).pause)
        #expect(pause >= .milliseconds(100) && pause <= .milliseconds(200))
    }

    @Test func aStopReleasesQueuedClaimsThenWaitsForTheRequestsInFlight() {
        var machine = Self.claiming(concurrency: 2)
        let rows = (1...4).map { Self.delivery($0) }
        #expect(machine.claimed(rows).step == .send([1, 2]))
        #expect(machine.woken(at: Self.start).step == .wait(.seconds(1)))
        machine.stopRequested(at: Self.start)
        // A slot freed at the stop is not refilled from the queue; the try is recorded.
        #expect(machine.woken([Self.answered(rows[0])], at: Self.start).step == .record([1]))
        #expect(machine.recorded().step == .release([3, 4]))
        #expect(machine.released().step == .wait(.milliseconds(50)))
        #expect(machine.woken(at: Self.later(.seconds(1))).step == .wait(.milliseconds(50)))
        #expect(machine.woken([Self.answered(rows[1])], at: Self.later(.seconds(2))).step == .record([2]))
        #expect(machine.recorded().step == .exit(.drained))
    }

    @Test func theDrainDeadlineEndsTheRunWithRequestsStillInFlight() {
        var machine = Self.stoppingWithTwoInFlight()
        #expect(machine.woken(at: Self.later(.seconds(5))).step == .wait(.milliseconds(50)))
        // Seeing the stop again does not move its deadline.
        machine.stopRequested(at: Self.later(.seconds(9)))
        // What finished by the deadline is still recorded before the run ends.
        #expect(machine.woken([Self.answered(Self.delivery(1))], at: Self.later(.seconds(10))).step == .record([1]))
        #expect(machine.recorded().step == .exit(.requestsInFlight(1)))
    }

    @Test func theDrainDeadlineEndsTheRunWithoutTheStateDatabase() {
        var machine = Self.stoppingWithTwoInFlight()
        #expect(machine.woken([Self.answered(Self.delivery(1))], at: Self.start).step == .record([1]))
        // Before the deadline a lost connection is reconnected, even while stopping.
        #expect(machine.connectionLost(Self.lost, at: Self.later(.seconds(1))).step == .reconnect)
        #expect(machine.woken(at: Self.later(.seconds(10))).step == .connect)
        #expect(machine.connectionLost(Self.lost, at: Self.later(.seconds(10))).step
            == .exit(.stateDatabaseLost(unrecorded: 1)))
    }

    /// Stopping while the state database is down: with nothing to record or put back the run
    /// ends at once, and otherwise no pause outlasts the drain deadline.
    @Test func aStopWithoutTheStateDatabaseWaitsOnlyForWhatNeedsIt() throws {
        var idle = Self.claiming(concurrency: 2)
        #expect(idle.claimed([]).step == .lookAhead)
        #expect(idle.connectionLost(Self.lost, at: Self.start).step == .reconnect)
        idle.stopRequested(at: Self.start)
        #expect(idle.woken(at: Self.later(.seconds(1))).step == .exit(.drained))

        var busy = Self.stoppingWithTwoInFlight()
        #expect(busy.woken([Self.answered(Self.delivery(1)), Self.answered(Self.delivery(2))], at: Self.start).step == .record([1, 2]))
        var pauses: [Duration] = []
        for second in 1...9 {
            pauses.append(try #require(busy.connectionLost(Self.lost, at: Self.later(.seconds(second))).pause))
        }
        #expect(pauses.last! <= .seconds(1), "\(pauses)")
        #expect(zip(pauses, 1...9).allSatisfy { pause, second in pause <= .seconds(10 - second) }, "\(pauses)")
    }

    @Test func a2xxSucceeds() throws {
        let record = try Self.record(of: Self.answered(Self.delivery(1), status: 204, body: "ok"))
        #expect(record.decision == .succeeded)
        #expect(record.status == .succeeded)
        #expect(record.httpStatus == 204)
        #expect(record.error == nil)
        #expect(record.delay == .zero)
        #expect(record.responseBody == "ok")
    }

    @Test func aFailureIsRetriedAfterThePolicysPause() throws {
        let record = try Self.record(of: Self.answered(Self.delivery(1, attempt: 2), status: 500, body: "bro\0ken"))
        #expect(record.status == .failed)
        #expect(record.delay == .seconds(10))
        #expect(record.httpStatus == 500)
        #expect(record.error == "HTTP 500")
        #expect(record.responseBody == "broken")
    }

    /// The date is read against the time the try ended, not the time it is recorded.
    @Test func aRetryAfterDateCountsFromTheAnswer() throws {
        let answer = Self.answered(Self.delivery(1), status: 503, headers: [("Retry-After", "Sun, 06 Nov 1994 08:50:37 GMT")],
                                   at: Date(timeIntervalSince1970: 784_111_777))
        let record = try Self.record(of: answer)
        #expect(record.status == .failed)
        #expect(record.delay == .seconds(60))
    }

    @Test func aTransportFailureIsRetriedWithTheClientsWords() throws {
        let error = HTTPError(.couldNotConnect, method: "POST", url: "http://receiver.test/hook", message: "Connection refused")
        let ended = Date(timeIntervalSince1970: 1_700_000_000)
        let record = try Self.record(of: Dispatcher.Finished(delivery: Self.delivery(1), started: ended, ended: ended,
                                                             result: .failed(error)))
        #expect(record.status == .failed)
        #expect(record.delay == .seconds(10))
        #expect(record.httpStatus == nil)
        #expect(record.error == error.description)
    }

    @Test func theLastAttemptIsDeadWithItsReason() throws {
        let record = try Self.record(of: Self.answered(Self.delivery(1, attempt: 3), status: 500))
        #expect(record.status == .dead)
        #expect(record.decision == .dead(.attemptsExhausted(attempts: 3, lastFailure: .status(500))))
        #expect(record.error == "gave up after 3 attempts, last: HTTP 500")
        #expect(record.delay == .zero)
    }

    /// `deliveries retry` re-queued it after its third try: the policy counts from there.
    @Test func aRequeuedDeliveryHasItsTriesAgain() throws {
        let record = try Self.record(of: Self.answered(Self.delivery(1, attempt: 4, requeuedAtAttempt: 3), status: 500))
        #expect(record.status == .failed)
        #expect(record.delay == .seconds(10))
    }

    @Test func aWebhookEndpointThatRefusesForGoodIsDeadWithoutRetries() throws {
        let record = try Self.record(of: Self.answered(Self.delivery(1, endpoint: "webhook:7"), status: 410))
        #expect(record.status == .dead)
        #expect(record.httpStatus == 410)
        #expect(record.error == "gave up: endpoint gone (HTTP 410)")
    }

    /// An edge function's 410 (a conversation check, an automation run) says nothing
    /// Standard Webhooks gives meaning to: it is retried within the budget, as the seeds did.
    @Test func anotherEndpointsGoneIsRetriedLikeAnyFailure() throws {
        let record = try Self.record(of: Self.answered(Self.delivery(1), status: 410))
        #expect(record.status == .failed)
        #expect(record.httpStatus == 410)
        #expect(record.error == "HTTP 410")
    }
}

/// An action with each delivery reduced to its id, so that whole actions compare.
private enum Step: Equatable {
    enum Exit: Equatable {
        case drained
        case requestsInFlight(Int)
        case stateDatabaseLost(unrecorded: Int)
    }

    case connect
    case send([Int64])
    case record([Int64])
    case claim
    case release([Int64])
    case lookAhead
    case takeOverOrphans
    case wait(Duration)
    case reconnect
    case exit(Exit)
}

extension DispatchStateMachine.Action {
    fileprivate var step: Step {
        switch self {
        case .connect: .connect
        case .send(let batch): .send(batch.map(\.id))
        case .record(let attempts): .record(attempts.map(\.delivery.id))
        case .claim: .claim
        case .release(let unsent): .release(unsent.map(\.id))
        case .lookAhead: .lookAhead
        case .takeOverOrphans: .takeOverOrphans
        case .wait(let timeout): .wait(timeout)
        case .reconnect: .reconnect
        case .exit(.drained): .exit(.drained)
        case .exit(.requestsInFlight(let count)): .exit(.requestsInFlight(count))
        case .exit(.stateDatabaseLost(_, let unrecorded)): .exit(.stateDatabaseLost(unrecorded: unrecorded))
        }
    }

    fileprivate var records: [AttemptRecord]? {
        if case .record(let attempts) = self { return attempts }
        return nil
    }

    fileprivate var pause: Duration? {
        if case .reconnect(let after, _) = self { return after }
        return nil
    }
}

extension DispatchStateMachine {
    /// The policies here have no jitter, so any generator gives the same records.
    fileprivate mutating func woken(_ finished: [Dispatcher.Finished] = [], at now: ContinuousClock.Instant) -> Action {
        var generator = SplitMix64(seed: 1)
        return woken(finished: finished, at: now, using: &generator)
    }
}
