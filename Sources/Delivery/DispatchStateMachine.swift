import Core
import Foundation
import PlannedEffects
import Replication
import StateStore

/// The dispatcher's rules with nothing in them that waits, sends or reads a clock: when to
/// claim, what to send, when finished tries are recorded, what is put back at a stop and
/// when draining gives up. `Dispatcher.run` reports each event and carries out the action
/// it gets back, so orders of events that are hard to provoke against a real database and
/// a real receiver (a connection lost with tries unrecorded, a stop with claims queued)
/// can be walked through one event at a time.
///
/// What it keeps true:
/// - Claims run ahead of sending: up to `concurrency` claimed rows wait in a local queue on
///   top of the requests in flight, so a finished request's slot is refilled at once
///   instead of after the next round trip to the state database.
/// - The queue is sent in claim order, and the claim statement never hands out a row while
///   an earlier row of its ordering key is unfinished, so one key is never reordered.
/// - No endpoint has more than `maxInFlightPerEndpoint` requests in flight: its next rows
///   stay queued, and rows of other endpoints behind them go first, so an endpoint that
///   hangs holds only its own share of the slots.
/// - A finished try leaves the count in flight when it is reported, not when it is
///   recorded, and stays unrecorded across a lost state connection: the connection takes
///   neither the attempt nor a phantom request in flight with it.
/// - After a stop nothing is claimed or sent; claims still queued are put back, and the
///   requests in flight get up to the drain bound to finish and be recorded.
/// - A connection opened while it holds no claims (at start, or after a lost connection
///   once everything held is recorded or put back) first takes over the claims of
///   dispatcher processes of this machine that have ended (killed mid-try), before its
///   first claim.
/// - An endpoint that pauses when it answers 410 Gone (a webhook config, which the record
///   sets inactive) gets nothing more from this dispatcher: its rows still queued are put
///   back, unsent, to wait with the rest of its paused rows, instead of each being sent to an
///   endpoint that has said it is gone and ending dead. So are the queued rows of an endpoint
///   a claim finds paused otherwise (an operator turned the webhook config off).
struct DispatchStateMachine {
    enum Action {
        /// Open the state connection and listen for the batch committer's notifications; report
        /// `connected()` or `connectionLost(_:at:)`.
        case connect
        /// Start these requests. They count as in flight until they come back through
        /// `woken(finished:at:using:)`, which is also the next event to report.
        case send([ClaimedDelivery])
        /// Write these attempts and their deliveries' next status in one statement; report
        /// `recorded()`.
        case record([AttemptRecord])
        /// Claim due rows, at most `concurrency` (the claim statement's own limit); report
        /// `claimed(_:)`.
        case claim
        /// Put these claims back as they were before, since they were never sent (a stop, or
        /// their endpoint answered 410 and is paused); report `released()`.
        case release([ClaimedDelivery])
        /// Ask how long until the next row falls due (a retry another dispatcher or an earlier
        /// run scheduled); report `lookedAhead(_:)`.
        case lookAhead
        /// Make the claims of dispatcher processes that have ended due now
        /// (`DeliveryQueue.takeOverOrphans`); report `tookOverOrphans()`.
        case takeOverOrphans
        /// Sleep until a notification, a finished request or the timeout; report `woken`.
        case wait(Duration)
        /// Pause before connecting again; report `woken`.
        case reconnect(after: Duration, cause: PostgresError)
        case exit(Exit)
    }

    enum Exit {
        case drained
        /// Their claims stay until the leases end; another run retries them then.
        case requestsInFlight(Int)
        /// These attempts are never recorded: their deliveries are retried once the leases end.
        case stateDatabaseLost(PostgresError, unrecorded: Int)
    }

    private enum State {
        case dispatching
        /// The deadline is compared with the time of the last wake, since the machine is
        /// given time rather than reading it; the tries finished by then are still
        /// recorded and the queue released before it gives up.
        case draining(deadline: ContinuousClock.Instant, deadlinePassed: Bool)
    }

    /// Short, so that a stop ends soon after its deadline; a finished request wakes the
    /// loop earlier anyway.
    private static let drainingWait: Duration = .milliseconds(50)

    private let concurrency: Int
    private let maxInFlightPerEndpoint: Int
    /// The endpoints that a 410 Gone pauses are those whose names start with one of these.
    private let pausedByGone: [String]
    private let pollInterval: Duration
    private let drain: Duration
    private var state = State.dispatching
    private var isConnected = false
    private var backoff = Backoff(initial: .milliseconds(200), cap: .seconds(10))
    private var queue: [ClaimedDelivery] = []
    private var inFlight = 0
    private var inFlightByEndpoint: [String: Int] = [:]
    /// When rows are known to fall due, earliest first: the retries recorded here (their
    /// time known to the millisecond), and what the last look ahead found.
    private var knownDue: [ContinuousClock.Instant] = []
    private var lastLookAhead: ContinuousClock.Instant?
    /// The time of the last wake: the machine is given time, it does not read a clock.
    private var lastWake: ContinuousClock.Instant
    private var unrecorded: [AttemptRecord] = []
    /// Queued rows taken off the queue to be put back: their endpoint answered 410.
    private var heldBack: [ClaimedDelivery] = []
    /// The connection is new and nothing was held when it opened: orphaned claims are
    /// taken over before the first claim.
    private var orphansToTakeOver = false

    /// `pollInterval` bounds the wait for work when a notification is lost; `drain` is how
    /// long a stop waits for the requests in flight. `pausedByGone`: the prefixes of the
    /// endpoints a 410 Gone pauses (`EndpointCondition.prefix`).
    init(concurrency: Int, maxInFlightPerEndpoint: Int = .max, pausedByGone: [String] = [], pollInterval: Duration,
         drain: Duration, start: ContinuousClock.Instant = .now) {
        lastWake = start
        self.concurrency = concurrency
        self.maxInFlightPerEndpoint = maxInFlightPerEndpoint
        self.pausedByGone = pausedByGone
        self.pollInterval = pollInterval
        self.drain = drain
    }

    /// Idempotent, so the loop can report the stop flag every time it looks at it.
    mutating func stopRequested(at now: ContinuousClock.Instant) {
        guard case .dispatching = state else { return }
        state = .draining(deadline: now.advanced(by: drain), deadlinePassed: false)
    }

    /// The loop looks around: at the start, and after a send, a wait or a pause. `finished`
    /// are the tries that ended since the last look; what each does to its delivery is
    /// decided here, once, with `generator` for the retry jitter.
    mutating func woken<Generator: RandomNumberGenerator>(
        finished: [Dispatcher.Finished], at now: ContinuousClock.Instant, using generator: inout Generator
    ) -> Action {
        inFlight -= finished.count
        for done in finished {
            guard let endpoint = done.delivery.endpoint else { continue }
            inFlightByEndpoint[endpoint, default: 0] -= 1
            if inFlightByEndpoint[endpoint] == 0 { inFlightByEndpoint[endpoint] = nil }
        }
        let records = finished.map { try_ in
            AttemptRecord(try_, goneEndsDelivery: try_.delivery.endpoint.map { endpoint in
                pausedByGone.contains { endpoint.hasPrefix($0) }
            } ?? false, using: &generator)
        }
        unrecorded += records
        holdBackQueuedRows(ofEndpointsGoneIn: records)
        lastWake = now
        switch state {
        case .dispatching:
            // Before any round trip, and while the state database is away too: the queue
            // was claimed to keep every slot busy.
            if let batch = takeSendable() { return .send(batch) }
        case .draining(let deadline, _):
            state = .draining(deadline: deadline, deadlinePassed: now >= deadline)
        }
        return nextDatabaseStep()
    }

    /// The pause before the next reconnect is not reset here but by the first statement
    /// that works: one the server refuses every time (a privilege the role lacks) would
    /// otherwise be tried again several times a second, for as long as it is refused.
    mutating func connected() -> Action {
        isConnected = true
        orphansToTakeOver = unrecorded.isEmpty && queue.isEmpty && heldBack.isEmpty && inFlight == 0
        return nextDatabaseStep()
    }

    mutating func tookOverOrphans() -> Action {
        orphansToTakeOver = false
        return nextDatabaseStep()
    }

    /// `now`: when the record came back (the last wake when not given). The retries it
    /// scheduled fall due their delay after the record's transaction began, so counted from
    /// here they are never expected early.
    mutating func recorded(at now: ContinuousClock.Instant? = nil) -> Action {
        for record in unrecorded {
            if case .retry(let after) = record.decision { expect((now ?? lastWake).advanced(by: after)) }
        }
        unrecorded.removeAll()
        backoff.reset()
        return nextDatabaseStep()
    }

    mutating func released() -> Action {
        backoff.reset()
        heldBack.removeAll()
        if case .draining = state { queue.removeAll() }
        return nextDatabaseStep()
    }

    /// Takes the queued rows of each pausing endpoint that has just answered 410 off the
    /// queue, before anything more is sent from it. The record of that 410 goes first and
    /// pauses the endpoint, so the claim that follows the release does not take them again.
    private mutating func holdBackQueuedRows(ofEndpointsGoneIn records: [AttemptRecord]) {
        let gone = Set(records.compactMap { record -> String? in
            guard case .dead(.gaveUp(.endpointGone)) = record.decision, let endpoint = record.delivery.endpoint,
                  pausedByGone.contains(where: { endpoint.hasPrefix($0) }) else { return nil }
            return endpoint
        })
        guard !gone.isEmpty else { return }
        heldBack += queue.filter { $0.endpoint.map(gone.contains) ?? false }
        queue.removeAll { $0.endpoint.map(gone.contains) ?? false }
    }

    /// The rows claimed but not yet sent, in queue order.
    var queued: [ClaimedDelivery] { queue }

    /// Rows claimed that cannot be sent (what they need was not read: the connection failed
    /// right after the claim): put back unsent at the next database step, the release coming
    /// before any claim once the connection is back.
    mutating func claimedUnsendable(_ rows: [ClaimedDelivery]) {
        heldBack += rows
    }

    /// `pausing`: endpoints found paused since their rows were claimed (a webhook config an
    /// operator turned off); their queued rows are put back unsent, like those of an endpoint
    /// that answered 410.
    mutating func claimed(_ rows: [ClaimedDelivery], pausing: Set<String> = []) -> Action {
        backoff.reset()
        queue += rows
        if !pausing.isEmpty {
            heldBack += queue.filter { $0.endpoint.map(pausing.contains) ?? false }
            queue.removeAll { $0.endpoint.map(pausing.contains) ?? false }
        }
        if let batch = takeSendable() { return .send(batch) }
        if !heldBack.isEmpty { return nextDatabaseStep() }
        // What fell due by the last wake was claimable by this claim.
        knownDue.removeAll { $0 <= lastWake }
        // Every slot is busy: a finished request comes first.
        guard inFlight < concurrency else { return .wait(pollInterval) }
        // Nothing is due now: the wait must end when the next row falls due, not a poll
        // later. Rows another dispatcher scheduled, or an earlier run, are looked up at most
        // once a poll interval: this dispatcher's own retries it knows already.
        if lastLookAhead.map({ lastWake - $0 >= pollInterval }) ?? true { return .lookAhead }
        return waitForDue()
    }

    /// `nextDue`: how long from now until the next row falls due, nil when none is waiting.
    mutating func lookedAhead(_ nextDue: Duration?) -> Action {
        backoff.reset()
        lastLookAhead = lastWake
        if let nextDue { expect(lastWake.advanced(by: max(.zero, nextDue))) }
        return waitForDue()
    }

    /// Until the next known due time, a notification or a finished request; the poll
    /// interval bounds it in case a notification is lost.
    private func waitForDue() -> Action {
        guard let due = knownDue.first else { return .wait(pollInterval) }
        return .wait(min(pollInterval, max(.zero, due - lastWake)))
    }

    /// Keeps `knownDue` in order; a time already known is kept once.
    private mutating func expect(_ due: ContinuousClock.Instant) {
        var low = 0, high = knownDue.count
        while low < high {
            let middle = (low + high) / 2
            if knownDue[middle] < due { low = middle + 1 } else { high = middle }
        }
        if low == knownDue.count || knownDue[low] != due { knownDue.insert(due, at: low) }
    }

    /// A failed statement counts as a lost connection too: the connection is opened afresh
    /// after a growing pause, so a state database in trouble is not hammered in a loop, and
    /// whatever was not recorded or released yet is asked for again.
    mutating func connectionLost(_ error: PostgresError, at now: ContinuousClock.Instant) -> Action {
        isConnected = false
        let pause = backoff.nextDelay()
        if case .draining(let deadline, _) = state {
            guard now < deadline else { return .exit(.stateDatabaseLost(error, unrecorded: unrecorded.count)) }
            // A stop waits for the state database no longer than the drain allows.
            return .reconnect(after: min(pause, now.duration(to: deadline)), cause: error)
        }
        return .reconnect(after: pause, cause: error)
    }

    /// Recording comes first, so that a stop or a claim never waits on attempts that have
    /// already happened.
    private func nextDatabaseStep() -> Action {
        // A stop with nothing to record, put back or wait for needs no database: waiting to
        // reconnect to one that is down held a SIGTERM up for a backoff or two.
        if case .draining = state, unrecorded.isEmpty, queue.isEmpty, heldBack.isEmpty, inFlight == 0 {
            return .exit(.drained)
        }
        guard isConnected else { return .connect }
        if !unrecorded.isEmpty { return .record(unrecorded) }
        if !heldBack.isEmpty, case .dispatching = state { return .release(heldBack) }
        switch state {
        case .dispatching:
            if orphansToTakeOver { return .takeOverOrphans }
            // Claim in chunks, not one row at a time: a claim is a round trip.
            return inFlight + queue.count <= concurrency ? .claim : .wait(pollInterval)
        case .draining(_, let deadlinePassed):
            if !queue.isEmpty || !heldBack.isEmpty { return .release(heldBack + queue) }
            if inFlight == 0 { return .exit(.drained) }
            if deadlinePassed { return .exit(.requestsInFlight(inFlight)) }
            return .wait(Self.drainingWait)
        }
    }

    /// How many rows of each of `endpoints` the next claim may take: twice the in-flight
    /// limit (so the next ones wait in the queue and a finished request's slot is refilled
    /// without a round trip), less what this dispatcher holds of it already: queued, in
    /// flight, or finished and not yet recorded. Only its own claims count, as only its own
    /// slots are at stake; another dispatcher sharing the table keeps its own count.
    func claimShares(for endpoints: [OpenEndpoint]) -> [EndpointShare] {
        var held = inFlightByEndpoint
        for delivery in queue { if let endpoint = delivery.endpoint { held[endpoint, default: 0] += 1 } }
        for record in unrecorded { if let endpoint = record.delivery.endpoint { held[endpoint, default: 0] += 1 } }
        // Never above the concurrency, which is also a claim's own limit.
        let most = maxInFlightPerEndpoint > concurrency / 2 ? concurrency : 2 * maxInFlightPerEndpoint
        return endpoints.compactMap { open in
            let rows = most - held[open.endpoint, default: 0]
            return rows > 0 ? EndpointShare(open, rows: rows) : nil
        }
    }

    /// The queued rows that may start now, in queue order: as many as there are free slots,
    /// skipping those of an endpoint at its limit.
    private mutating func takeSendable() -> [ClaimedDelivery]? {
        var free = concurrency - inFlight
        guard free > 0, !queue.isEmpty else { return nil }
        var batch: [ClaimedDelivery] = []
        var waiting: [ClaimedDelivery] = []
        for delivery in queue {
            guard free > 0 else {
                waiting.append(delivery)
                continue
            }
            if let endpoint = delivery.endpoint {
                guard inFlightByEndpoint[endpoint, default: 0] < maxInFlightPerEndpoint else {
                    waiting.append(delivery)
                    continue
                }
                inFlightByEndpoint[endpoint, default: 0] += 1
            }
            batch.append(delivery)
            free -= 1
        }
        guard !batch.isEmpty else { return nil }
        queue = waiting
        inFlight += batch.count
        return batch
    }
}

/// What one finished try does: its `delivery_attempts` row and its delivery's next status.
struct AttemptRecord {
    var delivery: ClaimedDelivery
    var started: Date
    var ended: Date
    var decision: RetryDecision
    var httpStatus: Int?
    var error: String?
    var responseBody: String?

    /// A Retry-After date is read against the time the try ended, when the receiver wrote it.
    /// `goneEndsDelivery`: a 410 ends the delivery (a webhook endpoint, as Standard Webhooks
    /// asks); elsewhere it is one more failure to retry, as the seeds retried every failure.
    init<Generator: RandomNumberGenerator>(_ finished: Dispatcher.Finished, goneEndsDelivery: Bool,
                                           using generator: inout Generator) {
        delivery = finished.delivery
        started = finished.started
        ended = finished.ended
        let outcome: AttemptOutcome
        switch finished.result {
        case .response(let response):
            httpStatus = response.status
            responseBody = response.storableBody
            outcome = AttemptOutcome(status: response.status, retryAfter: response.header("Retry-After"),
                                     now: Int64(finished.ended.timeIntervalSince1970), goneEndsDelivery: goneEndsDelivery)
            if !response.isSuccess { error = "HTTP \(response.status)" }
        case .failed(let failure):
            error = failure.description
            outcome = AttemptOutcome(transportError: TransportError(failure.transportKind, detail: failure.description))
        case .refused(let reason):
            error = reason
            outcome = .giveUp(.refused(reason))
        case .notSent(let failure):
            error = failure.description
            outcome = AttemptOutcome(transportError: failure)
        }
        decision = RetryDecision(policy: delivery.policy, attempt: delivery.policyAttempt, outcome: outcome,
                                 using: &generator)
        if case .dead(let reason) = decision { error = reason.description }
    }

    /// The row's `status`.
    var status: DeliveryStatus {
        switch decision {
        case .succeeded: .succeeded
        case .retry: .failed
        case .dead: .dead
        }
    }

    /// How long after the record the next try is due; zero when there is none.
    var delay: Duration {
        if case .retry(let after) = decision { return after }
        return .zero
    }

    /// What the state store writes of it.
    var recorded: RecordedAttempt {
        RecordedAttempt(deliveryID: delivery.id, attempt: delivery.attempt, status: status, httpStatus: httpStatus,
                        error: error, retryIn: delay, started: started, responseBody: responseBody)
    }
}
