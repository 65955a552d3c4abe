/// A parsed JSON document.
///
/// Numbers keep their source text: a `numeric(38,10)` or an `int8` near 2^63 would lose
/// digits through `Double`, and ChangeRelay passes them on exactly as Postgres printed them.
/// Objects keep their members in source order (and any duplicate keys) so re-emitting a
/// document changes nothing but whitespace.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number token exactly as written, e.g. `-12.50e+3`.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// The value of the last member named `key`, for objects; nil otherwise. The last, as
    /// Postgres reads a repeated key (`json -> key`, a cast to jsonb): a config that repeats
    /// one means what the database says it means.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    /// An object's members with a repeated key kept once, where it first appears, with its
    /// last value (what jsonb keeps); nil for anything but an object.
    public var distinctMembers: [(key: String, value: JSONValue)]? {
        guard case .object(let members) = self else { return nil }
        var positions: [String: Int] = [:]
        var distinct: [(key: String, value: JSONValue)] = []
        for member in members {
            if let position = positions[member.key] {
                distinct[position].value = member.value
            } else {
                positions[member.key] = distinct.count
                distinct.append(member)
            }
        }
        return distinct
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }
}

/// Why a JSON text was rejected, and where: `offset` counts bytes from the start of the input.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        case unexpectedEnd
        /// A byte that cannot start or continue the construct at this point.
        case unexpectedByte(UInt8)
        case invalidLiteral
        case invalidNumber
        case invalidEscape
        case invalidUnicodeEscape
        /// A `\uD800`–`\uDFFF` escape that is not half of a high/low pair.
        case unpairedSurrogate
        /// A raw byte below 0x20 inside a string; JSON requires these to be escaped.
        case controlCharacterInString
        case invalidUTF8
        case trailingCharacters
        case nestingTooDeep
    }

    public var offset: Int
    public var reason: Reason

    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let text: String = switch reason {
        case .unexpectedEnd: "unexpected end of input"
        case .unexpectedByte(let byte):
            (0x21...0x7E).contains(byte)
                ? "unexpected character '\(Character(Unicode.Scalar(byte)))'"
                : "unexpected byte 0x\(String(byte, radix: 16, uppercase: true))"
        case .invalidLiteral: "invalid literal (expected true, false or null)"
        case .invalidNumber: "invalid number"
        case .invalidEscape: "invalid escape sequence"
        case .invalidUnicodeEscape: "invalid \\u escape (expected 4 hex digits)"
        case .unpairedSurrogate: "unpaired UTF-16 surrogate in \\u escape"
        case .controlCharacterInString: "unescaped control character in string"
        case .invalidUTF8: "invalid UTF-8"
        case .trailingCharacters: "unexpected characters after the JSON value"
        case .nestingTooDeep: "nesting deeper than \(JSONParser.maximumDepth) levels"
        }
        return "\(text) at byte \(offset)"
    }
}
