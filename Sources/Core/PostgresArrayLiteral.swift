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

/// The elements of a one-dimensional array's text output (`{a,"b c",NULL}`): quoted
/// elements unescaped, the unquoted `NULL` nil. What `postgresArrayLiteral` writes, it reads.
public func postgresArrayElements(_ text: String) -> [String?] {
    let scalars = Array(text.unicodeScalars)
    guard scalars.first == "{", scalars.last == "}", scalars.count > 2 else { return [] }
    var elements: [String?] = []
    var index = 1
    while index < scalars.count - 1 {
        var element = String.UnicodeScalarView()
        if scalars[index] == "\"" {
            index += 1
            while index < scalars.count - 1, scalars[index] != "\"" {
                if scalars[index] == "\\" { index += 1 }
                element.append(scalars[index])
                index += 1
            }
            index += 1
            elements.append(String(element))
        } else {
            while index < scalars.count - 1, scalars[index] != "," {
                element.append(scalars[index])
                index += 1
            }
            let text = String(element)
            elements.append(text == "NULL" ? nil : text)
        }
        index += 1
    }
    return elements
}
