import Core
/// One operator-defined webhook event rule (`webhooks.rules`): changes of one table with one
/// operation, optionally only when a column has a value, emit one event type.
///
/// The compact syntax, one rule per string:
///
///     public.orders insert -> order.created
///     public.orders update status=shipped -> order.shipped
///     public.orders update note="needs -> review" -> order.flagged
///     "Sales"."Order Lines" delete -> order.line.removed
///
/// - The table is `schema.table`; a schema is required. Each name is either bare — ASCII
///   letters, digits, `_` and `$`, not starting with a digit or `$`, lower case (Postgres folds
///   an unquoted name to lower case, so an upper-case letter here is refused rather than folded
///   silently into a name that may not exist) — or double-quoted, which keeps it exactly as
///   written (`""` stands for one `"`). A name is at most 63 bytes, Postgres' limit.
/// - The operation is `insert`, `update`, `delete` or `read` (the rows a backfill reads),
///   in any case.
/// - The condition, when present, is `column=value` (spaces around `=` allowed). The value is
///   bare — no spaces, `"`, `=`, `,` or `->` — or double-quoted with `""` for a `"` (quotes
///   allow spaces, `->`, commas and the empty string). The comparison is with the column's
///   text; see `Condition` for when it holds.
/// - After `->`, the event type: dot-separated segments of `A-Z a-z 0-9 _ -`, none empty. No
///   `*`: wildcards belong to subscriptions (`webhook_configs.events`), a rule emits one type.
///
/// The same rule twice in one list is refused (it would deliver every matching change twice);
/// two rules with the same table, operation and condition but different event types are fine,
/// as one change may emit several events.
public struct WebhookRule: Sendable, Hashable, CustomStringConvertible {
    public enum Operation: String, Sendable, Hashable, CaseIterable {
        case insert, update, delete
        /// A row read by a backfill (an incremental snapshot), not a change in the WAL.
        case read
    }

    /// "Column changed to value". For UPDATE it holds when the new row's column is `value` and
    /// the old row's was not; for INSERT and READ when the new row's column is `value`; for
    /// DELETE when the old row's column is `value`. A NULL column never equals a value.
    public struct Condition: Sendable, Hashable {
        public var column: String
        public var value: String

        public init(column: String, value: String) {
            self.column = column
            self.value = value
        }
    }

    public var schema: String
    public var table: String
    public var operation: Operation
    public var condition: Condition?
    public var eventType: String

    public init(schema: String, table: String, operation: Operation, condition: Condition? = nil, eventType: String) {
        self.schema = schema
        self.table = table
        self.operation = operation
        self.condition = condition
        self.eventType = eventType
    }

    /// Parses one rule in the compact syntax above.
    public init(parsing text: String) throws(WebhookRuleSyntaxError) {
        var parser = RuleParser(text)
        self = try parser.rule()
    }

    /// The rule in the compact syntax, names and value quoted only where needed;
    /// `WebhookRule(parsing: rule.description) == rule`.
    public var description: String {
        var text = RuleParser.quotedName(schema) + "." + RuleParser.quotedName(table) + " " + operation.rawValue
        if let condition {
            text += " " + RuleParser.quotedName(condition.column) + "=" + RuleParser.quotedValue(condition.value)
        }
        return text + " -> " + eventType
    }

    /// Splits a comma-separated list of rules (how `CHANGERELAY_WEBHOOKS_RULES` gives them),
    /// leaving commas inside double quotes alone. Elements are trimmed of spaces and tabs;
    /// an empty or blank list is no rules.
    public static func splitList(_ text: String) -> [String] {
        guard text.unicodeScalars.contains(where: { !$0.isSpace }) else { return [] }
        var elements: [String.UnicodeScalarView] = []
        var current = String.UnicodeScalarView()
        var quoted = false
        for scalar in text.unicodeScalars {
            if scalar == "\"" { quoted.toggle() }
            if scalar == ",", !quoted {
                elements.append(current)
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        elements.append(current)
        return elements.map { String(String.UnicodeScalarView($0.drop(while: \.isSpace).reversed().drop(while: \.isSpace).reversed())) }
    }
}

/// What is wrong with a rule's text, said so that the operator can fix it.
public struct WebhookRuleSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

private struct RuleParser {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    static let maxNameBytes = 63
    static let operationList = "insert, update, delete or read"

    var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
    var atArrow: Bool { index + 1 < scalars.count && scalars[index] == "-" && scalars[index + 1] == ">" }

    func fail(_ reason: String) -> WebhookRuleSyntaxError { WebhookRuleSyntaxError(reason: reason) }

    mutating func skipSpaces() {
        while let scalar = peek, scalar.isSpace { index += 1 }
    }

    /// The text from `start` to the next space or the end, quoted and shortened for a message.
    func word(from start: Int) -> String {
        var end = start
        while end < scalars.count, !scalars[end].isSpace { end += 1 }
        return Self.excerpt(scalars[start..<end])
    }

    static func excerpt<S: Collection<Unicode.Scalar>>(_ scalars: S) -> String { quotedExcerpt(scalars, limit: 40) }

    /// What the parser found at the current position, for a message.
    var found: String {
        guard let scalar = peek else { return "the end of the rule" }
        return scalar.isSpace ? "a space" : word(from: index)
    }

    mutating func rule() throws(WebhookRuleSyntaxError) -> WebhookRule {
        skipSpaces()
        guard peek != nil else { throw fail("the rule is empty") }

        // schema.table
        let tableStart = index
        if atArrow { throw fail("missing the table (schema.table) before '->'") }
        let schema = try name(what: "schema")
        guard peek == "." else {
            throw fail("table \(Self.excerpt(schema.unicodeScalars)) has no schema: write it as schema.table, e.g. public.\(Self.quotedName(schema))")
        }
        index += 1
        let table = try name(what: "table")
        if peek == "." { throw fail("\(word(from: tableStart)) is not schema.table: a table name has two parts") }

        // operation
        skipSpaces()
        guard peek != nil, !atArrow else { throw fail("missing the operation (\(Self.operationList)) after the table") }
        guard index > 0, scalars[index - 1].isSpace else {
            throw fail("unexpected \(found) after the table: a space, then the operation (\(Self.operationList))")
        }
        let operationStart = index
        while let scalar = peek, scalar.isASCII, scalar.properties.isAlphabetic { index += 1 }
        let operationWord = String(String.UnicodeScalarView(scalars[operationStart..<index])).lowercased()
        guard let operation = WebhookRule.Operation(rawValue: operationWord), peek == nil || peek!.isSpace || atArrow else {
            throw fail("unknown operation \(self.word(from: operationStart)): expected \(Self.operationList)")
        }
        guard containsArrow(from: index) else {
            throw fail("missing '->' before the event type")
        }

        // optional column=value
        skipSpaces()
        var condition: WebhookRule.Condition?
        if !atArrow {
            condition = try self.condition()
            skipSpaces()
            guard atArrow else {
                throw fail("unexpected \(self.word(from: index)) after the condition: a rule has at most one column=value, then '->' and the event type")
            }
        }
        index += 2

        // event type
        skipSpaces()
        let typeStart = index
        while let scalar = peek, !scalar.isSpace { index += 1 }
        let eventType = String(String.UnicodeScalarView(scalars[typeStart..<index]))
        try Self.check(eventType: eventType)
        skipSpaces()
        guard peek == nil else { throw fail("unexpected text after the event type: \(found)") }
        return WebhookRule(schema: schema, table: table, operation: operation, condition: condition, eventType: eventType)
    }

    /// Whether `->` appears at or after `start` outside double quotes; also true when a quote
    /// is left open, so that the unclosed quote is what gets reported.
    func containsArrow(from start: Int) -> Bool {
        var quoted = false
        var position = start
        while position < scalars.count {
            if scalars[position] == "\"" {
                quoted.toggle()
            } else if !quoted, scalars[position] == "-", position + 1 < scalars.count, scalars[position + 1] == ">" {
                return true
            }
            position += 1
        }
        return quoted
    }

    /// The text from `start` up to the `->` (or the end), for a message about a condition.
    func conditionText(from start: Int) -> String {
        var end = start
        var quoted = false
        while end < scalars.count {
            if scalars[end] == "\"" { quoted.toggle() }
            if !quoted, scalars[end] == "-", end + 1 < scalars.count, scalars[end + 1] == ">" { break }
            end += 1
        }
        while end > start, scalars[end - 1].isSpace { end -= 1 }
        return Self.excerpt(scalars[start..<end])
    }

    mutating func condition() throws(WebhookRuleSyntaxError) -> WebhookRule.Condition {
        let start = index
        let unknownForm = fail("unknown condition form \(conditionText(from: start)): the only condition is column=value")
        if peek != "\"" {
            var end = index
            while end < scalars.count, scalars[end].isASCII, scalars[end].isNameCharacter { end += 1 }
            // `status!=x`, `status>3`, `(a=1)`: not a name followed by `=`, a space or `->`.
            if end == index || (end < scalars.count && !scalars[end].isSpace && scalars[end] != "=" && scalars[end] != "-") {
                throw unknownForm
            }
        }
        let column = try name(what: "column")
        skipSpaces()
        guard peek == "=" else {
            if atArrow || peek == nil { throw fail("condition \(Self.excerpt(column.unicodeScalars)) has no '=value'") }
            throw unknownForm
        }
        index += 1
        skipSpaces()
        if peek == "\"" {
            return WebhookRule.Condition(column: column, value: try quoted(what: "value"))
        }
        let valueStart = index
        while let scalar = peek, !scalar.isSpace, !atArrow {
            guard scalar != "\"", scalar != "=", scalar != ",", !scalar.isControlOrFormat else {
                throw fail("the value of \(Self.excerpt(column.unicodeScalars)) contains \(Self.excerpt([scalar])): write it in double quotes")
            }
            index += 1
        }
        guard index > valueStart else {
            throw fail("condition \(Self.excerpt(column.unicodeScalars)) has no value after '=' (write \(column)=\"\" for the empty string)")
        }
        return WebhookRule.Condition(column: column, value: String(String.UnicodeScalarView(scalars[valueStart..<index])))
    }

    /// A bare or double-quoted name (schema, table, column).
    mutating func name(what: String) throws(WebhookRuleSyntaxError) -> String {
        if peek == "\"" {
            let name = try quoted(what: "name")
            guard !name.isEmpty else { throw fail("a \(what) name in double quotes is empty") }
            guard name.utf8.count <= Self.maxNameBytes else {
                throw fail("name \(Self.excerpt(name.unicodeScalars)) is \(name.utf8.count) bytes, longer than Postgres' \(Self.maxNameBytes)")
            }
            return name
        }
        let start = index
        while let scalar = peek, scalar.isASCII, scalar.isNameCharacter { index += 1 }
        let name = String(String.UnicodeScalarView(scalars[start..<index]))
        if let next = peek, !next.isSpace, next != ".", next != "=", !atArrow, !name.isEmpty {
            throw fail("\(word(from: start)): \(Self.excerpt([next])) cannot be part of a bare name (names are letters, digits, _ and $, or in double quotes)")
        }
        guard let first = name.unicodeScalars.first else { throw fail("expected a \(what) name, found \(found)") }
        if first == "$" || ("0"..."9").contains(first) {
            throw fail("name \(Self.excerpt(name.unicodeScalars)) starts with \(Self.excerpt([first])): a bare name starts with a letter or _ (or quote it)")
        }
        if name.unicodeScalars.contains(where: { ("A"..."Z").contains($0) }) {
            throw fail("name \(Self.excerpt(name.unicodeScalars)) has upper-case letters: Postgres folds a bare name to lower case; write \(name.lowercased()) or \"\(name)\" in double quotes")
        }
        guard name.utf8.count <= Self.maxNameBytes else {
            throw fail("name \(Self.excerpt(name.unicodeScalars)) is \(name.utf8.count) bytes, longer than Postgres' \(Self.maxNameBytes)")
        }
        return name
    }

    /// A double-quoted string at `index` (on the opening quote); `""` stands for `"`.
    mutating func quoted(what: String) throws(WebhookRuleSyntaxError) -> String {
        index += 1
        var text = String.UnicodeScalarView()
        while let scalar = peek {
            index += 1
            if scalar == "\"" {
                guard peek == "\"" else { return String(text) }
                index += 1
            }
            guard scalar != "\0" else { throw fail("a quoted \(what) contains a NUL character") }
            text.append(scalar)
        }
        throw fail("a quoted \(what) has no closing '\"'")
    }

    static func check(eventType: String) throws(WebhookRuleSyntaxError) {
        guard !eventType.isEmpty else { throw WebhookRuleSyntaxError(reason: "the event type after '->' is empty") }
        let shown = excerpt(eventType.unicodeScalars)
        if eventType.contains("*") {
            throw WebhookRuleSyntaxError(reason: "event type \(shown) contains '*': wildcards are for subscriptions (webhook_configs.events), a rule emits one type")
        }
        if let bad = eventType.unicodeScalars.first(where: { !($0.isASCII && ($0.isAlphanumericASCII || $0 == "_" || $0 == "-" || $0 == ".")) }) {
            throw WebhookRuleSyntaxError(reason: "event type \(shown) contains \(excerpt([bad])): segments are letters, digits, _ and -, separated by dots")
        }
        if eventType.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
            throw WebhookRuleSyntaxError(reason: "event type \(shown) has an empty segment (a leading, trailing or doubled dot)")
        }
    }

    static func quotedName(_ name: String) -> String {
        let bare = name.unicodeScalars.allSatisfy { $0.isASCII && $0.isNameCharacter && !("A"..."Z").contains($0) }
            && name.unicodeScalars.first.map { $0 != "$" && !("0"..."9").contains($0) } == true
        return bare ? name : quote(name)
    }

    static func quotedValue(_ value: String) -> String {
        let bare = !value.isEmpty && !value.contains("->") && value.unicodeScalars.allSatisfy {
            !$0.isSpace && $0 != "\"" && $0 != "=" && $0 != "," && !$0.isControlOrFormat
        }
        return bare ? value : quote(value)
    }

    static func quote(_ text: String) -> String { "\"" + String(text.flatMap { $0 == "\"" ? "\"\"" : String($0) }) + "\"" }
}

extension Unicode.Scalar {
    fileprivate var isSpace: Bool { self == " " || self == "\t" }
    fileprivate var isAlphanumericASCII: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self) }
    fileprivate var isNameCharacter: Bool { isAlphanumericASCII || self == "_" || self == "$" }
}
