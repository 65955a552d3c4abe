/// The byte-level JSON lexer behind `JSONParser`, `JSONWriter.appendCompactJSON` and
/// `Wal2JsonDecoder`. It hands out byte ranges instead of values, so a caller that only
/// needs the bytes of a string or number (the decoder, the compact re-emitter) never
/// allocates, and strings without escapes are never copied.
///
/// It works on a borrowed buffer and must not outlive the `withUnsafeBufferPointer`
/// (or similar) call that produced it.
struct JSONScanner {
    /// A validated string token: `content` excludes the quotes and still holds any escapes.
    struct StringToken {
        var content: Range<Int>
        var hasEscapes: Bool
        /// A `\u` escape of half a surrogate pair, only with `.kept` (see `LoneSurrogates`).
        var hasLoneSurrogate = false
    }

    /// Postgres' `json` stores its text as given and checks only that each `\u` escape has
    /// four hex digits, so a column may hold `"\uDE00"`; `jsonb` and strict parsers refuse
    /// it. The values of a json column are scanned with `.kept`, so such a value is a change
    /// the stream can get past; everything else is refused.
    enum LoneSurrogates { case refused, kept }

    enum StringBytes { case utf8, any }

    enum Literal { case `true`, `false`, null }

    let input: UnsafeBufferPointer<UInt8>
    var position = 0
    private var depth = 0
    /// Deeper containers are an error (`nestingTooDeep`): the bound of the callers that
    /// recurse. One that keeps its own stack passes `.max`.
    private let maximumDepth: Int
    private let loneSurrogates: LoneSurrogates

    init(_ input: UnsafeBufferPointer<UInt8>, maximumDepth: Int = JSONParser.maximumDepth,
         loneSurrogates: LoneSurrogates = .refused) {
        self.input = input
        self.maximumDepth = maximumDepth
        self.loneSurrogates = loneSurrogates
    }

    func error(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? position, reason: reason)
    }

    mutating func skipWhitespace() {
        while position < input.count {
            switch input[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// The next significant byte, not consumed.
    mutating func peek() throws(JSONParseError) -> UInt8 {
        skipWhitespace()
        guard position < input.count else { throw error(.unexpectedEnd) }
        return input[position]
    }

    mutating func expect(_ byte: UInt8) throws(JSONParseError) {
        let next = try peek()
        guard next == byte else { throw error(.unexpectedByte(next)) }
        position += 1
    }

    /// Only whitespace may follow the top-level value.
    mutating func expectEnd() throws(JSONParseError) {
        skipWhitespace()
        guard position == input.count else { throw error(.trailingCharacters) }
    }

    /// Consumes `open` and reports whether the container has members; an empty one is
    /// consumed whole. Pair with `nextElement(close:)` after each member.
    mutating func beginContainer(open: UInt8, close: UInt8) throws(JSONParseError) -> Bool {
        try expect(open)
        depth += 1
        guard depth <= maximumDepth else { throw error(.nestingTooDeep, at: position - 1) }
        if try peek() == close {
            position += 1
            depth -= 1
            return false
        }
        return true
    }

    /// After a member: consumes `,` (true, another member follows) or `close` (false).
    mutating func nextElement(close: UInt8) throws(JSONParseError) -> Bool {
        let next = try peek()
        position += 1
        if next == UInt8(ascii: ",") { return true }
        if next == close {
            depth -= 1
            return false
        }
        position -= 1
        throw error(.unexpectedByte(next))
    }

    /// `bytes: .any` lets bytes that are not UTF-8 through, for a field whose producer
    /// copies binary data into the string (wal2json prints a logical message's bytes as they are).
    mutating func scanString(bytes: StringBytes = .utf8) throws(JSONParseError) -> StringToken {
        try expect(UInt8(ascii: "\""))
        let start = position
        var hasEscapes = false
        var hasLoneSurrogate = false
        while true {
            // Fast path: printable ASCII that needs no attention, on a local cursor so it stays in a register.
            var cursor = position
            while cursor < input.count {
                let byte = input[cursor]
                guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else { break }
                cursor += 1
            }
            position = cursor
            guard position < input.count else { throw error(.unexpectedEnd) }
            let byte = input[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return StringToken(content: start..<(position - 1), hasEscapes: hasEscapes, hasLoneSurrogate: hasLoneSurrogate)
            case UInt8(ascii: "\\"):
                hasEscapes = true
                if try !scanEscape() { hasLoneSurrogate = true }
            case ..<0x20:
                throw error(.controlCharacterInString)
            default:
                if bytes == .any {
                    position += 1
                    continue
                }
                guard let length = Self.utf8SequenceLength(input, at: position) else { throw error(.invalidUTF8) }
                position += length
            }
        }
    }

    /// One escape; false for a lone surrogate half that `loneSurrogates` keeps.
    private mutating func scanEscape() throws(JSONParseError) -> Bool {
        let escapeStart = position
        position += 1
        guard position < input.count else { throw error(.unexpectedEnd) }
        switch input[position] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            position += 1
        case UInt8(ascii: "u"):
            let unit = try hex4(at: position + 1)
            position += 5
            guard (0xD800...0xDFFF).contains(unit) else { return true }
            if unit <= 0xDBFF, position + 1 < input.count, input[position] == UInt8(ascii: "\\"),
               input[position + 1] == UInt8(ascii: "u"),
               let low = try? hex4(at: position + 2), (0xDC00...0xDFFF).contains(low) {
                position += 6
                return true
            }
            guard loneSurrogates == .kept else { throw error(.unpairedSurrogate, at: escapeStart) }
            return false
        default:
            throw error(.invalidEscape, at: escapeStart)
        }
        return true
    }

    func hex4(at offset: Int) throws(JSONParseError) -> UInt32 {
        guard offset + 4 <= input.count else { throw error(.invalidUnicodeEscape, at: offset - 2) }
        var value: UInt32 = 0
        for index in offset..<(offset + 4) {
            guard let digit = Self.hexValue(input[index]) else { throw error(.invalidUnicodeEscape, at: offset - 2) }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Appends the decoded text of a token that `scanString` validated.
    func unescape(_ token: StringToken, into output: inout [UInt8]) {
        guard token.hasEscapes else {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: input[token.content]))
            return
        }
        var index = token.content.lowerBound
        let end = token.content.upperBound
        while index < end {
            let byte = input[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            let kind = input[index + 1]
            index += 2
            switch kind {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = (try? hex4(at: index)) ?? 0
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = (try? hex4(at: index + 2)) ?? 0xDC00
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                }
                Self.appendUTF8(scalar, to: &output)
            default: output.append(kind)
            }
        }
    }

    static func appendUTF8(_ scalar: UInt32, to output: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            output.append(UInt8(scalar))
        case ..<0x800:
            output.append(UInt8(0xC0 | scalar >> 6))
            output.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            output.append(UInt8(0xE0 | scalar >> 12))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        default:
            output.append(UInt8(0xF0 | scalar >> 18))
            output.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// The length of the well-formed UTF-8 sequence starting at a byte >= 0x80, or nil
    /// (overlong forms, surrogates, values past U+10FFFF and truncated sequences are rejected).
    static func utf8SequenceLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int? {
        guard let (length, secondRange) = UTF8Repair.shape(lead: bytes[index]) else { return nil }
        guard index + length <= bytes.count, secondRange.contains(bytes[index + 1]) else { return nil }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return nil }
        return length
    }

    /// Scans `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` and returns its range.
    mutating func scanNumber() throws(JSONParseError) -> Range<Int> {
        skipWhitespace()
        let start = position
        if position < input.count, input[position] == UInt8(ascii: "-") { position += 1 }
        guard position < input.count else { throw error(.invalidNumber, at: start) }
        if input[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            guard skipDigits() > 0 else { throw error(.invalidNumber, at: start) }
        }
        if position < input.count, input[position] == UInt8(ascii: ".") {
            position += 1
            guard skipDigits() > 0 else { throw error(.invalidNumber, at: start) }
        }
        if position < input.count, input[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < input.count, input[position] == UInt8(ascii: "+") || input[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard skipDigits() > 0 else { throw error(.invalidNumber, at: start) }
        }
        return start..<position
    }

    private mutating func skipDigits() -> Int {
        let start = position
        while position < input.count, input[position] &- UInt8(ascii: "0") < 10 { position += 1 }
        return position - start
    }

    mutating func scanLiteral() throws(JSONParseError) -> Literal {
        let first = try peek()
        let (word, literal): (StaticString, Literal) = switch first {
        case UInt8(ascii: "t"): ("true", .true)
        case UInt8(ascii: "f"): ("false", .false)
        case UInt8(ascii: "n"): ("null", .null)
        default: throw error(.unexpectedByte(first))
        }
        let length = word.utf8CodeUnitCount
        guard matches(word, at: position) else { throw error(.invalidLiteral) }
        position += length
        return literal
    }

    /// Validates and passes over one value of any kind.
    /// Validates one value and moves past it, iteratively: `open` holds the closing byte of
    /// each container it is inside, so depth costs heap, not stack (the scanner's own bound
    /// still applies to each container it enters).
    mutating func skipValue() throws(JSONParseError) {
        var open: [UInt8] = []
        repeat {
            if open.last == UInt8(ascii: "}") {
                _ = try scanString()
                try expect(UInt8(ascii: ":"))
            }
            switch try peek() {
            case UInt8(ascii: "\""): _ = try scanString()
            case let bracket where bracket == UInt8(ascii: "{") || bracket == UInt8(ascii: "["):
                let close = bracket == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if try beginContainer(open: bracket, close: close) {
                    open.append(close)
                    continue
                }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
            default: _ = try scanLiteral()
            }
            while let close = open.last, try !nextElement(close: close) { open.removeLast() }
        } while !open.isEmpty
    }

    /// Whether `token` decodes to exactly `bytes` (object keys are compared without building a String).
    func token(_ token: StringToken, equals bytes: StaticString) -> Bool {
        guard !token.hasEscapes else {
            var decoded: [UInt8] = []
            unescape(token, into: &decoded)
            return decoded.elementsEqual(UnsafeBufferPointer(start: bytes.utf8Start, count: bytes.utf8CodeUnitCount))
        }
        return token.content.count == bytes.utf8CodeUnitCount && matches(bytes, at: token.content.lowerBound)
    }

    private func matches(_ word: StaticString, at offset: Int) -> Bool {
        let length = word.utf8CodeUnitCount
        guard offset + length <= input.count else { return false }
        for index in 0..<length where input[offset + index] != word.utf8Start[index] { return false }
        return true
    }

    func string(_ token: StringToken) -> String {
        guard token.hasEscapes else {
            return String(decoding: UnsafeBufferPointer(rebasing: input[token.content]), as: UTF8.self)
        }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(token.content.count)
        unescape(token, into: &decoded)
        return String(decoding: decoded, as: UTF8.self)
    }

    func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: input[range]), as: UTF8.self)
    }
}
