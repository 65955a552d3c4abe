/// Single-quotes a string literal, for statements that take no parameters (the simple-query
/// protocol, replication commands, DDL).
public func quoteLiteral(_ text: String) -> String {
    "'" + text.replacing("'", with: "''") + "'"
}

/// Double-quotes an identifier, so any name (mixed case, spaces, quotes) is taken as written.
public func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacing("\"", with: "\"\"") + "\""
}
