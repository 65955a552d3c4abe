import Core
import Testing
@testable import Decoding

@Suite struct JSONWriterTests {
    @Test func escapesStrings() {
        var writer = JSONWriter()
        writer.string("a\"b\\c/\n\r\t\u{8}\u{C}\u{1}\u{1F}\u{7F} é 中 😀")
        #expect(writer.string == #""a\"b\\c/\n\r\t\b\f\u0001\u001f"# + "\u{7F} é 中 😀\"")
    }

    /// A json column's value copied for a jsonb column: the NUL escape jsonb refuses becomes
    /// U+FFFD, a number numeric cannot hold becomes a string; the rest is copied as it is, and
    /// without the setting nothing changes.
    @Test func copiesForJSONBWithoutWhatJSONBRefuses() throws {
        let json = #"{"a": "x\u0000y", "\u0000k": 1e1000000, "kept": "\\u0000", "n": [1e131071, 1e131072, 1e-16383, -15e-16384, 0e99999999, -0.5]}"#
        var storable = JSONWriter(storableAsJSONB: true)
        try storable.compactJSON(json.utf8)
        #expect(storable.string == #"{"a":"x\ufffdy","\ufffdk":"1e1000000","kept":"\\u0000","n":[1e131071,"1e131072",1e-16383,"-15e-16384",0e99999999,-0.5]}"#)
        var plain = JSONWriter()
        try plain.compactJSON(json.utf8)
        #expect(plain.string == #"{"a":"x\u0000y","\u0000k":1e1000000,"kept":"\\u0000","n":[1e131071,1e131072,1e-16383,-15e-16384,0e99999999,-0.5]}"#)
    }

    /// Postgres' numeric limits, each side of each (checked against PostgreSQL 15's jsonb input).
    @Test(arguments: [
        ("1e131071", true), ("1e131072", false), ("1" + String(repeating: "0", count: 131_071), true),
        ("1" + String(repeating: "0", count: 131_072), false), ("0.001e131074", true), ("0.001e131075", false),
        ("1e-16383", true), ("1e-16384", false), ("1.5e-16383", false), ("0." + String(repeating: "0", count: 16_382) + "1", true),
        ("0." + String(repeating: "0", count: 16_383) + "1", false), ("0e99999999", true), ("1e2147483648", false),
        ("-12.50e+3", true), ("0", true), ("-0.0", true),
    ])
    func numericLimits(number: String, holds: Bool) {
        #expect(Array(number.utf8).withUnsafeBufferPointer { NumericLimits.holds($0) } == holds)
    }

    /// One U+FFFD for each maximal subpart: `E2 82` (a three-byte sequence cut short) is one,
    /// `C0 AF` (a lead byte no sequence starts with, then a stray continuation) two.
    @Test func replacesInvalidUTF8InByteStrings() {
        var writer = JSONWriter()
        writer.string(utf8: [0x61, 0xFF, 0x62, 0xC3, 0xA9, 0xE2, 0x82, 0x0A, 0xC0, 0xAF, 0xF0, 0x9F, 0x98] as [UInt8])
        #expect(writer.string == "\"a\u{FFFD}bé\u{FFFD}\\n\u{FFFD}\u{FFFD}\u{FFFD}\"")
    }

    /// The wal2json path decodes its records with `String(decoding:as:)`: the pgoutput path
    /// must replace the same bytes the same way, whatever they are, so a SQL_ASCII database's
    /// text prints alike through both.
    @Test func repairsBytesAsStringDecodingDoes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x41, 0x80, 0x8F, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 1...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            var writer = JSONWriter()
            writer.string(utf8: bytes)
            #expect(writer.string == "\"" + String(decoding: bytes, as: UTF8.self) + "\"", "\(bytes)")
            let repaired = bytes.withUnsafeBufferPointer { UTF8Repair.repaired($0) } ?? bytes
            #expect(repaired == Array(String(decoding: bytes, as: UTF8.self).utf8), "\(bytes)")
        }
    }

    /// A SQL_ASCII database's `json` column keeps bytes that are not UTF-8 inside its strings:
    /// they become U+FFFD, for jsonb too; bytes outside a string are still no JSON.
    @Test func compactsJSONWhoseStringsAreNotUTF8() throws {
        let json: [UInt8] = Array(#"{"k": "v"#.utf8) + [0xE2, 0x82] + Array(#"", "\#u{E9}": [1]}"#.utf8)
        for storable in [false, true] {
            var writer = JSONWriter(storableAsJSONB: storable)
            writer.beginArray()
            writer.number(1)
            try writer.compactJSON(json)
            writer.endArray()
            #expect(writer.string == "[1,{\"k\":\"v\u{FFFD}\",\"é\":[1]}]")
        }
        var writer = JSONWriter()
        #expect(throws: JSONParseError.self) { try writer.compactJSON([0x5B, 0xFF, 0x5D] as [UInt8]) }
        #expect(writer.string.isEmpty)
    }

    @Test func placesCommasAndWritesScalars() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a")
        writer.beginArray()
        writer.number(Int64.min)
        writer.number(0)
        writer.number(text: "1234567890123456789012345678.0123456789".utf8)
        writer.bool(true)
        writer.null()
        writer.beginObject()
        writer.endObject()
        writer.beginArray()
        writer.endArray()
        writer.endArray()
        writer.key("k\"ey")
        writer.bool(false)
        writer.endObject()
        writer.newline()
        writer.string("next")
        #expect(writer.string == "{\"a\":[-9223372036854775808,0,1234567890123456789012345678.0123456789,true,null,{},[]],\"k\\\"ey\":false}\n\"next\"")
    }

    @Test func writesParsedValuesBackCompactly() throws {
        let text = #"{"a": [1, 2.50, {"b": null}], "c": "x\ny \u00e9", "d": true}"#
        var writer = JSONWriter()
        writer.value(try JSONParser.parse(text))
        #expect(writer.string == #"{"a":[1,2.50,{"b":null}],"c":"x\ny é","d":true}"#)
    }

    @Test func compactsJSONTextKeepingTokens() throws {
        var writer = JSONWriter()
        writer.beginArray()
        try writer.compactJSON(" {\n  \"a\" : [ 1 , 2.50e3 ] ,\n  \"b\" : \"x \\u00e9\\n\" , \"c\":[ ] , \"d\" : { } } ".utf8)
        try writer.compactJSON("null".utf8)
        writer.endArray()
        #expect(writer.string == #"[{"a":[1,2.50e3],"b":"x \u00e9\n","c":[],"d":{}},null]"#)
    }

    @Test func leavesTheBufferUntouchedWhenCompactingFails() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.number(1)
        #expect(throws: JSONParseError(offset: 7, reason: .unexpectedByte(UInt8(ascii: "}")))) {
            try writer.compactJSON(#"{"a":1,}"#.utf8)
        }
        writer.number(2)
        writer.endArray()
        #expect(writer.string == "[1,2]")
    }

    /// A json or jsonb column holds values as deep as Postgres' stack allows, far past the
    /// parser's bound: copying one must neither refuse it nor use the stack for its depth.
    @Test func compactsValuesNestedFarDeeperThanTheParsersBound() throws {
        let depth = 200_000
        let deep = String(repeating: "[ {\"k\" : ", count: depth) + " 1 " + String(repeating: "} ]", count: depth)
        var writer = JSONWriter()
        try writer.compactJSON(deep.utf8)
        #expect(writer.string == String(repeating: #"[{"k":"#, count: depth) + "1" + String(repeating: "}]", count: depth))
    }

    @Test(arguments: [
        "[}", "{]", "[1 2]", #"{"a" 1}"#, "{1:2}", #"{"a":1,}"#, "[1,]", "[[1]", "[1]]", #"{"a":{"b":[}}"#,
        String(repeating: "[", count: 100_000), String(repeating: "[", count: 100_000) + "]",
        "", " ", "[01]", #"["\x"]"#,
    ])
    func refusesMalformedTextAtAnyDepthAndWritesNothing(text: String) {
        var writer = JSONWriter()
        writer.beginArray()
        writer.number(1)
        #expect(throws: JSONParseError.self) { try writer.compactJSON(text.utf8) }
        writer.endArray()
        #expect(writer.string == "[1]")
    }

    /// Postgres' json keeps a lone surrogate escape as written (`jsonb` refuses it): such a
    /// value is copied with U+FFFD in its place, so it neither stops the stream nor makes
    /// output a strict reader or a jsonb column would refuse. Pairs and other escapes stay.
    @Test(arguments: [
        (#""\uDE00""#, #""\ufffd""#),
        (#"["\ud83d", "a\uD83Dx", "\uD83D\u0041"]"#, #"["\ufffd","a\ufffdx","\ufffd\u0041"]"#),
        (#"{"\udbff": "\uD83D\uDE00 \n \\uDE00 \uDE00\uD83D"}"#, #"{"\ufffd":"\uD83D\uDE00 \n \\uDE00 \ufffd\ufffd"}"#),
        (#""\uD83D\uD83D\uDE00""#, #""\ufffd\uD83D\uDE00""#),
    ])
    func writesLoneSurrogateEscapesAsTheReplacementCharacter(text: String, expected: String) throws {
        var writer = JSONWriter()
        try writer.compactJSON(text.utf8)
        #expect(writer.string == expected)
        _ = try JSONParser.parse(Array(writer.string.utf8))
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func reusesItsStorage() {
        var writer = JSONWriter(capacity: 64)
        writer.string("first")
        writer.removeAll()
        #expect(writer.bytes.isEmpty)
        writer.string("second")
        #expect(writer.string == "\"second\"")
    }
}
