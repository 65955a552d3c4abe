/// How a webhook delivery row names its config. The planner writes these names and the
/// dispatcher reads them back, so both take them from here: a delivery carries its config's
/// id, never its secret, and the dispatcher signs each try with the secret as it is then.
public enum WebhookDeliveryNames {
    /// What comes before a config's id in both names (log-row SQL strips it from `endpoint`).
    public static let prefix = "webhook:"

    /// `auth`: the config whose secret signs each try.
    public static func credential(configID: String) -> String { prefix + configID }

    /// `endpoint`: a config's deliveries share its in-flight limit, and pause together while
    /// it is inactive.
    public static func endpoint(configID: String) -> String { prefix + configID }

    /// The config an `auth` names, or nil for another handler's delivery.
    public static func configID(credential: String?) -> String? {
        guard let credential, credential.hasPrefix(prefix) else { return nil }
        return String(credential.dropFirst(prefix.count))
    }
}
