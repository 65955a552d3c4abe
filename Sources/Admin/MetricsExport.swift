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
        MetricsSystem.bootstrap(DescribedMetricsFactory(registry: registry, durationBuckets: durationBuckets))
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

    /// Loopback receivers answer in about a millisecond and retries wait minutes: the
    /// library's default buckets (5 ms to 10 s) would put both off the scale.
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
    ]

    /// The Prometheus text format.
    func emit() -> [UInt8] { registry.emitToBuffer() }
}

/// The gauges set when `/metrics` is scraped, from one query on each database: reading them
/// then costs the pipeline nothing between scrapes.
final class ScrapedGauges: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let checkpoint: Prometheus.Gauge
    private let lag: Prometheus.Gauge
    private let buffers: Prometheus.Gauge
    private let slotActive: Prometheus.Gauge
    /// The configured handlers and every other seen with a backlog: one with none pending
    /// reads 0, not its last value.
    private let pendingHandlers: Mutex<Set<String>>
    /// Every table a backfill was seen running for: one whose backfill ended reads 0.
    private let backfillTables = Mutex(Set<String>())

    static let checkpointName = "changerelay_checkpoint_lsn"
    static let lagName = "changerelay_replication_lag_bytes"
    static let pendingName = "changerelay_deliveries_pending"
    static let buffersName = "changerelay_buffers_open"
    static let slotActiveName = "changerelay_slot_active"
    static let backfillsRunningName = "changerelay_backfills_running"
    static let backfillsRunningHelp = "Backfills running, by table"
    static let pendingHelp = "Deliveries not finished (pending, sending, or failed and due again), by handler"

    /// The whole name is the metric's: no namespace or unit to join.
    static func described(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
    /// What counts as pending: not finished, whether or not tried yet.
    static let pendingStatuses: Set<String> = ["pending", "sending", "failed"]

    init(_ export: MetricsExport, handlers: [String]) {
        registry = export.registry
        pendingHandlers = Mutex(Set(handlers))
        checkpoint = registry.makeGauge(descriptor: Self.described(
            Self.checkpointName, "The slot's checkpoint: the end LSN of the last transaction whose effects are committed"))
        // Unknown until the state database has answered once: 0 would read as a position, beside a lag of NaN.
        checkpoint.set(.nan)
        lag = registry.makeGauge(descriptor: Self.described(
            Self.lagName, "The source server's WAL end (pg_current_wal_lsn) minus the furthest of the checkpoint and the slot's confirmed position"))
        buffers = registry.makeGauge(descriptor: Self.described(
            Self.buffersName, "Message buffers open (collecting messages) as of the checkpoint"))
        slotActive = registry.makeGauge(descriptor: Self.described(
            Self.slotActiveName, "1 while this instance holds the slot and streams it, 0 while it stands by"))
    }

    /// Whether this instance streams the slot: every instance exports the checkpoint it reads
    /// from the state database, so only this tells an alert that nobody holds the slot.
    func update(streaming: Bool) {
        slotActive.set(streaming ? 1.0 : 0.0)
    }

    func update(backfillsRunning running: [String: Int]) {
        let tables = backfillTables.withLock { seen in
            seen.formUnion(running.keys)
            return seen
        }
        for table in tables {
            registry.makeGauge(descriptor: Self.described(Self.backfillsRunningName, Self.backfillsRunningHelp),
                               labels: [("table", table)]).set(Double(running[table, default: 0]))
        }
    }

    /// nil: the source could not be read, so the lag is unknown (NaN), not its last value.
    /// The conversion is spelled out: `map(Double.init)` on a `UInt64` picks
    /// `Double(bitPattern:)`, which exported 12 MB of lag as 5.9e-317.
    func update(lagBytes: UInt64?) {
        lag.set(lagBytes.map { Double($0) } ?? .nan)
    }

    func update(checkpoint position: UInt64, counts: [AdminReports.DeliveryCount], buffersOpen: Int) {
        checkpoint.set(Double(position))
        buffers.set(Double(buffersOpen))
        var pending: [String: Int] = [:]
        for count in counts where Self.pendingStatuses.contains(count.status) { pending[count.handler, default: 0] += count.count }
        let handlers = pendingHandlers.withLock { seen in
            seen.formUnion(counts.map(\.handler))
            return seen
        }
        for handler in handlers {
            registry.makeGauge(descriptor: Self.described(Self.pendingName, Self.pendingHelp), labels: [("handler", handler)])
                .set(Double(pending[handler, default: 0]))
        }
    }
}
