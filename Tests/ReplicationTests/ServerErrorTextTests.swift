@testable import Replication
import Testing

/// The fields of a server error, as libpq prints them, less the row data they may quote.
@Suite struct ServerErrorTextTests {
    @Test func everyFieldIsPrintedInLibpqsOrder() {
        let text = ServerErrorText(severity: "ERROR", primary: "duplicate key value violates unique constraint \"k\"",
                                   detail: "Key (id)=(7) already exists.", hint: "Look.", context: "SQL function \"f\"")
        #expect(text.rendered == """
            ERROR:  duplicate key value violates unique constraint "k"
            DETAIL:  Key (id)=(…) already exists.
            HINT:  Look.
            CONTEXT:  SQL function "f"
            """)
    }

    @Test func aFailingRowIsNotShown() {
        let text = ServerErrorText(severity: "ERROR", primary: "new row for relation \"d\" violates check constraint \"c\"",
                                   detail: "Failing row contains (1, http://u:pw@host/, {\"Authorization\": \"Bearer x\"}).")
        #expect(!text.rendered.contains("pw"))
        #expect(!text.rendered.contains("Bearer"))
        #expect(text.rendered.contains("check constraint \"c\""))
    }

    @Test(arguments: [
        ("COPY deliveries, line 3, column headers: \"{\"\"Authorization\"\": \"\"Bearer x\"\"}\"", "COPY deliveries, line 3, column headers"),
        ("COPY deliveries, line 3: \"1\tBearer x\"", "COPY deliveries, line 3"),
        ("COPY deliveries, line 3, column n: \"\"", "COPY deliveries, line 3, column n"),
        ("PL/pgSQL function f() line 4 at RAISE", "PL/pgSQL function f() line 4 at RAISE"),
        ("SQL statement \"SELECT 1\"\nCOPY t, line 1: \"secret\"", "SQL statement \"SELECT 1\"\nCOPY t, line 1"),
    ])
    func aCopysContextLosesTheDataItQuotes(context: String, kept: String) {
        #expect(ServerErrorText.withoutCopiedData(context) == kept)
    }

    /// A key violation names the key's columns, not its values; an exclusion violation's
    /// other row too.
    @Test(arguments: [
        ("Key (target_url)=(http://alice:pw-SECRET@h/) already exists.", "Key (target_url)=(…) already exists."),
        (#"Key (ordering_key)=(a)b=(c) is not present in table "fkt"."#, #"Key (ordering_key)=(…) is not present in table "fkt"."#),
        (#"Key (id)=(7) is still referenced from table "child"."#, #"Key (id)=(…) is still referenced from table "child"."#),
        ("Key (during)=([1,5)) conflicts with existing key (during)=([2,3)).", "Key (during)=(…) conflicts with existing key (…)."),
        ("Key (a, b)=(1, x)", "Key (a, b)=(…)"),
        ("A field with precision 5, scale 2 must round to an absolute value less than 10^3.",
         "A field with precision 5, scale 2 must round to an absolute value less than 10^3."),
    ])
    func aKeysValuesAreNotShown(detail: String, shown: String) {
        #expect(ServerErrorText.withoutRow(detail) == shown)
    }

    /// A data error (class 22) quotes the value it could not read; other errors' quotes are names.
    @Test func aValueTheServerCouldNotReadIsNotShown() {
        let data = ServerErrorText(sqlState: "22P02", primary: #"invalid input syntax for type integer: "Bearer x""#)
        #expect(data.rendered == "ERROR:  invalid input syntax for type integer: (the value is not shown)")
        let json = ServerErrorText(sqlState: "22P02", primary: "invalid input syntax for type json",
                                   detail: #"Token "secret" is invalid."#, context: #"JSON data, line 1: {"a": secret"#)
        #expect(json.rendered.contains("CONTEXT:  JSON data, line 1") && !json.rendered.contains("secret"), "\(json.rendered)")
        #expect(json.rendered.contains(#"DETAIL:  Token "…" is invalid."#), "\(json.rendered)")
        let named = ServerErrorText(sqlState: "42P01", primary: #"relation "missing" does not exist"#)
        #expect(named.rendered == #"ERROR:  relation "missing" does not exist"#)
    }

    @Test func aMissingSeverityReadsAsAnError() {
        #expect(ServerErrorText(primary: "gone").rendered == "ERROR:  gone")
    }
}
