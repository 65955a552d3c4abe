import CoreMetrics
import Prometheus

/// swift-metrics' factory for the process, over swift-prometheus' registry, that gives every
/// metric its `# HELP` line: swift-metrics has no place for help text, and Prometheus tooling
/// (`promtool check metrics`, dashboards) expects one. The registry refuses two help texts
/// for one name, so the text comes from one catalogue, keyed by the metric's name.
struct DescribedMetricsFactory: MetricsFactory {
    private let registry: PrometheusCollectorRegistry
    private let prometheus: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry, durationBuckets: [Duration]) {
        self.registry = registry
        var prometheus = PrometheusMetricsFactory(registry: registry)
        prometheus.defaultDurationHistogramBuckets = durationBuckets
        self.prometheus = prometheus
    }

    /// What each metric recorded through swift-metrics means. A name missing here still
    /// exports, with its own name as its help.
    static let help: [String: String] = [
        "changerelay_transactions_total": "Source transactions whose effects are committed",
        "changerelay_changes_total": "Source changes whose effects are committed, by table and operation",
        "changerelay_deliveries_total":
            "Delivery tries recorded, by handler and outcome (succeeded, retried, dead, refused)",
        "changerelay_delivery_duration_seconds": "How long each sent delivery try took, by handler",
        "changerelay_commit_to_delivery_seconds":
            "From the planner's commit of a delivery to its 2xx answer, retries included, by handler",
        "changerelay_backfill_rows_total": "Backfilled rows whose effects are committed, by table",
        "changerelay_conversation_checks_skipped_total": "Conversation check changes skipped by a rule, by reason",
        "changerelay_dual_write_changes_total": "Changes the dual-write sync applied, or measured in shadow mode, by operation",
        "changerelay_dual_write_drift_total": "Dual-write drift found, by kind",
    ]

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: Self.help[label] ?? label)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions,
                                           buckets: prometheus.defaultValueHistogramBuckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions,
                                       buckets: prometheus.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }
}
