import Core
import Synchronization

/// The `webhook_configs` rows the handler plans with: read at start, then kept current by
/// the stream (the table is published), so a config inserted, changed or deactivated
/// counts for exactly the changes committed after it. What an uncommitted batch taught is
/// undone when the batch is read again.
///
/// Planning is sequential; the lock only makes the shared reference safe to hold.
public final class WebhookConfigCache: Sendable {
    /// One row as last seen: its columns' texts (`WebhookConfig.columns`; never the secret)
    /// and what they parse to. The texts are kept for a row that cannot fire as well: an
    /// UPDATE that fixes its `url` and leaves a large `events` in TOAST brings only the url,
    /// and the fixed row is the known `events` with the new url.
    private struct Entry {
        var fields: [String: String]
        var config: Result<WebhookConfig, WebhookConfig.Unusable>
    }

    private struct State {
        /// Every known row by id, usable or not (kept so a fix replaces it).
        var entries: [String: Entry] = [:] {
            didSet { subscribers.removeAll() }
        }
        var undo: [Undo] = []
        /// `subscribers(of:)` by event type, until the configs change: every change an event
        /// rule fires for asks, and the configs change rarely.
        var subscribers: [String: [WebhookConfig]] = [:]
    }

    private enum Undo {
        case entry(id: String, previous: Entry?)
        case everything([String: Entry])
    }

    private let state = Mutex(State())

    public init() {}

    /// Records row `id` as `fields` (text values by column name; NULL absent) and returns
    /// what it parses to. Columns named in `unchanged`, TOASTed values an UPDATE left alone
    /// (the stream does not carry them), keep their last known texts; one never known makes
    /// the row unusable, saying so, rather than read as NULL.
    /// `formerID` is the id an UPDATE changed: its texts are the known ones.
    @discardableResult
    public func record(_ id: String, fields: [String: String], unchanged: Set<String> = [], formerID: String? = nil)
        -> Result<WebhookConfig, WebhookConfig.Unusable>
    {
        state.withLock { state in
            var merged = fields.filter { WebhookConfig.columns.contains($0.key) }
            merged["id"] = id
            let previous = state.entries[formerID ?? id]?.fields
            var unknown: [String] = []
            for column in unchanged.sorted() where WebhookConfig.columns.contains(column) {
                if let text = previous?[column] { merged[column] = text } else { unknown.append(column) }
            }
            let config: Result<WebhookConfig, WebhookConfig.Unusable> = if unknown.isEmpty {
                WebhookConfig.parse(merged)
            } else {
                .failure(WebhookConfig.Unusable(
                    id: id, reason: "\(unknown.joined(separator: ", ")) left unchanged in TOAST by an update and not known; "
                        + "give it a new value (an UPDATE setting it to itself leaves it in TOAST)",
                    isActive: merged["is_active"].flatMap(postgresBoolean) == true))
            }
            state.undo.append(.entry(id: id, previous: state.entries[id]))
            state.entries[id] = Entry(fields: merged, config: config)
            return config
        }
    }

    /// The row was deleted (or its id changed).
    public func remove(_ id: String) {
        state.withLock { state in
            state.undo.append(.entry(id: id, previous: state.entries[id]))
            state.entries[id] = nil
        }
    }

    /// `TRUNCATE webhook_configs`.
    public func removeEverything() {
        state.withLock { state in
            state.undo.append(.everything(state.entries))
            state.entries = [:]
        }
    }

    public func config(id: String) -> Result<WebhookConfig, WebhookConfig.Unusable>? {
        state.withLock { $0.entries[id]?.config }
    }

    /// The texts row `id` was last recorded with, the columns an UPDATE left in TOAST filled.
    public func fields(id: String) -> [String: String]? {
        state.withLock { $0.entries[id]?.fields }
    }

    /// The active, usable configs that want `eventType`, in id order so that planning is the
    /// same on every replay.
    public func subscribers(of eventType: String) -> [WebhookConfig] {
        state.withLock { state in
            if let known = state.subscribers[eventType] { return known }
            let found = state.entries.keys.sorted().compactMap { id -> WebhookConfig? in
                guard case .success(let config)? = state.entries[id]?.config, config.isActive, config.wants(eventType) else {
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
            state.entries.keys.sorted().compactMap { id in
                guard case .failure(let problem)? = state.entries[id]?.config, problem.isActive else { return nil }
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
                case .entry(let id, let previous): state.entries[id] = previous
                case .everything(let entries): state.entries = entries
                }
            }
        }
    }
}
