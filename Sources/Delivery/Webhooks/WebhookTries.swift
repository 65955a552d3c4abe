import Core
import Foundation
import Handlers
import Logging
import PlannedEffects
import Replication
import StateStore

/// What a webhook try needs beyond its planned row, decided by the dispatcher's loop (it
/// is not shared): the config as it is when the delivery is claimed, read from
/// `webhook_configs` on the dispatcher's own connection, and the Standard Webhooks headers
/// of this try, signed over the exact body sent. The secret never sits in a delivery row or
/// the stream's memory. The SSRF guard's verdict comes later, in the try's own task
/// (`WebhookTargetGuard`): it may wait on DNS, and this runs on the dispatcher's loop.
///
/// A delivery goes to the config's URL, with its headers and retry policy, as they are when
/// it is sent, not as they were when it was planned: an operator who pauses a config, fixes
/// its URL and turns it on again expects its waiting deliveries at the new address. The row's
/// `target_url` follows, so that a 410 turns the config off only when it came from the URL
/// the config still has (`DeliveryLog.webhookLog`). A config whose URL, headers or retry
/// policy cannot be read now (made malformed since) holds its deliveries back, as an inactive
/// one does, until it is fixed: nothing is dropped, and nothing is sent half as planned and
/// half as it is now.
final class WebhookTries {
    private struct Current {
        var signer: Result<WebhookSigner, WebhookSecretError>
        var config: WebhookConfig
        /// The row's columns this was made from: an unchanged row is not parsed and its
        /// secret not decoded again at every claim.
        var row: [String?]
    }

    private let logger: Logger
    private var configs: [String: Current] = [:]
    /// The URL each claimed row's `target_url` was last moved to, where that is not the URL it
    /// was claimed with; only rows still claimed are kept.
    private var targets: [Int64: String] = [:]
    /// The headers each config was told it cannot set: said once, not at every try.
    private var reportedDrops: [String: Set<String>] = [:]
    /// The configs that cannot be sent to, and the row each was read from. Their endpoints are
    /// left out of claims while the row stays as it is (`heldBack`): claimed, their rows
    /// would only be put back, at once and at every claim.
    private var unusable: [String: (reason: String, row: [String?])] = [:]

    init(logger: Logger) {
        self.logger = logger
    }

    static func configID(of delivery: ClaimedDelivery) -> String? {
        WebhookDeliveryNames.configID(credential: delivery.auth)
    }

    /// Reads the configs `deliveries` (a claim's rows and those still queued) name, as they
    /// are now, and points the rows of a config whose URL changed at its new one. A config
    /// deleted since is forgotten, so its rows are refused as such rather than signed with
    /// its old secret; the endpoints of inactive ones are returned, for their queued rows to
    /// be put back unsent (an operator turned the config off, or another dispatcher's try got 410).
    func prepare(_ deliveries: [ClaimedDelivery], on db: PostgresConnection) throws(PostgresError) -> Set<String> {
        let ids = Set(deliveries.compactMap(Self.configID))
        guard !ids.isEmpty else { return [] }
        let rows = try Self.read(ids, on: db)
        var inactive = Set<String>()
        for (id, columns) in rows {
            let endpoint = WebhookDeliveryNames.endpoint(configID: id)
            if columns[1] != "t" { inactive.insert(endpoint) }
            if configs[id]?.row == columns { continue }
            let row = [id] + columns
            // What sending needs; `events` only decides what is planned.
            let fields = ["id": id, "is_active": "t", "url": row[3], "events": "{}", "headers": row[4],
                          "retry_config": row[5]].compactMapValues { $0 }
            switch WebhookConfig.parse(fields) {
            case .success(let config):
                configs[id] = Current(signer: Result { () throws(WebhookSecretError) in try WebhookSigner(secret: row[1]) },
                                      config: config, row: columns)
                unusable[id] = nil
            case .failure(let problem):
                configs[id] = nil
                inactive.insert(endpoint)
                if unusable.updateValue((problem.reason, columns), forKey: id)?.reason != problem.reason {
                    logger.warning("webhook config cannot be sent to; its deliveries wait until it is fixed",
                                   metadata: ["config": "\(id)", "reason": "\(problem.reason)"])
                }
            }
        }
        for gone in ids.subtracting(rows.keys) {
            configs[gone] = nil
            unusable[gone] = nil
        }
        let claimed = Set(deliveries.map(\.id))
        targets = targets.filter { claimed.contains($0.key) }
        let moved = deliveries.compactMap { delivery -> (id: Int64, url: String)? in
            guard let url = Self.configID(of: delivery).flatMap({ configs[$0]?.config.url }),
                  url != targets[delivery.id] ?? delivery.url else { return nil }
            return (delivery.id, url)
        }
        if !moved.isEmpty {
            try DeliveryQueue.retarget(moved, on: db)
            for row in moved { targets[row.id] = row.url }
        }
        return inactive
    }

    /// The endpoints of the configs that cannot be sent to and whose rows are as they were
    /// when found so: the next claim leaves them out, and their deliveries wait where they are,
    /// unclaimed. A config changed since (fixed, or changed and still unreadable, which is
    /// said again) or deleted is let go, so the claim that follows takes its rows and
    /// `prepare` reads it again.
    func heldBack(on db: PostgresConnection) throws(PostgresError) -> Set<String> {
        guard !unusable.isEmpty else { return [] }
        let rows = try Self.read(Set(unusable.keys), on: db)
        var held = Set<String>()
        for (id, known) in unusable {
            if rows[id] == known.row {
                held.insert(WebhookDeliveryNames.endpoint(configID: id))
            } else {
                unusable[id] = nil
            }
        }
        return held
    }

    /// The columns sending needs of the configs `ids` that exist (secret, whether active, URL,
    /// headers, retry policy), by id. Prepared: it runs at every claim, and planning it again
    /// each time cost more than reading the few rows. Every column is text, so that a column's
    /// type changed by an operator replans the statement instead of failing it.
    private static func read(_ ids: Set<String>, on db: PostgresConnection) throws(PostgresError) -> [String: [String?]] {
        let rows = try db.query(prepared: "changerelay_webhook_configs", """
            SELECT id::text AS id, secret::text AS secret, is_active IS TRUE AS active, url::text AS url,
                   headers::text AS headers, retry_config::text AS retry_config
            FROM public.webhook_configs WHERE id::text = ANY($1::text[])
            """, [postgresArrayLiteral(ids.sorted())])
        var found: [String: [String?]] = [:]
        for row in rows.rows {
            if let id = row[0] { found[id] = Array(row[1...5]) }
        }
        return found
    }

    /// Whether a config is active now (nil: it no longer exists): after a 410, whether the
    /// record turned it off.
    static func isActive(configID: String, on db: PostgresConnection) throws(PostgresError) -> Bool? {
        try db.query("SELECT is_active IS TRUE AS active FROM public.webhook_configs WHERE id::text = $1",
                     [configID]).value("active").map { $0 == "t" }
    }

    /// `delivery` as it is to be sent now, with the headers of this try, or why it must not
    /// be sent.
    func prepared(_ delivery: ClaimedDelivery, configID: String, body: [UInt8], now: Date)
        -> Result<(delivery: ClaimedDelivery, headers: [(String, String)]), TargetRefusal>
    {
        guard let current = configs[configID] else {
            return .failure(TargetRefusal(reason: "webhook config \(configID) no longer exists"))
        }
        let signer: WebhookSigner
        switch current.signer {
        case .success(let known): signer = known
        case .failure(let problem): return .failure(TargetRefusal(reason: "webhook config \(configID): \(problem.reason)"))
        }
        var delivery = delivery
        delivery.url = current.config.url
        delivery.headers = current.config.headers.map { ($0.name, $0.value) }
        delivery.policy = current.config.retryPolicy
        let own = signer.headers(id: delivery.idempotencyKey, timestamp: Int64(now.timeIntervalSince1970), body: body)
        let merged = WebhookHeaders.merge(custom: delivery.headers, into: own)
        for dropped in merged.dropped where reportedDrops[configID, default: []].insert(dropped.description).inserted {
            logger.warning("webhook header left out of every try", metadata: [
                "config": "\(configID)", "header": "\(dropped)",
            ])
        }
        return .success((delivery, merged.headers))
    }
}

/// Why a try is not sent at all: the reason names what was refused and, for a guarded
/// address, the setting that would allow it. Never holds a secret. Only a name that did not
/// resolve is worth trying again; everything else would be refused again.
struct TargetRefusal: Error, Sendable, Equatable {
    var reason: String
    var isRetryable = false
}
