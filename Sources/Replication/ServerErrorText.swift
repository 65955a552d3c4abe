/// A server error's fields, printed as libpq prints them (`ERROR:  …`, `DETAIL:  …`,
/// `HINT:  …`, `CONTEXT:  …`) but without the row data they may quote: a refused insert's
/// detail is the whole row ("Failing row contains (…)"), a key violation's the key's values,
/// a value the server could not read is quoted in the message (class 22), and a COPY's or a
/// JSON parser's context quotes the value or line it stopped at. Rows the pipeline writes
/// hold webhook headers and target URLs with their credentials, which must never reach a
/// log. The table, the column, the constraint, the type and the line number stay: they say
/// what to fix.
struct ServerErrorText: Equatable {
    var severity: String?
    var sqlState: String?
    var primary: String
    var detail: String?
    var hint: String?
    var context: String?

    var rendered: String {
        var lines = ["\(severity ?? "ERROR"):  \(withoutQuotedValue(primary))"]
        if let detail = detail.map(Self.withoutRow) {
            lines.append("DETAIL:  \(sqlState?.hasPrefix("22") == true ? Self.withoutQuotes(detail) : detail)")
        }
        if let hint { lines.append("HINT:  \(hint)") }
        if let context = context.map(Self.withoutCopiedData) { lines.append("CONTEXT:  \(context)") }
        return lines.joined(separator: "\n")
    }

    /// A data error's message ends with the value it could not read (`invalid input syntax
    /// for type integer: "…"`): that part goes.
    private func withoutQuotedValue(_ message: String) -> String {
        guard sqlState?.hasPrefix("22") == true, let quote = message.firstRange(of: ": \"") else { return message }
        return String(message[..<quote.lowerBound]) + ": (the value is not shown)"
    }

    /// A data error's detail quotes what it could not read (`Token "…" is invalid.`).
    static func withoutQuotes(_ text: String) -> String {
        var result = "", quoted = false
        for character in text {
            if character == "\"" {
                result.append(quoted ? "…\"" : "\"")
                quoted.toggle()
            } else if !quoted {
                result.append(character)
            }
        }
        return result
    }

    private static let failingRow = "Failing row contains ("
    /// What follows a key's values in the server's key-violation details.
    private static let keyEndings = [") already exists", ") is not present in table", ") is still referenced from table",
                                     ") conflicts with existing key"]

    static func withoutRow(_ detail: String) -> String {
        if detail.hasPrefix(failingRow) { return "Failing row contains (…): its values are not shown" }
        guard detail.hasPrefix("Key ("), let equals = detail.firstRange(of: ")=(") else { return detail }
        let columns = detail[..<equals.lowerBound]
        let rest = detail[equals.upperBound...]
        let ending = keyEndings.compactMap { rest.firstRange(of: $0) }.min { $0.lowerBound < $1.lowerBound }
        guard let ending else { return columns + ")=(…)" }
        // An exclusion constraint's detail names the other row's key values too.
        let tail = rest[ending.lowerBound...]
        return columns + ")=(…" + (tail.hasPrefix(") conflicts with existing key") ? ") conflicts with existing key (…)." : tail)
    }

    /// `COPY t, line 3, column c: "value"`, `COPY t, line 3: "line"` and `JSON data, line 1:
    /// {…` lose the quoted part; every other context line is kept as it is.
    static func withoutCopiedData(_ context: String) -> String {
        context.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            if line.hasPrefix("COPY "), let quote = line.firstRange(of: ": \"") { return line[..<quote.lowerBound] }
            if line.hasPrefix("JSON data, line "), let colon = line.firstRange(of: ": ") { return line[..<colon.lowerBound] }
            return line
        }.joined(separator: "\n")
    }
}
