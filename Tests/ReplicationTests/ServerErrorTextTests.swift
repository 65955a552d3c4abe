@testable import Replication
import Testing

/// The fields of a server error, as libpq prints them, less the row data they may quote.
@Suite struct ServerErrorTextTests {
    @Test func everyFieldIsPrintedInLibpqsOrder() {
        let text = ServerErrorText(severity: "ERROR", primary: "duplicate key value violates unique constraint \"k\"",
                                   detail: "Key (id)=(7) already exists.", hint: "Look.", context: "SQL function \"f\"")
        #expect(text.rendered == """
            ERROR:  duplicate key value violates unique constraint "k"
            DETAIL:  Key (id)=(7) already exists.
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

    @Test func aMissingSeverityReadsAsAnError() {
        #expect(ServerErrorText(primary: "gone").rendered == "ERROR:  gone")
    }
}
