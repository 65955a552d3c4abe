import Core
import Testing
@testable import Decoding

@Suite struct JSONParserTests {
    @Test func parsesEveryKindKeepingMemberOrder() throws {
        let value = try JSONParser.parse(#" { "z" : [1, -2.5e+10, true, false, null, "x"], "a": {}, "m": [], "z": 0 } "#)
        let expected: JSONValue = .object([
            ("z", .array([.number("1"), .number("-2.5e+10"), .bool(true), .bool(false), .null, .string("x")])),
            ("a", .object([])),
            ("m", .array([])),
            ("z", .number("0")),
        ])
        #expect(value == expected)
        #expect(value["a"] == .object([]))
        #expect(value["z"] == expected["z"])
        #expect(value["missing"] == nil)
    }

    /// As Postgres reads a `json` value: a repeated key means its last value.
    @Test func aRepeatedKeyReadsAsItsLastValue() throws {
        let document = try JSONParser.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(document["a"] == .number("3"))
        #expect(document.distinctMembers?.map(\.key) == ["a", "b"])
        #expect(document.distinctMembers?.map(\.value) == [.number("3"), .number("2")])
        #expect(JSONValue.array([]).distinctMembers == nil)
    }

    @Test func keepsNumberTextExactly() throws {
        let numeric = "1234567890123456789012345678.0123456789"
        let value = try JSONParser.parse("[\(numeric), 9223372036854775807, -9223372036854775808, -0, 1E-7, 0.10]")
        #expect(value == .array([.number(numeric), .number("9223372036854775807"), .number("-9223372036854775808"),
                                 .number("-0"), .number("1E-7"), .number("0.10")]))
    }

    @Test func decodesEscapesAndUnicode() throws {
        let value = try JSONParser.parse(#"["\"\\\/\b\f\n\r\t", "\u00e9\u4E2D", "\ud83d\ude00", "\u0000", "raw é 😀"]"#)
        #expect(value == .array([.string("\"\\/\u{8}\u{C}\n\r\t"), .string("é中"), .string("😀"), .string("\u{0}"),
                                 .string("raw é 😀")]))
    }

    @Test func parsesBytesOfEveryContainerKind() throws {
        let bytes: [UInt8] = Array(#"{"k":"v"}"#.utf8)
        #expect(try JSONParser.parse(bytes) == .object([("k", .string("v"))]))
        #expect(try JSONParser.parse(bytes[...]) == .object([("k", .string("v"))]))
        #expect(try JSONParser.parse(bytes.lazy.map { $0 }) == .object([("k", .string("v"))]))
    }

    static let errorCases: [(input: [UInt8], offset: Int, reason: JSONParseError.Reason)] = [
        (Array("".utf8), 0, .unexpectedEnd),
        (Array("   ".utf8), 3, .unexpectedEnd),
        (Array("[1,]".utf8), 3, .unexpectedByte(UInt8(ascii: "]"))),
        (Array("[1 2]".utf8), 3, .unexpectedByte(UInt8(ascii: "2"))),
        (Array(#"{"a" 1}"#.utf8), 5, .unexpectedByte(UInt8(ascii: "1"))),
        (Array(#"{1:2}"#.utf8), 1, .unexpectedByte(UInt8(ascii: "1"))),
        (Array("+1".utf8), 0, .unexpectedByte(UInt8(ascii: "+"))),
        (Array("[tru]".utf8), 1, .invalidLiteral),
        (Array("nul".utf8), 0, .invalidLiteral),
        (Array("-".utf8), 0, .invalidNumber),
        (Array("[1.]".utf8), 1, .invalidNumber),
        (Array("1e+".utf8), 0, .invalidNumber),
        (Array("[01]".utf8), 2, .unexpectedByte(UInt8(ascii: "1"))),
        (Array(#""\x""#.utf8), 1, .invalidEscape),
        (Array(#"["\u12G4"]"#.utf8), 2, .invalidUnicodeEscape),
        (Array(#""\u12"#.utf8), 1, .invalidUnicodeEscape),
        (Array(#""\ud83d""#.utf8), 1, .unpairedSurrogate),
        (Array(#""\ud83d\u0041""#.utf8), 1, .unpairedSurrogate),
        (Array(#""ab\ude00""#.utf8), 3, .unpairedSurrogate),
        (Array("\"a\nb\"".utf8), 2, .controlCharacterInString),
        ([0x22, 0xC3, 0x28, 0x22], 1, .invalidUTF8),
        ([0x22, 0xC0, 0xAF, 0x22], 1, .invalidUTF8),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1, .invalidUTF8),
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1, .invalidUTF8),
        ([0x22, 0x61, 0xE2, 0x82], 2, .invalidUTF8),
        (Array("\"abc".utf8), 4, .unexpectedEnd),
        (Array("{} x".utf8), 3, .trailingCharacters),
        (Array("1 2".utf8), 2, .trailingCharacters),
        (Array(repeating: UInt8(ascii: "["), count: 513), 512, .nestingTooDeep),
    ]

    @Test(arguments: errorCases)
    func rejectsMalformedInputWithOffset(_ input: [UInt8], _ offset: Int, _ reason: JSONParseError.Reason) {
        #expect(throws: JSONParseError(offset: offset, reason: reason)) { try JSONParser.parse(input) }
    }

    @Test func acceptsNestingUpToTheLimit() throws {
        let depth = JSONParser.maximumDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        _ = try JSONParser.parse(text)
    }

    /// Beyond the bound, `.emptied` checks a container to its end without the stack and
    /// keeps it empty; what lies above the bound comes back whole, and a malformed deep part
    /// is still an error.
    @Test func deepValuesCanBeEmptiedInsteadOfRefused() throws {
        let depth = 100_000
        let deep = String(repeating: #"{"a":["#, count: depth) + "1" + String(repeating: "]}", count: depth)
        let document = try JSONParser.parse(#"[{"name": "kept", "meta": \#(deep)}]"#, deepValues: .emptied)
        guard case .array(let elements) = document, case .object(let members)? = elements.first else {
            Issue.record("\(document)")
            return
        }
        #expect(members.first?.value == .string("kept"))
        var level = try #require(members.last?.value)
        var kept = 2
        while case .object(let inner) = level, let next = inner.first?.value, case .array(let items) = next {
            kept += 2
            guard let item = items.first else { break }
            level = item
        }
        #expect(kept == JSONParser.maximumDepth)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep, deepValues: .refused) }
        for broken in [String(deep.dropLast()), String(repeating: "[", count: depth) + "}", deep + "]"] {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(broken, deepValues: .emptied) }
        }
    }

    @Test func describesErrors() {
        #expect(JSONParseError(offset: 3, reason: .unexpectedByte(UInt8(ascii: "]"))).description
            == "unexpected character ']' at byte 3")
        #expect(JSONParseError(offset: 0, reason: .unexpectedByte(0x01)).description == "unexpected byte 0x1 at byte 0")
        #expect(JSONParseError(offset: 7, reason: .unpairedSurrogate).description
            == "unpaired UTF-16 surrogate in \\u escape at byte 7")
    }
}
