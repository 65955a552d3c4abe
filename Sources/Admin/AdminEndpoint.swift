/// Every route the admin server serves. The server registers exactly these, and the OpenAPI
/// document is tested against them, so the two cannot drift apart.
public enum AdminEndpoint: String, Sendable, CaseIterable {
    case dashboard, healthz, readyz, metrics, status, deliveries, retryDelivery, backfills, schedules, activity

    public var method: String {
        self == .retryDelivery ? "POST" : "GET"
    }

    /// In OpenAPI's template syntax (`{id}`).
    public var path: String {
        switch self {
        case .dashboard: "/"
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .metrics: "/metrics"
        case .status: "/api/status"
        case .deliveries: "/api/deliveries"
        case .retryDelivery: "/api/deliveries/{id}/retry"
        case .backfills: "/api/backfills"
        case .schedules: "/api/schedules"
        case .activity: "/api/activity"
        }
    }

    /// An orchestrator probes these without credentials, and a browser cannot send a bearer
    /// token when it opens a page: the dashboard is a static page with no figures in it, which
    /// sends the token on every API call it makes. Everything else needs the token when one is set.
    public var isOpen: Bool { self == .healthz || self == .readyz || self == .dashboard }
}
