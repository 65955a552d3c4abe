import Core
import Testing

/// Many values travel as one array parameter; whatever a receiver or an error message puts
/// in them must come back as the same values, never as more, fewer or different ones.
@Suite struct PostgresArrayLiteralTests {
    @Test func everyValueIsQuotedAndNilIsTheUnquotedNull() {
        #expect(postgresArrayLiteral([]) == "{}")
        #expect(postgresArrayLiteral(["a", nil, "NULL", ""]) == #"{"a",NULL,"NULL",""}"#)
    }

    @Test func quotesAndBackslashesAreEscaped() {
        #expect(postgresArrayLiteral([#"say "hi""#]) == #"{"say \"hi\""}"#)
        #expect(postgresArrayLiteral([#"C:\path\"#]) == #"{"C:\\path\\"}"#)
        #expect(postgresArrayLiteral([#"\""#]) == #"{"\\\""}"#)
    }

    @Test func separatorsAndBracesStayInsideTheirValue() {
        #expect(postgresArrayLiteral(["a,b", "{c}", "}", "{", " padded "]) == #"{"a,b","{c}","}","{"," padded "}"#)
        #expect(postgresArrayLiteral(["line\nbreak\ttab"]) == "{\"line\nbreak\ttab\"}")
    }

    @Test func unicodeIsCopiedScalarByScalar() {
        // A combining accent, an emoji with a skin-tone modifier, right-to-left text.
        let values: [String?] = ["e\u{301}", "👍🏽", "שלום", "\u{FEFF}bom"]
        #expect(postgresArrayLiteral(values) == "{\"e\u{301}\",\"👍🏽\",\"שלום\",\"\u{FEFF}bom\"}")
    }
}

@Suite struct PostgresArrayElementsTests {
    @Test(arguments: [
        [String?](), ["a"], ["a", "b c", nil, "NULL", "x\"y", "back\\slash", "{}", ",", ""], ["ünï", "😀"],
    ])
    func whatTheLiteralWritesTheParserReads(_ values: [String?]) {
        #expect(postgresArrayElements(postgresArrayLiteral(values)) == values)
    }

    @Test func postgresOwnOutputIsRead() {
        #expect(postgresArrayElements("{1,abc,NULL,\"with space\",\"q\\\"uote\"}") == ["1", "abc", nil, "with space", "q\"uote"])
        #expect(postgresArrayElements("{}") == [])
        #expect(postgresArrayElements("not an array") == [])
    }
}
