import RelayConfiguration
import Pipeline

/// Which configured handlers a replay runs, and why the others are left out.
///
/// A replay plans past changes long after they committed, with the handlers of today's
/// configuration. That is right for a handler whose effects depend on the change alone
/// (echo, conversation checks, the dual-write sync in log or apply mode) or on a
/// configuration replay can read as it is now (webhooks: today's endpoints, so an endpoint
/// added later gets the history). It is wrong for a handler whose planning depends on
/// state it has followed through the stream up to the live service's position:
///
/// - automations fire the workflows their cache holds, as of the live checkpoint (and
///   append workflow changes to `changerelay.automation_workflow_log`, the live service's
///   record of that position): past job changes would fire today's workflows, and past
///   workflow changes would be appended after newer ones;
/// - message buffering keeps time by commits: its open buffers and their windows are the
///   live service's, so past messages would reopen and flush windows that were flushed;
/// - the dual-write sync in shadow mode compares each change with the new schema as it is
///   when the change is handled: long after, every later change of a row shows as drift.
///
/// Named in `--handlers`, such a handler is refused with its reason; without `--handlers`
/// it is left out and the command says so.
public struct ReplayHandlerSelection: Sendable, Equatable {
    /// Every handler's name (`Handler.name`), in the order reports list them.
    public static let known = ["echo", "conversation_checks", "automations", "dual_write", "webhooks", "message_buffering"]

    public struct LeftOut: Sendable, Equatable {
        public var name: String
        public var reason: String

        public init(name: String, reason: String) {
            self.name = name
            self.reason = reason
        }
    }

    /// The handlers to run, in `known`'s order.
    public var names: [String]
    /// Handlers the configuration enables that replay does not run.
    public var leftOut: [LeftOut]
    /// The names came from `--handlers`: each must run, or the replay is refused.
    public var isNamed: Bool

    /// `--handlers echo,dual_write`: each name known, at least one.
    public static func parse(_ list: String) throws(ReplayError) -> [String] {
        let names = list.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw .noHandlerNamed }
        if let unknown = names.first(where: { !known.contains($0) }) { throw .unknownHandler(unknown, known: known) }
        return names
    }

    /// The handlers named (`requested`), or every one the configuration enables that replay
    /// can run. A named handler the configuration does not enable, or that replay refuses, is
    /// an error naming it.
    public static func decide(requested: [String]?, config: Config) throws(ReplayError) -> ReplayHandlerSelection {
        guard let requested else {
            let enabled = known.filter { isEnabled($0, in: config) }
            return ReplayHandlerSelection(
                names: enabled.filter { refusal(of: $0, config: config) == nil },
                leftOut: enabled.compactMap { name in refusal(of: name, config: config).map { LeftOut(name: name, reason: $0) } },
                isNamed: false)
        }
        for name in requested {
            if let reason = refusal(of: name, config: config) { throw .handlerRefused(name, reason: reason) }
            if !isEnabled(name, in: config) { throw .handlerNotConfigured(name, hint: hint(for: name)) }
        }
        return ReplayHandlerSelection(names: known.filter(requested.contains), leftOut: [], isNamed: true)
    }

    /// Why replay cannot run `name` as `config` sets it up, or nil when it can.
    public static func refusal(of name: String, config: Config) -> String? {
        switch name {
        case "automations":
            "it fires the workflows it has followed through the stream up to the live service's checkpoint: past job "
                + "changes would fire today's workflows, and past workflow changes would be appended to "
                + "changerelay.automation_workflow_log after newer ones"
        case "message_buffering":
            "it keeps time by commits, and its open buffers and their windows are the live service's: past messages "
                + "would reopen and flush windows that were flushed already"
        case "dual_write" where config.dualWrite.mode == .shadow:
            "in shadow mode it compares each change with the new schema as it is when the change is handled: long "
                + "after, every later change of a row would show as drift (replay with mode log or apply)"
        default:
            nil
        }
    }

    /// Whether the configuration switches `name` on. The assembly may still leave it off
    /// (a seed table missing, the state database not the source), with a warning.
    static func isEnabled(_ name: String, in config: Config) -> Bool {
        let functions = config.functions.baseURL != nil
        return switch name {
        case "echo": config.echo.url != nil
        case "conversation_checks": config.conversationChecks.enabled && functions
        case "automations": config.automations.enabled && functions
        case "dual_write": config.dualWrite.mode != .off
        case "webhooks": config.webhooks.enabled
        case "message_buffering": config.messageBuffer.enabled && functions
        default: false
        }
    }

    /// What to set so that the configuration enables `name`.
    static func hint(for name: String) -> String {
        switch name {
        case "echo": "handlers.echo.url is not set"
        case "conversation_checks": "conversation_checks.enabled is false or functions.base_url is not set"
        case "dual_write": "dual_write.mode is off: set the mode to replay with (log or apply)"
        case "webhooks": "webhooks.enabled is false"
        default: "it is off in the configuration"
        }
    }
}
