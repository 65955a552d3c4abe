/// `text` in single quotes for a message or a log line: control and format characters
/// escaped (`\r`, `\n`, `\u{2028}`…), cut after `limit` characters. Text from a database
/// row or a file cannot then forge a second log line or hide part of a message.
public func quotedExcerpt<S: Collection<Unicode.Scalar>>(_ scalars: S, limit: Int = 120) -> String {
    var text = "'"
    for scalar in scalars.prefix(limit) {
        text += scalar.isControlOrFormat ? scalar.escaped(asASCII: true) : String(scalar)
    }
    return text + (scalars.count > limit ? "…'" : "'")
}

/// `quotedExcerpt` of a string's scalars.
public func quotedExcerpt(_ text: String, limit: Int = 120) -> String {
    quotedExcerpt(text.unicodeScalars, limit: limit)
}

extension Unicode.Scalar {
    /// Control, format and line or paragraph separator characters: what a message must not show raw.
    public var isControlOrFormat: Bool {
        switch properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}
