import RelayConfiguration
import Testing

@Suite struct TOMLArrayTableTests {
    @Test func eachHeaderStartsAnEntryWithItsOwnKeys() throws {
        let document = try TOMLDocument(parsing: """
            [source]
            slot = "s"

            [[schedules]]   # the first
            name = "a"
            cron = "* * * * *"

            [[ schedules ]]
            name = "b"
            tags = ["x",
                    "y"]

            [delivery]
            concurrency = 4
            """)
        let entries = try #require(document.arrayTables["schedules"])
        #expect(entries.count == 2)
        #expect(entries[0].line == 4)
        #expect(entries[0].values["name"]?.value == .string("a"))
        #expect(entries[0].values["cron"]?.line == 6)
        #expect(entries[1].values["tags"]?.value == .array([.string("x"), .string("y")]))
        // Keys after an entry belong to it until the next header; a table header ends it.
        #expect(document.values["delivery.concurrency"]?.value == .integer(4))
        #expect(document.values["source.slot"]?.value == .string("s"))
        #expect(document.values["schedules.name"] == nil)
    }

    struct BadCase: CustomStringConvertible {
        var text: String
        var error: String
        var description: String { error }
    }

    static let badCases: [BadCase] = [
        BadCase(text: "[[schedules]\nname = \"a\"\n", error: "line 1: expected ']]' to close the header of [[schedules]]"),
        BadCase(text: "[[schedules] ]\n", error: "line 1: expected ']]' to close the header of [[schedules]]"),
        BadCase(text: "[[]]\n", error: "line 1: expected a key"),
        BadCase(text: "[[schedules]] x\n", error: "line 1: unexpected text after the value"),
        BadCase(text: "[schedules]\n[[schedules]]\n", error: "line 2: [[schedules]] is already defined as the table [schedules]"),
        BadCase(text: "[[schedules]]\n[schedules]\n", error: "line 2: table [schedules] is already an array of tables ([[schedules]])"),
        BadCase(text: "schedules = 1\n[[schedules]]\n", error: "line 2: [[schedules]] is already set as the key 'schedules'"),
        BadCase(text: "[[schedules]]\n[schedules.extra]\n", error: "line 2: [schedules.extra] would be a table inside the array of tables [[schedules]], which is not supported"),
        BadCase(text: "[[schedules]]\n[[schedules.extra]]\n", error: "line 2: [schedules.extra] would be a table inside the array of tables [[schedules]], which is not supported"),
        BadCase(text: "[[schedules]]\nname = \"a\"\nname = \"b\"\n", error: "line 3: key 'name' is set twice in [[schedules]] entry 0"),
        BadCase(text: "[[schedules]]\n[[schedules]]\nname = \"a\"\nname = \"b\"\n", error: "line 4: key 'name' is set twice in [[schedules]] entry 1"),
    ]

    @Test(arguments: badCases)
    func badFormsAreRefusedWithTheirLine(_ test: BadCase) {
        do {
            _ = try TOMLDocument(parsing: test.text)
            Issue.record("parsed: \(test.text)")
        } catch {
            #expect(error.description == test.error)
        }
    }
}
