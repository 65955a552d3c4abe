import Foundation
import Metrics
import Synchronization

/// The dispatcher's metrics, recorded once a try's outcome is committed (a try whose record
/// is lost is sent again and counted then):
/// - `changerelay_deliveries_total{handler,outcome}`: `succeeded`, `retried` (failed, due
///   again), `dead` (given up), or `refused` (the SSRF guard or signing refused it; never sent);
/// - `changerelay_delivery_duration_seconds{handler}`: how long each sent try took;
/// - `changerelay_commit_to_delivery_seconds{handler}`: from the planner's commit of the
///   delivery to its 2xx, retries included. Replication lag comes before that commit and is
///   `changerelay_replication_lag_bytes`' business.
final class DeliveryMetrics: Sendable {
    private struct Key: Hashable {
        var handler: String
        var outcome: String
    }

    private struct Timers {
        var duration: Metrics.Timer
        var commitToDelivery: Metrics.Timer
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Timers]>([:])
    private static let outcomes = ["succeeded", "retried", "dead", "refused"]

    /// Every series of `handlers` is made now, at zero.
    init(handlers: [String] = []) {
        for handler in handlers {
            for outcome in Self.outcomes { _ = counter(handler: handler, outcome: outcome) }
            _ = timers(of: handler)
        }
    }

    func recorded(_ attempt: AttemptRecord) {
        let handler = attempt.delivery.handler
        let outcome = switch attempt.decision {
        case .succeeded: "succeeded"
        case .retry: "retried"
        case .dead(.gaveUp(.refused)): "refused"
        case .dead: "dead"
        }
        counter(handler: handler, outcome: outcome).increment()
        guard outcome != "refused" else { return }
        let timers = timers(of: handler)
        timers.duration.record(seconds: attempt.ended.timeIntervalSince(attempt.started))
        if case .succeeded = attempt.decision, let created = attempt.delivery.createdAt {
            timers.commitToDelivery.record(seconds: attempt.ended.timeIntervalSince(created))
        }
    }
}

extension DeliveryMetrics {
    private func counter(handler: String, outcome: String) -> Counter {
        let key = Key(handler: handler, outcome: outcome)
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "changerelay_deliveries_total", dimensions: [("handler", handler), ("outcome", outcome)])
            counters[key] = counter
            return counter
        }
    }

    private func timers(of handler: String) -> Timers {
        timers.withLock { timers in
            if let found = timers[handler] { return found }
            let made = Timers(
                duration: Metrics.Timer(label: "changerelay_delivery_duration_seconds", dimensions: [("handler", handler)]),
                commitToDelivery: Metrics.Timer(label: "changerelay_commit_to_delivery_seconds", dimensions: [("handler", handler)]))
            timers[handler] = made
            return made
        }
    }
}

extension Metrics.Timer {
    /// Clock skew between the state database and this host can make a span read negative; it counts as zero.
    fileprivate func record(seconds: TimeInterval) {
        recordNanoseconds(Int64(max(0, seconds) * 1_000_000_000))
    }
}
