/// The subset of TOML a ChangeRelay configuration needs: `[section]` and
/// `[section.sub]` tables, arrays of tables (`[[schedules]]`, each header starting one
/// more entry), `key = value` with strings (basic and literal), integers, floats,
/// booleans and arrays of those, and comments. Anything else is an error with its line,
/// so a typo never passes as a default.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case array([TOMLValue])

    var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        }
    }
}

public struct TOMLError: Error, Sendable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

/// One table of an array of tables: the line of its `[[name]]` header and its keys,
/// named without the array's name (`cron`, not `schedules.cron`).
public struct TOMLArrayTable: Sendable {
    public var line: Int
    public var values: [String: (value: TOMLValue, line: Int)] = [:]
}

/// A parsed document: dotted key (`source.database_url`) → value, with the line each was set on.
public struct TOMLDocument: Sendable {
    public var values: [String: (value: TOMLValue, line: Int)] = [:]
    /// For a key whose value is an array, the line of each element: an error about one element
    /// of a multi-line array can name its own line.
    public var elementLines: [String: [Int]] = [:]
    /// Arrays of tables by name (`schedules` for `[[schedules]]`), their tables in file order.
    public var arrayTables: [String: [TOMLArrayTable]] = [:]

    public init(parsing text: String) throws(TOMLError) {
        var parser = TOMLParser(Array(text.utf8))
        values = try parser.parse()
        elementLines = parser.elementLines
        arrayTables = parser.arrayTables
    }
}

private struct TOMLParser {
    let bytes: [UInt8]
    var index = 0
    var line = 1
    /// Arrays open around the value being read. No key takes nested arrays; past this depth
    /// the recursion would be a stack overflow, not an error naming the key.
    var arrayDepth = 0
    static let maximumArrayDepth = 32
    var elementLines: [String: [Int]] = [:]
    var arrayTables: [String: [TOMLArrayTable]] = [:]

    /// A UTF-8 byte order mark, which some editors write, is not part of the document.
    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    mutating func parse() throws(TOMLError) -> [String: (value: TOMLValue, line: Int)] {
        var result: [String: (value: TOMLValue, line: Int)] = [:]
        var tables: Set<String> = []
        var table = ""
        /// The array of tables whose latest entry takes the keys that follow, if a `[[…]]` header came last.
        var arrayTable: String?
        // TOML forbids the raw control character; Postgres would cut a string at it.
        if let nul = bytes.firstIndex(of: 0) {
            throw TOMLError(line: 1 + bytes[..<nul].count { $0 == UInt8(ascii: "\n") },
                            reason: "a NUL byte: Postgres would read only the text before it")
        }
        while true {
            skipWhitespaceAndComments(newlines: true)
            guard let byte = peek else { return result }
            if byte == UInt8(ascii: "[") {
                index += 1
                let isArray = consume("[")
                skipSpaces()
                let name = try dottedKey()
                skipSpaces()
                try refuseInsideArrayTable(name)
                if isArray {
                    guard consume("]"), consume("]") else { throw error("expected ']]' to close the header of [[\(name)]]") }
                    guard !tables.contains(name) else { throw error("[[\(name)]] is already defined as the table [\(name)]") }
                    guard result[name] == nil else { throw error("[[\(name)]] is already set as the key '\(name)'") }
                    arrayTables[name, default: []].append(TOMLArrayTable(line: line))
                    arrayTable = name
                } else {
                    try expect("]", "to close the table header")
                    guard arrayTables[name] == nil else { throw error("table [\(name)] is already an array of tables ([[\(name)]])") }
                    guard tables.insert(name).inserted else { throw error("table [\(name)] is defined twice") }
                    table = name
                    arrayTable = nil
                }
            } else {
                let keyLine = line
                let key = try dottedKey()
                let full = arrayTable.map { $0 + "." + key } ?? (table.isEmpty ? key : table + "." + key)
                skipSpaces()
                try expect("=", "after key '\(full)'")
                skipSpaces()
                let value: TOMLValue
                if consume("[") {
                    let elements = try arrayElements(for: full)
                    value = .array(elements.map(\.value))
                    if arrayTable == nil { elementLines[full] = elements.map(\.line) }
                } else {
                    value = try self.value(for: full)
                }
                if let name = arrayTable {
                    let entry = arrayTables[name]!.count - 1
                    guard arrayTables[name]![entry].values[key] == nil else {
                        throw error("key '\(key)' is set twice in [[\(name)]] entry \(entry)")
                    }
                    arrayTables[name]![entry].values[key] = (value, keyLine)
                } else {
                    guard arrayTables[full] == nil else { throw error("key '\(full)' is already an array of tables ([[\(full)]])") }
                    guard result[full] == nil else { throw error("key '\(full)' is set twice") }
                    result[full] = (value, keyLine)
                }
            }
            try endOfLine()
        }
    }

    /// Tables inside an entry of an array of tables (`[schedules.x]`, `[[schedules.x]]`) are
    /// more TOML than a configuration needs: refused rather than misread.
    func refuseInsideArrayTable(_ name: String) throws(TOMLError) {
        for parent in arrayTables.keys where name.hasPrefix(parent + ".") {
            throw error("[\(name)] would be a table inside the array of tables [[\(parent)]], which is not supported")
        }
    }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    func error(_ reason: String) -> TOMLError { TOMLError(line: line, reason: reason) }

    mutating func expect(_ character: Character, _ context: String) throws(TOMLError) {
        guard peek == character.asciiValue else { throw error("expected '\(character)' \(context)") }
        index += 1
    }

    mutating func skipSpaces() {
        while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { index += 1 }
    }

    mutating func skipWhitespaceAndComments(newlines: Bool) {
        while let byte = peek {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                index += 1
            } else if byte == UInt8(ascii: "\n"), newlines {
                index += 1
                line += 1
            } else if byte == UInt8(ascii: "#") {
                while let next = peek, next != UInt8(ascii: "\n") { index += 1 }
            } else {
                return
            }
        }
    }

    mutating func endOfLine() throws(TOMLError) {
        skipWhitespaceAndComments(newlines: false)
        guard let byte = peek else { return }
        guard byte == UInt8(ascii: "\n") else { throw error("unexpected text after the value") }
    }

    mutating func dottedKey() throws(TOMLError) -> String {
        var parts: [String] = []
        repeat {
            skipSpaces()
            if peek == UInt8(ascii: "\"") {
                index += 1
                parts.append(try basicString())
            } else {
                let start = index
                while let byte = peek, byte.isBareKeyCharacter { index += 1 }
                guard index > start else { throw error("expected a key") }
                parts.append(String(decoding: bytes[start..<index], as: UTF8.self))
            }
            skipSpaces()
        } while consume(".")
        return parts.joined(separator: ".")
    }

    mutating func consume(_ character: Character) -> Bool {
        guard peek == character.asciiValue else { return false }
        index += 1
        return true
    }

    mutating func value(for key: String) throws(TOMLError) -> TOMLValue {
        guard let byte = peek else { throw error("key '\(key)' has no value") }
        switch byte {
        case UInt8(ascii: "\"") where startsWith("\"\"\""):
            index += 3
            return .string(try multilineString(for: key, literal: false))
        case UInt8(ascii: "'") where startsWith("'''"):
            index += 3
            return .string(try multilineString(for: key, literal: true))
        case UInt8(ascii: "\""):
            index += 1
            return .string(try basicString())
        case UInt8(ascii: "'"):
            index += 1
            let start = index
            while let next = peek, next != UInt8(ascii: "'") {
                guard next != UInt8(ascii: "\n") else { throw error("unterminated string for '\(key)'") }
                index += 1
            }
            guard peek != nil else { throw error("unterminated string for '\(key)'") }
            index += 1
            return .string(String(decoding: bytes[start..<index - 1], as: UTF8.self))
        case UInt8(ascii: "["):
            guard arrayDepth < Self.maximumArrayDepth else {
                throw error("arrays nested deeper than \(Self.maximumArrayDepth) levels for '\(key)'")
            }
            index += 1
            arrayDepth += 1
            defer { arrayDepth -= 1 }
            return .array(try arrayElements(for: key).map(\.value))
        default:
            let start = index
            while let next = peek, next.isScalarCharacter { index += 1 }
            let token = String(decoding: bytes[start..<index], as: UTF8.self)
            if token == "true" { return .boolean(true) }
            if token == "false" { return .boolean(false) }
            let digits = token.replacingUnderscores
            if token.contains(where: { $0.isNumber }) {
                let unsigned = token.drop { $0 == "+" || $0 == "-" }
                // TOML: no leading zeros, and an underscore only between two digits.
                if unsigned.count > 1, unsigned.first == "0", unsigned.dropFirst().first?.isNumber == true {
                    throw error("'\(token)' has a leading zero, which TOML does not allow, for '\(key)'")
                }
                if unsigned.first == "_" || unsigned.last == "_" || token.contains("__") {
                    throw error("'\(token)' has an underscore that is not between two digits, for '\(key)'")
                }
            }
            if let integer = Int64(digits) { return .integer(integer) }
            // TOML's hexadecimal, octal and binary integers, unsigned.
            for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where digits.hasPrefix(prefix) {
                guard let integer = Int64(digits.dropFirst(2), radix: radix), !digits.dropFirst(2).hasPrefix("+"),
                      !digits.dropFirst(2).hasPrefix("-") else {
                    throw error("'\(token)' is not a base-\(radix) integer a 64-bit signed integer holds, for '\(key)'")
                }
                return .integer(integer)
            }
            let unsigned = digits.drop { $0 == "+" || $0 == "-" }
            if !unsigned.isEmpty, unsigned.allSatisfy(\.isASCIIDigit) {
                throw error("'\(token)' is out of the range of a 64-bit signed integer, for '\(key)'")
            }
            if token.contains(where: { $0.isNumber }), let float = Double(digits) { return .float(float) }
            guard !token.isEmpty else {
                // What stopped the value is quoted escaped: it may be the line's end.
                throw error("'\(key)' has no value (found \(String(UnicodeScalar(byte)).debugDescription))")
            }
            throw error("'\(token)' is not a valid value for '\(key)' (strings need quotes)")
        }
    }

    /// The elements of an array whose `[` has been read, each with the line it starts on.
    mutating func arrayElements(for key: String) throws(TOMLError) -> [(value: TOMLValue, line: Int)] {
        var elements: [(value: TOMLValue, line: Int)] = []
        while true {
            skipWhitespaceAndComments(newlines: true)
            if consume("]") { return elements }
            let elementLine = line
            elements.append((try value(for: key), elementLine))
            skipWhitespaceAndComments(newlines: true)
            if consume(",") { continue }
            try expect("]", "to close the array of '\(key)'")
            return elements
        }
    }

    mutating func basicString() throws(TOMLError) -> String {
        var text: [UInt8] = []
        while let byte = peek {
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: text, as: UTF8.self)
            case UInt8(ascii: "\n"):
                throw error("unterminated string")
            case UInt8(ascii: "\\"):
                text += try escapeSequence()
            default:
                text.append(byte)
            }
        }
        throw error("unterminated string")
    }

    func startsWith(_ literal: StaticString) -> Bool {
        let length = literal.utf8CodeUnitCount
        guard index + length <= bytes.count else { return false }
        return (0..<length).allSatisfy { bytes[index + $0] == literal.utf8Start[$0] }
    }

    /// A `"""` or `'''` string whose opening delimiter has been read: a newline right after
    /// it is dropped; a basic one takes escapes, and a backslash at the end of a line joins
    /// it to the next non-blank text (the natural way to write a schedule's SQL).
    mutating func multilineString(for key: String, literal: Bool) throws(TOMLError) -> String {
        let quote = literal ? UInt8(ascii: "'") : UInt8(ascii: "\"")
        if consume("\n") {
            line += 1
        } else if startsWith("\r\n") {
            index += 2
            line += 1
        }
        var text: [UInt8] = []
        while let byte = peek {
            if byte == quote, index + 2 < bytes.count, bytes[index + 1] == quote, bytes[index + 2] == quote {
                index += 3
                // Up to two quotes right before the closing delimiter belong to the string.
                for _ in 0..<2 where peek == quote {
                    text.append(quote)
                    index += 1
                }
                return String(decoding: text, as: UTF8.self)
            }
            index += 1
            if byte == UInt8(ascii: "\n") { line += 1 }
            if byte == UInt8(ascii: "\\"), !literal {
                var lookahead = index
                while lookahead < bytes.count, bytes[lookahead] == 0x20 || bytes[lookahead] == 0x09 { lookahead += 1 }
                if lookahead < bytes.count, bytes[lookahead] == 0x0A || bytes[lookahead] == 0x0D {
                    index = lookahead
                    while let next = peek, [0x20, 0x09, 0x0A, 0x0D].contains(next) {
                        if next == 0x0A { line += 1 }
                        index += 1
                    }
                } else {
                    text += try escapeSequence()
                }
                continue
            }
            text.append(byte)
        }
        throw error("unterminated multi-line string for '\(key)'")
    }

    mutating func escapeSequence() throws(TOMLError) -> [UInt8] {
        guard let escape = peek else { throw error("unterminated string") }
        index += 1
        switch escape {
        case UInt8(ascii: "b"): return [0x08]
        case UInt8(ascii: "f"): return [0x0C]
        case UInt8(ascii: "n"): return [0x0A]
        case UInt8(ascii: "t"): return [0x09]
        case UInt8(ascii: "r"): return [0x0D]
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): return [escape]
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let length = escape == UInt8(ascii: "u") ? 4 : 8
            guard index + length <= bytes.count,
                  let code = UInt32(String(decoding: bytes[index..<index + length], as: UTF8.self), radix: 16),
                  let scalar = UnicodeScalar(code)
            else { throw error("invalid unicode escape in string") }
            // Valid TOML, but libpq and Postgres end a string at NUL: a schedule's
            // `DELETE FROM t\u0000 WHERE …` ran as `DELETE FROM t`.
            guard code != 0 else { throw error("\\u0000 (NUL) in a string: Postgres would read only the text before it") }
            index += length
            return Array(String(scalar).utf8)
        default:
            throw error("invalid escape '\\\(UnicodeScalar(escape))' in string")
        }
    }
}

extension UInt8 {
    fileprivate var isBareKeyCharacter: Bool {
        (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "z")) || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z"))
            || (self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9")) || self == UInt8(ascii: "_") || self == UInt8(ascii: "-")
    }

    fileprivate var isScalarCharacter: Bool {
        isBareKeyCharacter || self == UInt8(ascii: ".") || self == UInt8(ascii: "+")
    }
}

extension String {
    fileprivate var replacingUnderscores: String { String(filter { $0 != "_" }) }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
