import Core
import Foundation
import Logging
import PlannedEffects
import Replication
import StateStore

/// What a webhook try needs beyond its planned row, decided by the dispatcher's loop (it
/// is not shared): the config's secret as it is when the delivery is claimed, read from
/// `webhook_configs` on the dispatcher's own connection so that it never sits in a
/// delivery row or the stream's memory, and the Standard Webhooks headers of this try,
/// signed over the exact body sent. The SSRF guard's verdict comes later, in the try's own
/// task (`WebhookTargetGuard`): it may wait on DNS, and this runs on the dispatcher's loop.
final class WebhookTries {
    private let logger: Logger
    private var signers: [String: Result<WebhookSigner, WebhookSecretError>] = [:]

    init(logger: Logger) {
        self.logger = logger
    }

    static func configID(of delivery: ClaimedDelivery) -> String? {
        WebhookDeliveryNames.configID(credential: delivery.auth)
    }

    /// Reads the configs `deliveries` (a claim's rows and those still queued) name, as they
    /// are now: their secrets, and which are inactive. A config deleted since is forgotten, so
    /// its rows are refused as such rather than signed with its old secret; the endpoints of
    /// inactive ones are returned, for their queued rows to be put back unsent (an operator
    /// turned the config off, or another dispatcher's try got 410).
    func prepare(_ deliveries: [ClaimedDelivery], on db: PostgresConnection) throws(PostgresError) -> Set<String> {
        let ids = Set(deliveries.compactMap(Self.configID))
        guard !ids.isEmpty else { return [] }
        let rows = try db.query("""
            SELECT id::text AS id, secret, is_active IS TRUE AS active FROM public.webhook_configs WHERE id::text = ANY($1::text[])
            """, [postgresArrayLiteral(ids.sorted())])
        var found = Set<String>()
        var inactive = Set<String>()
        for row in rows.rows {
            guard let id = row[0] else { continue }
            found.insert(id)
            if row[2] != "t" { inactive.insert(WebhookDeliveryNames.endpoint(configID: id)) }
            signers[id] = Result { () throws(WebhookSecretError) in try WebhookSigner(secret: row[1]) }
        }
        for gone in ids.subtracting(found) { signers[gone] = nil }
        return inactive
    }

    /// The headers of one try, or why it must not be sent.
    func headers(for delivery: ClaimedDelivery, configID: String, body: [UInt8], now: Date)
        -> Result<[(String, String)], TargetRefusal>
    {
        let signer: WebhookSigner
        switch signers[configID] {
        case .success(let known)?: signer = known
        case .failure(let problem)?:
            return .failure(TargetRefusal(reason: "webhook config \(configID): \(problem.reason)"))
        case nil:
            return .failure(TargetRefusal(reason: "webhook config \(configID) no longer exists"))
        }
        let own = signer.headers(id: delivery.idempotencyKey, timestamp: Int64(now.timeIntervalSince1970), body: body)
        let merged = WebhookHeaders.merge(custom: delivery.headers, into: own)
        for dropped in merged.dropped {
            logger.warning("webhook header left out", metadata: [
                "config": "\(configID)", "delivery": "\(delivery.id)", "header": "\(dropped)",
            ])
        }
        return .success(merged.headers)
    }
}

/// Why a try is not sent at all: the reason names what was refused and, for a guarded
/// address, the setting that would allow it. Never holds a secret. Only a name that did not
/// resolve is worth trying again; everything else would be refused again.
struct TargetRefusal: Error, Sendable, Equatable {
    var reason: String
    var isRetryable = false
}
