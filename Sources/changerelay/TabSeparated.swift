/// One line of the tab-separated listings (`deliveries list`, `backfill status`). Fields
/// come from the database (table names, keys, `--where` clauses, errors) and may hold a
/// tab or a line break, which split one record across fields or lines for every script
/// that reads them; they are escaped as COPY's text format does (`\t`, `\n`, `\r`, `\\`).
enum TabSeparated {
    static func line(_ fields: [String]) -> String {
        fields.map(escaped).joined(separator: "\t")
    }

    static func escaped(_ field: String) -> String {
        guard field.utf8.contains(where: { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0x5C }) else { return field }
        var written = String.UnicodeScalarView()
        for scalar in field.unicodeScalars {
            switch scalar {
            case "\t": written.append(contentsOf: #"\t"#.unicodeScalars)
            case "\n": written.append(contentsOf: #"\n"#.unicodeScalars)
            case "\r": written.append(contentsOf: #"\r"#.unicodeScalars)
            case "\\": written.append(contentsOf: #"\\"#.unicodeScalars)
            default: written.append(scalar)
            }
        }
        return String(written)
    }
}
