/// A strict RFC 8259 parser over UTF-8 bytes: no comments, no trailing commas, no
/// leading zeros or `+` signs, no raw control characters or invalid UTF-8 in strings,
/// no unpaired surrogate escapes, nothing but whitespace after the value.
public enum JSONParser {
    /// Deeper documents are rejected rather than risking the stack of a small thread.
    public static let maximumDepth = 512

    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(JSONParseError) -> JSONValue {
        try withContiguousBytes(bytes) { buffer throws(JSONParseError) in
            var scanner = JSONScanner(buffer)
            let value = try parseValue(&scanner)
            try scanner.expectEnd()
            return value
        }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(text.utf8)
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

    private static func parseValue(_ scanner: inout JSONScanner) throws(JSONParseError) -> JSONValue {
        switch try scanner.peek() {
        case UInt8(ascii: "\""):
            return .string(scanner.string(try scanner.scanString()))
        case UInt8(ascii: "{"):
            var members: [(key: String, value: JSONValue)] = []
            if try scanner.beginContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) {
                repeat {
                    let key = scanner.string(try scanner.scanString())
                    try scanner.expect(UInt8(ascii: ":"))
                    members.append((key, try parseValue(&scanner)))
                } while try scanner.nextElement(close: UInt8(ascii: "}"))
            }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            if try scanner.beginContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]")) {
                repeat {
                    elements.append(try parseValue(&scanner))
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
