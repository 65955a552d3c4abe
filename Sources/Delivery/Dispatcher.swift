import Core
import Decoding
import Foundation
import Logging
import PlannedEffects
import Replication
import Synchronization

/// Sends due deliveries and keeps their rows current. Any number of dispatchers can
/// share one deliveries table: each claims rows with `FOR UPDATE SKIP LOCKED` and a
/// lease, so a dispatcher that dies leaves its claims to be taken over when the lease
/// ends. A NOTIFY from the planner wakes it; a slow poll covers a lost notification.
/// It blocks the thread that runs it (libpq waits), while requests go out concurrently
/// on the HTTP client's own thread.
public final class Dispatcher: Sendable {
    /// The channel a commit that planned deliveries, or a re-queue, notifies to wake dispatchers.
    public static let notifyChannel = "changerelay_deliveries"

    public struct Settings: Sendable {
        public var stateURL: String
        public var concurrency: Int
        public var timeout: Duration
        public var pollInterval: Duration
        /// Credentials named by a delivery's `auth` column, e.g. `service_key` → the key.
        /// Added to the request at send time; never stored, never logged.
        public var credentials: [String: String]
        /// The log tables deliveries may report into (`deliveries.report`). Only these are
        /// named in the record statement, so a state database without the seed's log
        /// tables works as long as no handler reports into them.
        public var reports: Set<DeliveryReport.Kind>

        public init(stateURL: String, concurrency: Int = 64, timeout: Duration = .seconds(15),
                    pollInterval: Duration = .seconds(1), credentials: [String: String] = [:],
                    reports: Set<DeliveryReport.Kind> = []) {
            self.stateURL = stateURL
            self.concurrency = concurrency
            self.timeout = timeout
            self.pollInterval = pollInterval
            self.credentials = credentials
            self.reports = reports
        }
    }

    struct Claimed: Sendable {
        var id: Int64
        var idempotencyKey: String
        var url: String
        var method: String
        var headers: [(String, String)]
        var auth: String?
        var body: String
        /// A body field set to the attempt number at send time.
        var attemptField: String?
        var policy: RetryPolicy
        var attempt: Int
        /// The attempt count when `deliveries retry` last re-queued it (0: never). Attempt
        /// numbers run on across a re-queue; the policy counts only the tries after it.
        var requeuedAtAttempt: Int
        var orderingKey: String?
        /// What the row was before the claim, to put it back if it is released unsent.
        var previousStatus: String

        /// The try as the retry policy counts it: from 1 again after a re-queue, so the
        /// re-queued delivery gets the policy's whole allowance and schedule.
        var policyAttempt: Int { attempt - requeuedAtAttempt }
    }

    struct Finished: Sendable {
        var delivery: Claimed
        var started: Date
        var ended: Date
        var result: Result<HTTPResponse, HTTPError>
    }

    private let settings: Settings
    private let recordStatement: String
    private let claimStatement: String
    private let client: HTTPClient
    private let logger: Logger
    private let finished = Mutex<[Finished]>([])
    /// A pipe the sending tasks write to, so the waiting thread wakes for a finished request.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    public init(_ settings: Settings, client: HTTPClient, logger: Logger) throws(DispatcherError) {
        self.settings = settings
        recordStatement = Self.recordStatement(reports: settings.reports)
        claimStatement = Self.claimStatement(concurrency: settings.concurrency, reports: settings.reports)
        self.client = client
        self.logger = logger
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw .setup("pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Runs until `stop` is asked; then lets requests in flight finish for up to `drain`.
    /// The rules are `DispatchStateMachine`'s; this loop only carries out its actions.
    public func run(until stop: StopSignal, drain: Duration = .seconds(10)) {
        var machine = DispatchStateMachine(concurrency: settings.concurrency, pollInterval: settings.pollInterval,
                                           drain: drain)
        var random = SystemRandomNumberGenerator()
        /// Open from the machine's `.connect` until the next failure; the machine asks for
        /// the state database only in between.
        var connection: PostgresConnection?
        let clock = ContinuousClock()

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
                    // These short statements are prepared and run thousands of times a second:
                    // JIT compilation would cost more than it could ever save.
                    try db.execute("SET jit = off; LISTEN " + Self.notifyChannel)
                    connection = db
                    action = machine.connected()
                case .send(let batch):
                    batch.forEach(send)
                    action = woken()
                case .record(let attempts):
                    try record(attempts, on: connection!)
                    action = machine.recorded()
                case .claim:
                    action = machine.claimed(try claim(on: connection!))
                case .release(let unsent):
                    try release(unsent, on: connection!)
                    action = machine.released()
                case .wait(let timeout):
                    // Once stopping, only finished requests end the wait: the stop signal stays readable.
                    let wake = stop.isRequested ? [wakeRead] : [wakeRead, stop.descriptor]
                    _ = try connection!.waitForNotifications(wakeDescriptors: wake, timeout: timeout)
                    drainWakePipe()
                    action = woken()
                case .reconnect(let delay, let cause):
                    logger.warning("state database unavailable; retrying", metadata: ["error": "\(cause)", "retry_in": "\(delay)"])
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

    /// Claims up to `concurrency` due rows.
    private func claim(on db: PostgresConnection) throws(PostgresError) -> [Claimed] {
        let lease = settings.timeout + .seconds(30)
        let rows = try db.query(prepared: "changerelay_claim", claimStatement, ["\(lease.components.seconds) seconds"]).rows
        return rows.compactMap { row in
            guard let id = row[0].flatMap({ Int64($0) }), let key = row[1], let url = row[2], let method = row[3],
                  let body = row[6], let policyText = row[7], let attempt = row[8].flatMap({ Int($0) }),
                  let previousStatus = row[10], let requeuedAtAttempt = row[12].flatMap({ Int($0) }) else { return nil }
            var policy: RetryPolicy
            do { policy = try JSONDecoder().decode(RetryPolicy.self, from: Data(policyText.utf8)) } catch {
                logger.error("delivery has an unreadable retry policy; it gets one attempt",
                             metadata: ["delivery": "\(id)", "error": "\(error)"])
                policy = .fixed(delay: .zero, maxAttempts: 1)
            }
            return Claimed(id: id, idempotencyKey: key, url: url, method: method, headers: Self.headers(row[4]),
                           auth: row[5], body: body, attemptField: row[11], policy: policy, attempt: attempt,
                           requeuedAtAttempt: requeuedAtAttempt, orderingKey: row[9], previousStatus: previousStatus)
        }
    }

    /// Puts claimed rows that were never sent back as they were, so a restart need not
    /// wait for their leases. A row taken over from an expired lease goes back as
    /// `failed`: its earlier attempt's outcome is unknown, and `failed` is due again.
    private func release(_ unsent: [Claimed], on db: PostgresConnection) throws(PostgresError) {
        try db.query("""
            UPDATE changerelay.deliveries d
            SET status = CASE WHEN r.status = 'sending' THEN 'failed' ELSE r.status END,
                attempt = d.attempt - 1, locked_until = NULL, updated_at = now()
            FROM unnest($1::bigint[], $2::int[], $3::text[]) AS r(id, attempt, status)
            WHERE d.id = r.id AND d.attempt = r.attempt AND d.status = 'sending'
            """, [postgresArrayLiteral(unsent.map { String($0.id) }), postgresArrayLiteral(unsent.map { String($0.attempt) }),
                  postgresArrayLiteral(unsent.map(\.previousStatus))])
        logger.info("released claimed deliveries that were not sent", metadata: ["count": "\(unsent.count)"])
    }

    private static func headers(_ json: String?) -> [(String, String)] {
        guard let json, case .object(let members)? = try? JSONParser.parse(json) else { return [] }
        return members.compactMap { member in
            guard case .string(let value) = member.value else { return nil }
            return (member.key, value)
        }
    }

    private func send(_ delivery: Claimed) {
        var headers = delivery.headers + [("Idempotency-Key", delivery.idempotencyKey)]
        if let auth = delivery.auth, let secret = settings.credentials[auth] {
            headers.append(("Authorization", "Bearer " + secret))
        }
        var body = Array(delivery.body.utf8)
        if let field = delivery.attemptField { Self.setField(field, to: delivery.attempt, in: &body) }
        let request = HTTPRequest(method: delivery.method, url: delivery.url, headers: headers,
                                  body: body, connectTimeout: .seconds(5), timeout: settings.timeout,
                                  responseBodyLimit: 4096, oversizedBody: .discard)
        let started = Date()
        Task { [client] in
            let result: Result<HTTPResponse, HTTPError>
            do throws(HTTPError) { result = .success(try await client.send(request)) } catch { result = .failure(error) }
            let done = Finished(delivery: delivery, started: started, ended: Date(), result: result)
            self.finished.withLock { $0.append(done) }
            var byte: UInt8 = 1
            _ = write(self.wakeWrite, &byte, 1)
        }
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

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// Records the attempts and moves the rows on (succeeded, failed to retry later, or
    /// dead) in one statement. A row whose attempt number moved on (its lease ran out and
    /// another dispatcher took it) is left alone.
    private func record(_ attempts: [AttemptRecord], on db: PostgresConnection) throws(PostgresError) {
        CrashPoint.trySent.reach()
        var columns = Array(repeating: [String?](), count: 8)
        for attempt in attempts {
            let row: [String?] = [String(attempt.delivery.id), attempt.status, attempt.httpStatus.map(String.init),
                                  attempt.error, String(attempt.delay.wholeMilliseconds), String(attempt.delivery.attempt),
                                  String(attempt.started.timeIntervalSince1970), attempt.responseBody]
            for (index, value) in row.enumerated() { columns[index].append(value) }
        }
        try db.query(prepared: "changerelay_record", recordStatement, columns.map(postgresArrayLiteral))
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
        }
    }

    /// The limit is part of the statement's text, not a parameter: a prepared statement's
    /// generic plan cannot see a parameter's value, and with a large backlog that plan
    /// walked the whole table to join a few rows. Rows whose report this dispatcher cannot
    /// write (its handlers do not use that log table) are left to one that can: sending
    /// them here would lose their log rows.
    static func claimStatement(concurrency: Int, reports: Set<DeliveryReport.Kind>) -> String {
        let reportable = reports.isEmpty ? "d.report IS NULL"
            : "(d.report IS NULL OR d.report ?| ARRAY[" + DeliveryReport.Kind.allCases.filter(reports.contains)
                .map { "'" + $0.key + "'" }.joined(separator: ", ") + "])"
        return """
            WITH due AS (
                SELECT d.id, d.status AS previous_status FROM changerelay.deliveries d
                WHERE d.status IN ('pending', 'failed', 'sending') AND d.next_attempt_at <= now()
                  AND (d.status <> 'sending' OR d.locked_until < now())
                  AND \(reportable)
                  AND (d.ordering_key IS NULL OR NOT EXISTS (
                      SELECT 1 FROM changerelay.deliveries e
                      WHERE e.ordering_key = d.ordering_key AND e.id < d.id
                        AND e.status IN ('pending', 'failed', 'sending')))
                ORDER BY d.next_attempt_at, d.id
                LIMIT \(concurrency)
                FOR UPDATE SKIP LOCKED)
            UPDATE changerelay.deliveries d
            SET status = 'sending', attempt = d.attempt + 1, locked_until = now() + $1::interval, updated_at = now()
            FROM due WHERE d.id = due.id
            RETURNING d.id, d.idempotency_key, d.target_url, d.method, d.headers::text, d.auth, d.body,
                      d.retry_policy::text, d.attempt, d.ordering_key, due.previous_status, d.attempt_field,
                      d.requeued_at_attempt
            """
    }

    /// Records attempts and moves rows on; the reports' CTEs ride along, so a log row
    /// is written in the same transaction as the attempt it describes.
    static func recordStatement(reports: Set<DeliveryReport.Kind>) -> String {
        let reportFragments = DeliveryReport.Kind.allCases.filter(reports.contains)
            .map { ",\n" + DeliveryReport.fragment(for: $0) }.joined()
        return """
            WITH result AS (
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::int[],
                                     $7::float8[], $8::text[])
                    AS r(id, status, http_status, error, delay_ms, attempt, started, body)),
            updated AS (
                UPDATE changerelay.deliveries d
                SET status = r.status, last_http_status = r.http_status, last_error = r.error,
                    next_attempt_at = now() + r.delay_ms * interval '1 millisecond', locked_until = NULL,
                    completed_at = CASE WHEN r.status IN ('succeeded', 'dead') THEN now() END, updated_at = now()
                FROM result r WHERE d.id = r.id AND d.attempt = r.attempt
                RETURNING r.*, d.report)\(reportFragments)
            INSERT INTO changerelay.delivery_attempts (delivery_id, attempt, started_at, http_status, error, response_body)
            SELECT id, attempt, to_timestamp(started), http_status, error, body FROM updated
            """
    }
}

/// A one-dimensional array literal (`{"a","b",NULL}`) for passing many values as one parameter.
func postgresArrayLiteral(_ values: [String?]) -> String {
    var text = "{"
    for (index, value) in values.enumerated() {
        if index > 0 { text += "," }
        guard let value else {
            text += "NULL"
            continue
        }
        text += "\""
        for character in value.unicodeScalars {
            if character == "\"" || character == "\\" { text += "\\" }
            text.unicodeScalars.append(character)
        }
        text += "\""
    }
    return text + "}"
}

public enum DispatcherError: Error, CustomStringConvertible {
    case setup(String)

    public var description: String {
        switch self {
        case .setup(let reason): "dispatcher cannot start: \(reason)"
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
