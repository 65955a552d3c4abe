/// A boolean as Postgres reads one from text: `t`, `true`, `y`, `yes`, `on`, `1` and their
/// opposites, in any case; nil for anything else. A column retyped from boolean to text
/// keeps `true`, which a comparison with the stream's `t` read as false.
public func postgresBoolean(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "t", "true", "y", "yes", "on", "1": true
    case "f", "false", "n", "no", "off", "0": false
    default: nil
    }
}
