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
