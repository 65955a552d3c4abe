import Core
import Decoding
import Foundation
import Logging
import PlannedEffects
import Replication
import StateStore
import Synchronization

/// Sends due deliveries and keeps their rows current. Any number of dispatchers can
/// share one deliveries table: each claims rows with `FOR UPDATE SKIP LOCKED` and a
/// lease, so a dispatcher that dies leaves its claims to be taken over when the lease
/// ends. A NOTIFY from the batch committer wakes it, and with nothing due it sleeps until
/// the next row falls due; a slow poll covers a lost notification.
/// It blocks the thread that runs it (libpq waits), while requests go out concurrently
/// on the HTTP client's own thread.
public final class Dispatcher: Sendable {
    public struct Settings: Sendable {
        public var stateURL: String
        public var concurrency: Int
        public var timeout: Duration
        public var pollInterval: Duration
        /// Credentials named by a delivery's `auth` column, e.g. `service_key` → the key.
        /// Added to the request at send time; never stored, never logged.
        public var credentials: [String: String]
        /// The logs deliveries may keep current (`deliveries.report`, `Router.reports`). Only
        /// these are named in the record statement, so a state database without the seed's
        /// log tables works as long as no handler reports into them.
        public var reports: Set<DeliveryLog>
        /// The most requests to one endpoint (a webhook config) this dispatcher has in flight
        /// at once (`endpointLimit`); it claims up to twice as many of its rows
        /// (`DispatchStateMachine.claimShares`).
        public var maxInFlightPerEndpoint: Int
        /// Lets webhooks reach loopback, private and other non-public addresses.
        public var allowPrivateTargets: Bool
        /// The handlers whose deliveries are expected: their metric series exist, at zero,
        /// from the start, so a rate or an alert over them has a value before the first try.
        public var handlers: [String]

        public init(stateURL: String, concurrency: Int = 64, timeout: Duration = .seconds(15),
                    pollInterval: Duration = .seconds(1), credentials: [String: String] = [:],
                    reports: Set<DeliveryLog> = [], maxInFlightPerEndpoint: Int = 16, allowPrivateTargets: Bool = false,
                    handlers: [String] = []) {
            self.handlers = handlers
            self.maxInFlightPerEndpoint = Self.endpointLimit(configured: maxInFlightPerEndpoint, concurrency: concurrency)
            self.allowPrivateTargets = allowPrivateTargets
            self.stateURL = stateURL
            self.concurrency = concurrency
            self.timeout = timeout
            self.pollInterval = pollInterval
            self.credentials = credentials
            self.reports = reports
        }

        /// The per-endpoint limit a dispatcher with `concurrency` slots keeps: the configured
        /// one, but never more than half the slots (at least one), so that one endpoint that
        /// hangs leaves the others room. `delivery.concurrency = 8` under the default 16 would
        /// otherwise let a hanging endpoint hold every slot.
        public static func endpointLimit(configured: Int, concurrency: Int) -> Int {
            min(configured, max(1, concurrency / 2))
        }
    }

    struct Finished: Sendable {
        var delivery: ClaimedDelivery
        var started: Date
        var ended: Date
        var result: TryResult
    }

    /// How a try ended.
    enum TryResult: Sendable {
        case response(HTTPResponse)
        case failed(HTTPError)
        /// Not sent at all, for good (`GiveUpReason.refused`).
        case refused(String)
        /// Not sent this time (the target's name did not resolve): retried like a transport failure.
        case notSent(TransportError)
    }

    private let settings: Settings
    private let queue: DeliveryQueue
    /// The SSRF guard for webhook targets.
    private let targetGuard: WebhookTargetGuard
    private let client: HTTPClient
    private let logger: Logger
    private let metrics: DeliveryMetrics
    /// This process, as its claims name it.
    private let claimer = ProcessIdentity.current()
    private let finished = Mutex<[Finished]>([])
    /// Woken by the sending tasks, so the waiting thread wakes for a finished request.
    private let finishedPipe = WakePipe()

    /// - Parameter resolver: how the SSRF guard looks up webhook hosts; tests give a table.
    public init(_ settings: Settings, client: HTTPClient, logger: Logger, resolver: any HostResolver = SystemResolver()) {
        self.settings = settings
        metrics = DeliveryMetrics(handlers: settings.handlers)
        // An endpoint's rows are claimed up to twice its in-flight limit
        // (`DispatchStateMachine.claimShares`), so a claim outlives the longest a row can wait
        // in the local queue (one try of the endpoint's ahead of it) plus its own try, and a
        // live dispatcher's claims are not taken over. A try is at most the guard's look-up of
        // a webhook's host (as patient as the timeout) and then the request: two timeouts each.
        queue = DeliveryQueue(logs: settings.reports, claimLimit: settings.concurrency,
                              lease: settings.timeout * 4 + .seconds(30), logger: logger)
        targetGuard = WebhookTargetGuard(allowPrivateTargets: settings.allowPrivateTargets,
                                         lookups: HostLookups(resolver: resolver, patience: settings.timeout))
        self.client = client
        self.logger = logger
    }

    /// Runs until `stop` is asked; then lets requests in flight finish for up to `drain`.
    /// The rules are `DispatchStateMachine`'s; this loop only carries out its actions.
    public func run(until stop: StopSignal, drain: Duration = .seconds(10)) {
        let clock = ContinuousClock()
        var machine = DispatchStateMachine(concurrency: settings.concurrency,
                                           maxInFlightPerEndpoint: settings.maxInFlightPerEndpoint,
                                           pausedByGone: settings.reports.compactMap(\.endpointCondition?.prefix),
                                           pollInterval: settings.pollInterval, drain: drain, start: clock.now)
        var random = SystemRandomNumberGenerator()
        /// Open from the machine's `.connect` until the next failure; the machine asks for
        /// the state database only in between.
        var connection: PostgresConnection?
        let webhooks = WebhookTries(logger: logger)
        var endpoints = EndpointCache<OpenDeliveries>()

        func woken() -> DispatchStateMachine.Action {
            if stop.isRequested { machine.stopRequested(at: clock.now) }
            return machine.woken(finished: takeFinished(), at: clock.now, using: &random)
        }

        var action = woken()
        while true {
            do throws(PostgresError) {
                switch action {
                case .connect:
                    let db = try PostgresConnection(url: settings.stateURL)
                    try queue.listen(on: db)
                    connection = db
                    endpoints.forget()
                    action = machine.connected()
                case .send(let batch):
                    for delivery in batch { send(delivery, webhooks: webhooks) }
                    action = woken()
                case .record(let attempts):
                    try record(attempts, on: connection!)
                    action = machine.recorded(at: clock.now)
                case .claim:
                    let open = try endpoints.current(at: clock.now) { () throws(PostgresError) in
                        try queue.openDeliveries(on: connection!)
                    }
                    let held = try webhooks.heldBack(on: connection!)
                    let claimed = try queue.claim(on: connection!, claimer: claimer?.description,
                                                  shares: machine.claimShares(for: open.endpoints.filter { !held.contains($0.endpoint) }),
                                                  unroutedFloor: open.unroutedFloor)
                    let inactive: Set<String>
                    do throws(PostgresError) {
                        inactive = try webhooks.prepare(claimed + machine.queued, on: connection!)
                    } catch {
                        // The claim is made but its rows cannot be signed: they are put back
                        // once the connection is, rather than left to their leases with a try used.
                        machine.claimedUnsendable(claimed)
                        throw error
                    }
                    action = machine.claimed(claimed, pausing: inactive)
                case .lookAhead:
                    action = machine.lookedAhead(try queue.nextDue(on: connection!))
                case .takeOverOrphans:
                    let taken = try claimer.map { own throws(PostgresError) in
                        try DeliveryQueue.takeOverOrphans(on: connection!) { ProcessIdentity(parsing: $0)?.hasEnded(seenFrom: own) ?? false }
                    } ?? 0
                    if taken > 0 {
                        logger.warning("took over deliveries claimed by a dispatcher process of this machine that has ended; they are sent again now, not when their leases end",
                                       metadata: ["count": "\(taken)"])
                    }
                    action = machine.tookOverOrphans()
                case .release(let unsent):
                    try release(unsent, on: connection!)
                    action = machine.released()
                case .wait(let timeout):
                    // Once stopping, only finished requests end the wait: the stop signal stays readable.
                    let wake = stop.isRequested ? [finishedPipe.descriptor] : [finishedPipe.descriptor, stop.descriptor]
                    // A notification is the planner's commit: it may bring an endpoint with work.
                    if try !connection!.waitForNotifications(wakeDescriptors: wake, timeout: timeout).isEmpty { endpoints.forget() }
                    finishedPipe.drain()
                    action = woken()
                case .reconnect(let delay, let cause):
                    // A statement the server refused (a constraint or trigger on a seed log
                    // table) is no lost connection: said so, since every handler's deliveries
                    // wait until it is accepted, and the error names the table and the rule.
                    logger.warning(cause.sqlState == nil ? "state database unavailable; retrying"
                                       : "the state database refused the dispatcher's statement; every delivery waits until it is accepted; retrying",
                                   metadata: ["error": "\(cause)", "retry_in_ms": "\(delay.wholeMilliseconds)"])
                    // Once stopping, the signal (readable for good) must not cut the pause short:
                    // a lost state database is not hammered while the drain runs out.
                    if stop.isRequested { sleepThread(for: delay) } else { stop.sleep(for: delay) }
                    action = woken()
                case .exit(.drained):
                    return
                case .exit(.requestsInFlight(let count)):
                    logger.warning("stopping with requests in flight; their leases expire and another run retries them",
                                   metadata: ["in_flight": "\(count)"])
                    return
                case .exit(.stateDatabaseLost(let error, let unrecorded)):
                    logger.warning("stopping without the state database; unrecorded attempts are retried after their leases",
                                   metadata: ["error": "\(error)", "unrecorded": "\(unrecorded)"])
                    return
                }
            } catch {
                connection = nil
                action = machine.connectionLost(error, at: clock.now)
            }
        }
    }

    /// Puts claimed rows that were never sent back as they were (`DeliveryQueue.release`).
    private func release(_ unsent: [ClaimedDelivery], on db: PostgresConnection) throws(PostgresError) {
        try queue.release(unsent, on: db)
        logger.info("released claimed deliveries that were not sent", metadata: ["count": "\(unsent.count)"])
    }

    /// Starts one try. A webhook's target is checked in the try's own task: the guard may
    /// wait on DNS, which must hold up only this endpoint's tries, never the loop.
    private func send(_ claimed: ClaimedDelivery, webhooks: WebhookTries) {
        var delivery = claimed
        var body = Array(delivery.body.utf8)
        if let field = delivery.attemptField { Self.setField(field, to: delivery.attempt, in: &body) }
        let started = Date()
        var headers = delivery.headers
        var guarded = false
        if let configID = WebhookTries.configID(of: delivery) {
            switch webhooks.prepared(delivery, configID: configID, body: body, now: started) {
            case .success(let prepared):
                (delivery, headers) = prepared
                guarded = true
            case .failure(let refusal):
                finish(Finished(delivery: delivery, started: started, ended: started, result: .refused(refusal.reason)))
                return
            }
        } else if let auth = delivery.auth, let secret = settings.credentials[auth] {
            headers.append(("Authorization", "Bearer " + secret))
        }
        headers.append(("Idempotency-Key", delivery.idempotencyKey))
        let planned = HTTPRequest(method: delivery.method, url: delivery.url, headers: headers,
                                  body: body, connectTimeout: .seconds(5), timeout: settings.timeout,
                                  responseBodyLimit: 4096, oversizedBody: .discard)
        Task { [client, targetGuard] in
            var request = planned
            if guarded {
                switch await targetGuard.check(request.url) {
                case .success(let address):
                    request.pinnedAddress = address
                case .failure(let refusal):
                    let result: TryResult = refusal.isRetryable
                        ? .notSent(TransportError(.nameResolution, detail: refusal.reason)) : .refused(refusal.reason)
                    self.finish(Finished(delivery: delivery, started: started, ended: Date(), result: result))
                    return
                }
            }
            let result: TryResult
            do throws(HTTPError) { result = .response(try await client.send(request)) } catch { result = .failed(error) }
            self.finish(Finished(delivery: delivery, started: started, ended: Date(), result: result))
        }
    }

    /// Hands a finished try to the loop and wakes it.
    private func finish(_ done: Finished) {
        finished.withLock { $0.append(done) }
        finishedPipe.wake()
    }

    /// Adds `"field": attempt` to a JSON object body. Bodies are planned by handlers as
    /// objects without that field; anything else is sent as planned.
    static func setField(_ field: String, to attempt: Int, in body: inout [UInt8]) {
        guard let close = body.lastIndex(of: UInt8(ascii: "}")),
              body[close...].dropFirst().allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }),
              let open = body.firstIndex(of: UInt8(ascii: "{")) else { return }
        let isEmpty = body[(open + 1)..<close].allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        var member = JSONWriter(capacity: field.utf8.count + 16)
        member.string(field)
        body.replaceSubrange(close..<close, with: Array(((isEmpty ? "" : ",") + member.string + ":" + String(attempt)).utf8))
    }

    private func takeFinished() -> [Finished] {
        finished.withLock { finished in
            defer { finished.removeAll() }
            return finished
        }
    }

    /// Records the attempts, with the log rows they keep current (`DeliveryQueue.record`),
    /// and logs the deliveries given up on.
    private func record(_ attempts: [AttemptRecord], on db: PostgresConnection) throws(PostgresError) {
        CrashPoint.trySent.reach()
        try queue.record(attempts.map(\.recorded), on: db)
        for attempt in attempts { metrics.recorded(attempt) }
        for attempt in attempts {
            guard case .dead(let reason) = attempt.decision else { continue }
            let delivery = attempt.delivery
            // The idempotency key names the handler and the source position (commit LSN,
            // change index); the ordering key names the entity (table and row key).
            logger.error("delivery is dead", metadata: [
                "delivery": "\(delivery.id)", "key": "\(delivery.idempotencyKey)",
                "entity": "\(delivery.orderingKey ?? "-")", "url": "\(redactedURL(delivery.url))",
                "reason": "\(reason)",
            ])
            if case .gaveUp(.endpointGone) = reason, let config = WebhookTries.configID(of: delivery) {
                // Only to say what happened: the attempts are recorded, and a failure here must
                // not make the loop record them again.
                switch try? WebhookTries.isActive(configID: config, on: db) {
                case false?:
                    logger.warning("webhook config deactivated: its endpoint answered 410 Gone; its deliveries wait until it is active again",
                                   metadata: ["config": "\(config)", "delivery": "\(delivery.id)"])
                case true?:
                    logger.warning("a webhook endpoint answered 410 Gone at a URL its config no longer has; the config stays active",
                                   metadata: ["config": "\(config)", "delivery": "\(delivery.id)"])
                case nil:
                    logger.warning("a webhook endpoint answered 410 Gone; its config no longer exists or could not be read",
                                   metadata: ["config": "\(config)", "delivery": "\(delivery.id)"])
                }
            }
        }
    }
}

extension HTTPError {
    var transportKind: TransportError.Kind {
        switch kind {
        case .couldNotResolve: .nameResolution
        case .couldNotConnect: .connectFailed
        case .tlsFailed: .tls
        case .timedOut: .timedOut
        case .sendFailed, .receiveFailed: .connectionReset
        case .invalidResponse: .invalidResponse
        case .tooLarge: .responseTooLarge
        case .invalidRequest, .cancelled, .clientClosed, .other: .other
        }
    }
}
