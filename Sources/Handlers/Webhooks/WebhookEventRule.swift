import Decoding

/// Maps one kind of change to an event type: `public.chat_sessions` UPDATE with `status`
/// changed to `ended` → `chat.session.ended`.
public struct WebhookEventRule: Sendable, Hashable {
    public enum Operation: String, Sendable, Hashable, CaseIterable {
        case insert, update, delete
        /// A row a backfill read: it fires only rules that name `read`.
        case read
    }

    /// "`column` is `value`" (INSERT, READ; DELETE tests the old row), or for UPDATE
    /// "`column` changed to `value`": the new row has it, the old one did not.
    public struct Condition: Sendable, Hashable {
        public var column: String
        public var value: String

        public init(column: String, value: String) {
            self.column = column
            self.value = value
        }
    }

    /// `schema.table`.
    public var table: String
    public var operation: Operation
    public var condition: Condition?
    public var eventType: String

    public init(table: String, operation: Operation, condition: Condition? = nil, eventType: String) {
        self.table = table
        self.operation = operation
        self.condition = condition
        self.eventType = eventType
    }

    /// The seed's triggers, as DESIGN.md lists them.
    public static let builtIn: [WebhookEventRule] = {
        var rules: [WebhookEventRule] = [
            .init(table: "public.trip_collaborators", operation: .insert, eventType: "trip.collaborator.added"),
            .init(table: "public.trip_collaborators", operation: .update, eventType: "trip.collaborator.updated"),
            .init(table: "public.trip_collaborators", operation: .delete, eventType: "trip.collaborator.removed"),
            .init(table: "public.chat_messages", operation: .insert, eventType: "chat.message.created"),
            .init(table: "public.chat_messages", operation: .insert, condition: .init(column: "role", value: "user"),
                  eventType: "chat.message.process"),
            .init(table: "public.chat_sessions", operation: .insert, eventType: "chat.session.started"),
            .init(table: "public.chat_sessions", operation: .update, condition: .init(column: "status", value: "ended"),
                  eventType: "chat.session.ended"),
        ]
        for table in ["flights", "accommodations"] {
            for status in ["booked", "cancelled"] {
                rules.append(.init(table: "public." + table, operation: .update,
                                   condition: .init(column: "status", value: status),
                                   eventType: "booking.\(table).\(status)"))
            }
        }
        return rules
    }()

    /// Whether this rule fires for `change` (a `read` change only for `read` rules).
    /// `new` and `old` are the change's rows by column name (text values; NULL absent).
    func fires(for operation: Operation, new: [String: String]?, old: [String: String]?) -> Bool {
        guard operation == self.operation else { return false }
        guard let condition else { return true }
        switch operation {
        case .insert, .read:
            return new?[condition.column] == condition.value
        case .delete:
            return old?[condition.column] == condition.value
        case .update:
            return new?[condition.column] == condition.value && old?[condition.column] != condition.value
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
