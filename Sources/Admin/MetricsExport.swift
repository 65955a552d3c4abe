import Metrics
import Prometheus
import Synchronization

/// The Prometheus registry `/metrics` emits. `process` bootstraps swift-metrics with it, so
/// every `Counter(label:)` made afterwards (the handlers', the committer's, the
/// dispatcher's) lands in it; swift-metrics allows one bootstrap per process, hence a
/// static that runs once.
public struct MetricsExport: Sendable {
    let registry: PrometheusCollectorRegistry

    public static let process: MetricsExport = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return MetricsExport(registry: registry)
    }()

    /// A registry of its own that swift-metrics does not report into: a service built by a
    /// test still exports the admin server's own gauges.
    public init() {
        registry = PrometheusCollectorRegistry()
    }

    private init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// The Prometheus text format.
    func emit() -> [UInt8] { registry.emitToBuffer() }
}

/// The gauges set when `/metrics` is scraped, from one query on each database: reading them
/// then costs the pipeline nothing between scrapes.
final class ScrapedGauges: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let checkpoint: Prometheus.Gauge
    private let lag: Prometheus.Gauge
    /// Every handler with deliveries seen so far: one with none pending reads 0, not its last value.
    private let pendingHandlers = Mutex<Set<String>>([])

    static let checkpointName = "changerelay_checkpoint_lsn"
    static let lagName = "changerelay_replication_lag_bytes"
    static let pendingName = "changerelay_deliveries_pending"
    /// What counts as pending: not finished, whether or not tried yet.
    static let pendingStatuses: Set<String> = ["pending", "sending", "failed"]

    init(_ export: MetricsExport) {
        registry = export.registry
        checkpoint = registry.makeGauge(name: Self.checkpointName,
                                        help: "The slot's checkpoint: the end LSN of the last transaction whose effects are committed")
        lag = registry.makeGauge(name: Self.lagName, help: "The source server's WAL end (pg_current_wal_lsn) minus the checkpoint")
    }

    func update(checkpoint position: UInt64, walEnd: UInt64?, counts: [AdminReports.DeliveryCount]) {
        checkpoint.set(Double(position))
        if let walEnd { lag.set(Double(walEnd > position ? walEnd - position : 0)) }
        var pending: [String: Int] = [:]
        for count in counts where Self.pendingStatuses.contains(count.status) { pending[count.handler, default: 0] += count.count }
        let handlers = pendingHandlers.withLock { seen in
            seen.formUnion(counts.map(\.handler))
            return seen
        }
        for handler in handlers {
            registry.makeGauge(name: Self.pendingName, labels: [("handler", handler)],
                               help: "Deliveries not finished (pending, sending, or failed and due again), by handler")
                .set(Double(pending[handler, default: 0]))
        }
    }
}
