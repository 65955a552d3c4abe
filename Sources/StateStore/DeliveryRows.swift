import Decoding
import Foundation
import PlannedEffects

/// How the batch committer writes planned deliveries into `changerelay.deliveries`: a COPY with
/// these columns, and one row's values in their order. The columns and the values stay
/// side by side here, since one without the other means nothing.
public struct DeliveryRows {
    public static let target = CopyTarget(
        table: TableName(schema: "changerelay", name: "deliveries"),
        columns: ["idempotency_key", "ordering_key", "former_ordering_key", "handler", "source_lsn", "target_url", "method", "headers",
                  "auth", "body", "retry_policy", "report", "attempt_field", "endpoint"])

    /// Handlers reuse a few policies and header sets: each is encoded once.
    private var encodedPolicies: [RetryPolicy: String] = [:]
    private var encodedHeaders: [[PlannedDelivery.Header]: String] = [:]

    public init() {}

    /// The row of `planned` in `target.columns`' order, as COPY text input (nil is NULL).
    /// Throws what encoding its retry policy throws.
    public mutating func values(of planned: PositionedDelivery) throws -> [String?] {
        let delivery = planned.delivery
        return [
            planned.idempotencyKey, delivery.orderingKey, delivery.formerOrderingKey, planned.handler, planned.position.commitLSN.description,
            delivery.url, delivery.method, encoded(delivery.headers), delivery.auth, delivery.body,
            try encoded(delivery.retryPolicy), delivery.report?.json, delivery.attemptField, delivery.endpoint,
        ]
    }

    private mutating func encoded(_ headers: [PlannedDelivery.Header]) -> String {
        if let known = encodedHeaders[headers] { return known }
        var writer = JSONWriter(capacity: 64)
        writer.beginObject()
        for header in headers {
            writer.key(header.name)
            writer.string(header.value)
        }
        writer.endObject()
        encodedHeaders[headers] = writer.string
        return writer.string
    }

    private mutating func encoded(_ policy: RetryPolicy) throws -> String {
        if let known = encodedPolicies[policy] { return known }
        let text = String(decoding: try JSONEncoder().encode(policy), as: UTF8.self)
        encodedPolicies[policy] = text
        return text
    }
}
