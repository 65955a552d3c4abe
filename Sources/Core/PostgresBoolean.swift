/// A boolean as Postgres reads one from text (`parse_bool`): `true`, `yes`, `on`, `1` and
/// their opposites, any case, any unique prefix (`t`, `tr`, `n`, `of`), white space around
/// it ignored; nil for anything else. A column retyped from boolean to text keeps `true`,
/// which a comparison with the stream's `t` read as false.
public func postgresBoolean(_ text: String) -> Bool? {
    var scalars = Substring(text).unicodeScalars
    while let first = scalars.first, isSpace(first) { scalars.removeFirst() }
    while let last = scalars.last, isSpace(last) { scalars.removeLast() }
    let value = String(scalars).lowercased()
    guard !value.isEmpty else { return nil }
    switch value {
    case "1": return true
    case "0": return false
    default: break
    }
    if "true".hasPrefix(value) || "yes".hasPrefix(value) { return true }
    if "false".hasPrefix(value) || "no".hasPrefix(value) { return false }
    // `o` alone is both `on` and `off`.
    if value.count >= 2, "on".hasPrefix(value) { return true }
    if value.count >= 2, "off".hasPrefix(value) { return false }
    return nil
}

/// The white space `parse_bool` trims (`isspace` in the C locale).
private func isSpace(_ scalar: Unicode.Scalar) -> Bool {
    scalar == " " || ("\t"..."\r").contains(scalar)
}
