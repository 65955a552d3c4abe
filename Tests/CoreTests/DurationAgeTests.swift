import Core
import Testing

@Suite struct DurationAgeTests {
    @Test(arguments: [("30d", 2_592_000), ("12h", 43_200), ("15m", 900), ("90s", 90), ("0d", 0)])
    func agesAreANumberAndAUnit(_ text: String, _ seconds: Int64) {
        #expect(Duration(age: text) == .seconds(seconds))
    }

    @Test(arguments: ["", "d", "30", "30 d", "-1d", "1.5h", "30w", "30D", "١٢h", "99999999999999999d"])
    func anythingElseIsRefused(_ text: String) {
        #expect(Duration(age: text) == nil)
    }
}
