import Synchronization

/// The `webhook_configs` rows the handler plans with: read at start, then kept current by
/// the stream (the table is published), so a config inserted, changed or deactivated
/// counts for exactly the changes committed after it. What an uncommitted batch taught is
/// undone when the batch is read again.
///
/// Planning is sequential; the lock only makes the shared reference safe to hold.
public final class WebhookConfigCache: Sendable {
    private struct State {
        /// Every known row by id: usable, or why not (kept so a fix replaces it).
        var configs: [String: Result<WebhookConfig, WebhookConfig.Unusable>] = [:] {
            didSet { subscribers.removeAll() }
        }
        var undo: [Undo] = []
        /// `subscribers(of:)` by event type, until the configs change: every change an event
        /// rule fires for asks, and the configs change rarely.
        var subscribers: [String: [WebhookConfig]] = [:]
    }

    private enum Undo {
        case config(id: String, previous: Result<WebhookConfig, WebhookConfig.Unusable>?)
        case everything([String: Result<WebhookConfig, WebhookConfig.Unusable>])
    }

    private let state = Mutex(State())

    public init() {}

    public func set(_ id: String, to config: Result<WebhookConfig, WebhookConfig.Unusable>?) {
        state.withLock { state in
            state.undo.append(.config(id: id, previous: state.configs[id]))
            state.configs[id] = config
        }
    }

    /// `TRUNCATE webhook_configs`.
    public func removeEverything() {
        state.withLock { state in
            state.undo.append(.everything(state.configs))
            state.configs = [:]
        }
    }

    public func config(id: String) -> Result<WebhookConfig, WebhookConfig.Unusable>? {
        state.withLock { $0.configs[id] }
    }

    /// The active, usable configs that want `eventType`, in id order so that planning is the
    /// same on every replay.
    public func subscribers(of eventType: String) -> [WebhookConfig] {
        state.withLock { state in
            if let known = state.subscribers[eventType] { return known }
            let found = state.configs.keys.sorted().compactMap { id -> WebhookConfig? in
                guard case .success(let config)? = state.configs[id], config.isActive, config.wants(eventType) else {
                    return nil
                }
                return config
            }
            state.subscribers[eventType] = found
            return found
        }
    }

    /// Why each active row that cannot fire cannot, in id order.
    public func unusableActiveConfigs() -> [WebhookConfig.Unusable] {
        state.withLock { state in
            state.configs.keys.sorted().compactMap { id in
                guard case .failure(let problem)? = state.configs[id], problem.isActive else { return nil }
                return problem
            }
        }
    }

    /// Keeps what the batch taught (it was committed), or forgets it (it is read again).
    public func batchEnded(committed: Bool) {
        state.withLock { state in
            defer { state.undo.removeAll() }
            guard !committed else { return }
            for entry in state.undo.reversed() {
                switch entry {
                case .config(let id, let previous): state.configs[id] = previous
                case .everything(let configs): state.configs = configs
                }
            }
        }
    }
}
