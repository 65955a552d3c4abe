import Core
import RelayConfiguration

/// The event rules as the webhook handler runs them: `WebhookRule` (Configuration) is the
/// one model, for the operator's rules from the file and for the seed's built-in ones here.
extension WebhookRule {
    /// The seed's triggers, as DESIGN.md lists them.
    public static let builtIn: [WebhookRule] = {
        func rule(_ table: String, _ operation: Operation, when condition: Condition? = nil, _ eventType: String) -> WebhookRule {
            WebhookRule(schema: "public", table: table, operation: operation, condition: condition, eventType: eventType)
        }
        var rules: [WebhookRule] = [
            rule("trip_collaborators", .insert, "trip.collaborator.added"),
            rule("trip_collaborators", .update, "trip.collaborator.updated"),
            rule("trip_collaborators", .delete, "trip.collaborator.removed"),
            rule("chat_messages", .insert, "chat.message.created"),
            rule("chat_messages", .insert, when: .init(column: "role", value: "user"), "chat.message.process"),
            rule("chat_sessions", .insert, "chat.session.started"),
            rule("chat_sessions", .update, when: .init(column: "status", value: "ended"), "chat.session.ended"),
        ]
        for table in ["flights", "accommodations"] {
            for status in ["booked", "cancelled"] {
                rules.append(rule(table, .update, when: .init(column: "status", value: status), "booking.\(table).\(status)"))
            }
        }
        return rules
    }()

    /// `schema.table`, as changes name their table.
    var qualifiedTable: String { schema + "." + table }

    /// Whether this rule fires for a change (a `read` change only for `read` rules). `new`
    /// and `old` are the change's rows by column name (text values; NULL absent). For UPDATE
    /// a condition means "changed to": the new row has the value and the old one did not.
    ///
    /// On a boolean column (`isBoolean`, asked only for a condition's column) the value is
    /// compared as a boolean: `paid=true`, as the event's body shows the value, matches what
    /// the stream carries as `t`.
    func fires(for operation: Operation, new: [String: String]?, old: [String: String]?,
               isBoolean: (String) -> Bool = { _ in false }) -> Bool {
        guard operation == self.operation else { return false }
        guard let condition else { return true }
        let boolean = isBoolean(condition.column)
        func holds(_ row: [String: String]?) -> Bool {
            guard let text = row?[condition.column] else { return false }
            guard boolean else { return text == condition.value }
            return postgresBoolean(text).map { $0 == postgresBoolean(condition.value) } ?? false
        }
        switch operation {
        case .insert, .read:
            return holds(new)
        case .delete:
            return holds(old)
        case .update:
            return holds(new) && !holds(old)
        }
    }
}

/// A `webhook_configs.events` entry: an event type, `*` standing for one dot-separated
/// segment (`booking.*.cancelled`), or a lone `*` for every event.
public struct WebhookEventPattern: Sendable, Hashable {
    private let segments: [Substring]
    private let matchesEverything: Bool

    public init(_ text: String) {
        matchesEverything = text == "*"
        segments = text.split(separator: ".", omittingEmptySubsequences: false)
    }

    public func matches(_ eventType: String) -> Bool {
        if matchesEverything { return true }
        let parts = eventType.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == segments.count else { return false }
        return zip(segments, parts).allSatisfy { $0 == "*" || $0 == $1 }
    }
}
