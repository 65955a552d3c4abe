/// Compact JSON output into a reusable byte buffer.
///
/// Commas are placed automatically: call `key` before each object member's value and
/// nothing between array elements. Strings given as bytes are checked for UTF-8 and a
/// malformed sequence becomes U+FFFD, so the output is always valid JSON even when a
/// database sends text in a broken encoding.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]
    private var needsComma = false
    /// What it writes goes into a jsonb column: JSON copied in (`compactJSON`, a `json`
    /// column's value) has its `\u0000` escapes replaced with `\ufffd` and its numbers that
    /// Postgres' numeric cannot hold written as strings. A `json` column keeps both, and jsonb
    /// refuses them: without this, one such row fails every read of its batch.
    public let storableAsJSONB: Bool

    public init(capacity: Int = 1024, storableAsJSONB: Bool = false) {
        self.storableAsJSONB = storableAsJSONB
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Empties the buffer but keeps its storage, so a writer reused per batch stops allocating.
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        needsComma = false
    }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    public mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ value: String) {
        separate()
        var value = value
        value.withUTF8 { appendQuoted($0, validating: false) }
        needsComma = true
    }

    public mutating func string<Bytes: Collection<UInt8>>(utf8 value: Bytes) {
        separate()
        if value.withContiguousStorageIfAvailable({ appendQuoted($0, validating: true) }) == nil {
            Array(value).withUnsafeBufferPointer { appendQuoted($0, validating: true) }
        }
        needsComma = true
    }

    public mutating func number(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDecimal(value.magnitude)
        needsComma = true
    }

    /// Writes `text` unchanged as a number token; the caller vouches that it is a valid
    /// JSON number (which keeps a 38-digit numeric exact).
    public mutating func number<Bytes: Collection<UInt8>>(text: Bytes) {
        separate()
        bytes.append(contentsOf: text)
        needsComma = true
    }

    /// Writes `json` unchanged as one value; the caller vouches that it is a whole JSON
    /// value (one this writer produced), so it is embedded without being parsed again.
    public mutating func embedded<Bytes: Collection<UInt8>>(_ json: Bytes) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
        needsComma = true
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: Self.nullBytes)
        needsComma = true
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .number(let text): number(text: text.utf8)
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for member in members {
                key(member.key)
                self.value(member.value)
            }
            endObject()
        }
    }

    /// Validates `json` with the strict parser's rules and writes it as one value with all
    /// insignificant whitespace removed; tokens are copied byte for byte, so numbers and
    /// strings keep their exact text. On error nothing is written. Any depth is copied: the
    /// values come from json and jsonb columns, which Postgres accepts nested as deep as its
    /// stack allows, and one it stored must not be a change the stream cannot get past. For
    /// the same reason a lone surrogate escape (`"\uDE00"`, which `json` stores) is written
    /// as `\ufffd`, the replacement character: the output is then valid for every reader,
    /// `jsonb` included, and differs from the column's text only where no reader could agree.
    /// Bytes that are not UTF-8 (a SQL_ASCII database's `json` keeps them) become U+FFFD as
    /// in any other text (`UTF8Repair`), rather than a value the stream cannot get past.
    public mutating func compactJSON<Bytes: Collection<UInt8>>(_ json: Bytes) throws(JSONParseError) {
        let mark = self.mark
        separate()
        do {
            try JSONParser.withContiguousBytes(json) { buffer throws(JSONParseError) in
                do throws(JSONParseError) {
                    try copyWhole(buffer)
                } catch {
                    guard error.reason == .invalidUTF8, let repaired = UTF8Repair.repaired(buffer) else { throw error }
                    rollBack(to: mark)
                    separate()
                    try repaired.withUnsafeBufferPointer { buffer throws(JSONParseError) in try copyWhole(buffer) }
                }
            }
        } catch {
            rollBack(to: mark)
            throw error
        }
        needsComma = true
    }

    private mutating func copyWhole(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) {
        var scanner = JSONScanner(buffer, maximumDepth: .max, loneSurrogates: .kept)
        try copyCompact(&scanner)
        try scanner.expectEnd()
    }

    /// Ends the current line; the next value starts a new top-level document.
    public mutating func newline() {
        bytes.append(0x0A)
        needsComma = false
    }

    struct Mark {
        fileprivate var count: Int
        fileprivate var needsComma: Bool
    }

    var mark: Mark { Mark(count: bytes.count, needsComma: needsComma) }

    mutating func rollBack(to mark: Mark) {
        bytes.removeSubrange(mark.count...)
        needsComma = mark.needsComma
    }

    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
    private static let nullBytes: [UInt8] = Array("null".utf8)
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func appendDecimal(_ value: UInt64) {
        if value >= 10 { appendDecimal(value / 10) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    private mutating func appendQuoted(_ text: UnsafeBufferPointer<UInt8>, validating: Bool) {
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        while index < text.count {
            let byte = text[index]
            if byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            if byte >= 0x80 {
                if !validating {
                    index += 1
                    continue
                }
                if let length = JSONScanner.utf8SequenceLength(text, at: index) {
                    index += length
                    continue
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[runStart..<index]))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): appendEscape(byte)
            case 0x08: appendEscape(UInt8(ascii: "b"))
            case 0x0C: appendEscape(UInt8(ascii: "f"))
            case 0x0A: appendEscape(UInt8(ascii: "n"))
            case 0x0D: appendEscape(UInt8(ascii: "r"))
            case 0x09: appendEscape(UInt8(ascii: "t"))
            case ..<0x20:
                appendEscape(UInt8(ascii: "u"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            default:
                bytes.append(contentsOf: UTF8Repair.replacement)
                index += UTF8Repair.maximalSubpartLength(text, at: index)
                runStart = index
                continue
            }
            index += 1
            runStart = index
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[runStart..<index]))
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscape(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(byte)
    }

    /// One value, iteratively: `open` holds the closing byte of each container it is inside,
    /// so the depth costs heap, not stack.
    private mutating func copyCompact(_ scanner: inout JSONScanner) throws(JSONParseError) {
        var open: [UInt8] = []
        repeat {
            if open.last == UInt8(ascii: "}") { try copyKey(&scanner) }
            switch try scanner.peek() {
            case UInt8(ascii: "\""):
                copyString(try scanner.scanString(), of: scanner)
            case let bracket where bracket == UInt8(ascii: "{") || bracket == UInt8(ascii: "["):
                let close = bracket == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                bytes.append(bracket)
                if try scanner.beginContainer(open: bracket, close: close) {
                    open.append(close)
                    continue
                }
                bytes.append(close)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let number = UnsafeBufferPointer(rebasing: scanner.input[try scanner.scanNumber()])
                if storableAsJSONB, !NumericLimits.holds(number) {
                    bytes.append(UInt8(ascii: "\""))
                    bytes.append(contentsOf: number)
                    bytes.append(UInt8(ascii: "\""))
                } else {
                    bytes.append(contentsOf: number)
                }
            default:
                switch try scanner.scanLiteral() {
                case .true: bytes.append(contentsOf: Self.trueBytes)
                case .false: bytes.append(contentsOf: Self.falseBytes)
                case .null: bytes.append(contentsOf: Self.nullBytes)
                }
            }
            // A value is done: close every container it was the last member of.
            while let close = open.last, try !appendSeparator(scanner.nextElement(close: close)) {
                bytes.append(close)
                open.removeLast()
            }
        } while !open.isEmpty
    }

    private mutating func copyKey(_ scanner: inout JSONScanner) throws(JSONParseError) {
        copyString(try scanner.scanString(), of: scanner)
        try scanner.expect(UInt8(ascii: ":"))
        bytes.append(UInt8(ascii: ":"))
    }

    /// A scanned string with its quotes, byte for byte but for lone surrogate escapes (and
    /// `\u0000`, when storable as jsonb).
    private mutating func copyString(_ token: JSONScanner.StringToken, of scanner: JSONScanner) {
        let quoted = (token.content.lowerBound - 1)...token.content.upperBound
        let replacesNUL = storableAsJSONB && token.hasEscapes
            && Self.mayHoldNULEscape(UnsafeBufferPointer(rebasing: scanner.input[token.content]))
        guard token.hasLoneSurrogate || replacesNUL else {
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: scanner.input[quoted]))
            return
        }
        let input = scanner.input
        var index = quoted.lowerBound
        while index <= quoted.upperBound {
            guard input[index] == UInt8(ascii: "\\"), index < token.content.upperBound else {
                bytes.append(input[index])
                index += 1
                continue
            }
            guard input[index + 1] == UInt8(ascii: "u") else {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<(index + 2)]))
                index += 2
                continue
            }
            // The scanner has checked every escape: four hex digits follow, and a high half
            // followed by a low half's escape is a pair.
            let unit = (try? scanner.hex4(at: index + 2)) ?? 0
            if (0xD800...0xDBFF).contains(unit), index + 11 < token.content.upperBound,
               input[index + 6] == UInt8(ascii: "\\"), input[index + 7] == UInt8(ascii: "u"),
               (0xDC00...0xDFFF).contains((try? scanner.hex4(at: index + 8)) ?? 0) {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<(index + 12)]))
                index += 12
            } else if (0xD800...0xDFFF).contains(unit) || (unit == 0 && replacesNUL) {
                bytes.append(contentsOf: Self.replacementEscape)
                index += 6
            } else {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[index..<(index + 6)]))
                index += 6
            }
        }
    }

    private static let replacementEscape = Array("\\ufffd".utf8)

    /// Whether `content` holds the bytes `\u0000` (perhaps after an escaped backslash: the
    /// copy, which reads escape by escape, tells).
    private static func mayHoldNULEscape(_ content: UnsafeBufferPointer<UInt8>) -> Bool {
        content.indices.contains { start in content[start...].starts(with: nulEscape) }
    }

    private static let nulEscape = Array("\\u0000".utf8)

    private mutating func appendSeparator(_ more: Bool) -> Bool {
        if more { bytes.append(UInt8(ascii: ",")) }
        return more
    }
}
