import Metrics
import Synchronization

/// `changerelay_deliveries_total{handler,outcome}`, counted when a try's outcome is recorded:
/// `succeeded`, `retried` (failed, due again), `dead` (given up), or `refused` (the SSRF guard
/// or signing refused it; never sent).
final class DeliveryMetrics: Sendable {
    private struct Key: Hashable {
        var handler: String
        var outcome: String
    }

    private let counters = Mutex<[Key: Counter]>([:])

    func recorded(_ decision: RetryDecision, handler: String) {
        let outcome = switch decision {
        case .succeeded: "succeeded"
        case .retry: "retried"
        case .dead(.gaveUp(.refused)): "refused"
        case .dead: "dead"
        }
        let key = Key(handler: handler, outcome: outcome)
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "changerelay_deliveries_total", dimensions: [("handler", handler), ("outcome", outcome)])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}
