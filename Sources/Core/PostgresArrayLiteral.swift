/// A one-dimensional array literal (`{"a","b",NULL}`) for passing many values as one
/// parameter. Every value is double-quoted, with `"` and `\` escaped, so commas, braces,
/// whitespace and the text `NULL` stay values; nil is the unquoted NULL.
public func postgresArrayLiteral(_ values: [String?]) -> String {
    var text = "{"
    for (index, value) in values.enumerated() {
        if index > 0 { text += "," }
        guard let value else {
            text += "NULL"
            continue
        }
        text += "\""
        for character in value.unicodeScalars {
            if character == "\"" || character == "\\" { text += "\\" }
            text.unicodeScalars.append(character)
        }
        text += "\""
    }
    return text + "}"
}
