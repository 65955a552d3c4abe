import Decoding
import Foundation
import PlannedEffects

/// A delivery a dispatcher claimed: what it needs to send it, and what it needs to record
/// the try or put the claim back.
public struct ClaimedDelivery: Sendable {
    public var id: Int64
    public var idempotencyKey: String
    public var url: String
    public var method: String
    public var headers: [(String, String)]
    /// Names the credential added at send time (`service_key`); the secret is never stored.
    public var auth: String?
    public var body: String
    /// A body field set to the attempt number at send time.
    public var attemptField: String?
    public var policy: RetryPolicy
    /// This try's number: the claim counted it.
    public var attempt: Int
    /// The attempt count when `deliveries retry` last re-queued it (0: never). Attempt
    /// numbers run on across a re-queue; the policy counts only the tries after it.
    public var requeuedAtAttempt: Int
    public var orderingKey: String?
    /// The receiver it shares an in-flight limit with (a webhook config), if any.
    public var endpoint: String?
    /// What the row was before the claim, to put it back if it is released unsent.
    public var previousStatus: DeliveryStatus
    /// The handler that planned it: the label of the dispatcher's outcome counter.
    public var handler: String
    /// When the planner committed it: where `changerelay_commit_to_delivery_seconds` starts.
    public var createdAt: Date?

    public init(id: Int64, idempotencyKey: String, url: String, method: String, headers: [(String, String)],
                auth: String?, body: String, attemptField: String?, policy: RetryPolicy, attempt: Int,
                requeuedAtAttempt: Int, orderingKey: String?, endpoint: String? = nil, previousStatus: DeliveryStatus,
                handler: String = "", createdAt: Date? = nil) {
        self.id = id
        self.idempotencyKey = idempotencyKey
        self.url = url
        self.method = method
        self.headers = headers
        self.auth = auth
        self.body = body
        self.attemptField = attemptField
        self.policy = policy
        self.attempt = attempt
        self.requeuedAtAttempt = requeuedAtAttempt
        self.orderingKey = orderingKey
        self.endpoint = endpoint
        self.previousStatus = previousStatus
        self.handler = handler
        self.createdAt = createdAt
    }

    /// The try as the retry policy counts it: from 1 again after a re-queue, so the
    /// re-queued delivery gets the policy's whole allowance and schedule.
    public var policyAttempt: Int { attempt - requeuedAtAttempt }
}

extension ClaimedDelivery {
    /// What reading one row of the claim statement gave.
    struct Decoded {
        var delivery: ClaimedDelivery
        /// Why the stored retry policy could not be read, if it could not: the delivery
        /// then gets a single attempt rather than none or endless ones.
        var unreadablePolicy: (any Error)?
    }

    /// The policy a delivery whose stored one cannot be read is sent with.
    static let fallbackPolicy = RetryPolicy.fixed(delay: .zero, maxAttempts: 1)

    /// What the claim statement returns of each row it claimed, in the order `decode` reads.
    static let claimedColumns = [
        "d.id", "d.idempotency_key", "d.target_url", "d.method", "d.headers::text", "d.auth", "d.body",
        "d.retry_policy::text", "d.attempt", "d.ordering_key", "due.previous_status", "d.attempt_field",
        "d.requeued_at_attempt", "d.endpoint", "d.handler", "extract(epoch FROM d.created_at)",
    ]

    /// Reads a row of `claimedColumns`. nil when a column the table declares NOT NULL is
    /// missing or unreadable, which its constraints rule out.
    ///
    /// `policies` keeps the policies read so far by their stored text: a claim's rows share
    /// a few (one per handler or webhook config), and decoding each row's anew with
    /// Foundation's JSONDecoder was a twentieth of the dispatcher's CPU in the fan-out
    /// benchmark.
    static func decode(claimedRow row: [String?], policies: inout [String: Result<RetryPolicy, any Error>]) -> Decoded? {
        guard row.count == claimedColumns.count, let id = row[0].flatMap({ Int64($0) }), let key = row[1], let url = row[2],
              let method = row[3], let body = row[6], let policyText = row[7], let attempt = row[8].flatMap({ Int($0) }),
              let previousStatus = row[10].flatMap(DeliveryStatus.init(rawValue:)),
              let requeuedAtAttempt = row[12].flatMap({ Int($0) }) else { return nil }
        let read: Result<RetryPolicy, any Error>
        if let known = policies[policyText] {
            read = known
        } else {
            read = Result { try JSONDecoder().decode(RetryPolicy.self, from: Data(policyText.utf8)) }
            policies[policyText] = read
        }
        var policy = fallbackPolicy
        var unreadablePolicy: (any Error)?
        switch read {
        case .success(let stored): policy = stored
        case .failure(let error): unreadablePolicy = error
        }
        let delivery = ClaimedDelivery(
            id: id, idempotencyKey: key, url: url, method: method, headers: headers(row[4]), auth: row[5], body: body,
            attemptField: row[11], policy: policy, attempt: attempt, requeuedAtAttempt: requeuedAtAttempt,
            orderingKey: row[9], endpoint: row[13], previousStatus: previousStatus, handler: row[14] ?? "",
            createdAt: row[15].flatMap { Double($0) }.map { Date(timeIntervalSince1970: $0) })
        return Decoded(delivery: delivery, unreadablePolicy: unreadablePolicy)
    }

    /// The string members of a delivery's `headers` JSON object (a repeated name once, with
    /// its last value, as jsonb keeps it); anything else is left out.
    static func headers(_ json: String?) -> [(String, String)] {
        guard let json, let members = (try? JSONParser.parse(json, deepValues: .emptied))?.distinctMembers else { return [] }
        return members.compactMap { member in
            guard case .string(let value) = member.value else { return nil }
            return (member.key, value)
        }
    }
}
