/// A server error's fields, printed as libpq prints them (`ERROR:  …`, `DETAIL:  …`,
/// `HINT:  …`, `CONTEXT:  …`) but without the row data two of them quote. A refused
/// insert's detail is the whole row ("Failing row contains (…)") and a COPY's context is the
/// value or line it stopped at: rows the pipeline writes hold webhook headers and target
/// URLs with their credentials, which must never reach a log. The field names, the table,
/// the column and the line number stay: they say what to fix.
struct ServerErrorText: Equatable {
    var severity: String?
    var primary: String
    var detail: String?
    var hint: String?
    var context: String?

    var rendered: String {
        var lines = ["\(severity ?? "ERROR"):  \(primary)"]
        if let detail = detail.map(Self.withoutRow) { lines.append("DETAIL:  \(detail)") }
        if let hint { lines.append("HINT:  \(hint)") }
        if let context = context.map(Self.withoutCopiedData) { lines.append("CONTEXT:  \(context)") }
        return lines.joined(separator: "\n")
    }

    private static let failingRow = "Failing row contains ("

    static func withoutRow(_ detail: String) -> String {
        detail.hasPrefix(failingRow) ? "Failing row contains (…): its values are not shown" : detail
    }

    /// `COPY t, line 3, column c: "value"` and `COPY t, line 3: "line"` lose the quoted
    /// part; every other context line is kept as it is.
    static func withoutCopiedData(_ context: String) -> String {
        context.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            guard line.hasPrefix("COPY "), let quote = line.firstRange(of: ": \"") else { return line }
            return line[..<quote.lowerBound]
        }.joined(separator: "\n")
    }
}
