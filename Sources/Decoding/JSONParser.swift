/// A strict RFC 8259 parser over UTF-8 bytes: no comments, no trailing commas, no
/// leading zeros or `+` signs, no raw control characters or invalid UTF-8 in strings,
/// no unpaired surrogate escapes, nothing but whitespace after the value.
public enum JSONParser {
    /// Deeper documents are rejected rather than risking the stack of a small thread.
    public static let maximumDepth = 512

    /// What becomes of containers nested deeper than `maximumDepth`.
    public enum DeepValues: Sendable {
        /// The document is an error (`nestingTooDeep`).
        case refused
        /// Each is checked to the end, without the stack, and comes back empty (`[]` or `{}`):
        /// for a caller that reads only the shallow part of a document a database accepted
        /// at any depth, and must not call it invalid for what it never looks at.
        case emptied
    }

    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, deepValues: DeepValues = .refused)
        throws(JSONParseError) -> JSONValue
    {
        try withContiguousBytes(bytes) { buffer throws(JSONParseError) in
            var scanner = JSONScanner(buffer, maximumDepth: deepValues == .refused ? maximumDepth : .max)
            let value = try parseValue(&scanner, depth: 0)
            try scanner.expectEnd()
            return value
        }
    }

    public static func parse(_ text: String, deepValues: DeepValues = .refused) throws(JSONParseError) -> JSONValue {
        try parse(text.utf8, deepValues: deepValues)
    }

    /// Runs `body` on the bytes in place when the collection is contiguous (arrays, slices,
    /// native strings), copying only when it is not.
    static func withContiguousBytes<Bytes: Collection<UInt8>, Result>(
        _ bytes: Bytes, _ body: (UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> Result
    ) throws(JSONParseError) -> Result {
        let outcome = bytes.withContiguousStorageIfAvailable { buffer in
            Swift.Result { () throws(JSONParseError) in try body(buffer) }
        } ?? Array(bytes).withUnsafeBufferPointer { buffer in
            Swift.Result { () throws(JSONParseError) in try body(buffer) }
        }
        return try outcome.get()
    }

    /// `depth`: the containers `scanner` is inside. Past `maximumDepth` only a scanner without
    /// a bound of its own gets here (`DeepValues.emptied`).
    private static func parseValue(_ scanner: inout JSONScanner, depth: Int) throws(JSONParseError) -> JSONValue {
        switch try scanner.peek() {
        case UInt8(ascii: "\""):
            return .string(scanner.string(try scanner.scanString()))
        case let bracket where depth >= maximumDepth && (bracket == UInt8(ascii: "{") || bracket == UInt8(ascii: "[")):
            try scanner.skipValue()
            return bracket == UInt8(ascii: "{") ? .object([]) : .array([])
        case UInt8(ascii: "{"):
            var members: [(key: String, value: JSONValue)] = []
            if try scanner.beginContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
                repeat {
                    let key = scanner.string(try scanner.scanString())
                    try scanner.expect(UInt8(ascii: ":"))
                    members.append((key, try parseValue(&scanner, depth: depth + 1)))
                } while try scanner.nextElement(close: UInt8(ascii: "}"))
            }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            if try scanner.beginContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]")) {
                repeat {
                    elements.append(try parseValue(&scanner, depth: depth + 1))
                } while try scanner.nextElement(close: UInt8(ascii: "]"))
            }
            return .array(elements)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(scanner.text(try scanner.scanNumber()))
        default:
            switch try scanner.scanLiteral() {
            case .true: return .bool(true)
            case .false: return .bool(false)
            case .null: return .null
            }
        }
    }
}
