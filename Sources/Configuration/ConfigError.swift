/// A configuration problem, naming the key and where its value came from
/// (`file.toml line 3` or `environment CHANGERELAY_SOURCE_PLUGIN`).
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var key: String?
    public var origin: String
    public var reason: String

    public init(key: String?, origin: String, reason: String) {
        self.key = key
        self.origin = origin
        self.reason = reason
    }

    public var description: String {
        if let key { return "configuration error: key '\(key)' (\(origin)): \(reason)" }
        return "configuration error (\(origin)): \(reason)"
    }
}
