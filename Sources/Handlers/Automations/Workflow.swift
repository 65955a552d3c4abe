import Core
import Decoding
import PlannedEffects

/// An `automation_workflows` row as the automation handler needs it: whether it can fire
/// at all, and for which statuses. A row that cannot fire because its configuration is
/// malformed carries the reason, so the log can say which workflow and why.
public struct Workflow: Sendable, Equatable {
    public var id: String
    public var userID: String?
    /// `trigger_type = 'job_status_changed'`, `is_active` and `status = 'active'`.
    public var isLive: Bool
    /// `trigger_config->'conditions'`, or why it is unusable.
    public var conditions: Result<JSONValue, Problem>

    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    public static let triggerType = "job_status_changed"

    /// From the row's text values (`is_active` as Postgres reads a boolean's text, so a column
    /// retyped to text still counts `true`; `trigger_config` as JSON text).
    public init(id: String, userID: String?, triggerType: String?, isActive: String?, status: String?,
                triggerConfig: String?) {
        self.id = id
        self.userID = userID
        isLive = triggerType == Self.triggerType && isActive.flatMap(postgresBoolean) == true && status == "active"
        conditions = Self.conditions(triggerConfig)
    }

    /// The shape the seed's containment query relies on: an object whose `conditions` is
    /// an array. Its elements are not checked one by one: `@>` matches the status element
    /// whatever its neighbours are, and so does ChangeRelay.
    private static func conditions(_ text: String?) -> Result<JSONValue, Problem> {
        guard let text else { return .failure(Problem(reason: "trigger_config is NULL")) }
        let config: JSONValue
        // Only `conditions` is read: a deep value elsewhere must not make the config unusable.
        do { config = try JSONParser.parse(text, deepValues: .emptied) } catch {
            return .failure(Problem(reason: "trigger_config is not valid JSON: \(error)"))
        }
        guard case .object = config else { return .failure(Problem(reason: "trigger_config is not a JSON object")) }
        guard let conditions = config["conditions"] else {
            return .failure(Problem(reason: "trigger_config has no \"conditions\""))
        }
        guard case .array = conditions else {
            return .failure(Problem(reason: "trigger_config.conditions is not an array"))
        }
        return .success(conditions)
    }

    /// A `trigger_config` that holds these conditions, for a log row that must rebuild them.
    public static func triggerConfig(conditions: JSONValue) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("conditions")
        writer.value(conditions)
        writer.endObject()
        return writer.string
    }

    /// Whether a job whose status became `status` fires this workflow: the seed's
    /// `trigger_config->'conditions' @> '[{"field": "status", "value": <status>}]'`.
    public func fires(forStatus status: String) -> Bool {
        guard isLive, case .success(let conditions) = conditions else { return false }
        return conditions.contains(.array([.object([("field", .string("status")), ("value", .string(status))])]))
    }
}
