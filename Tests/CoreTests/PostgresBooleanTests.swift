import Core
import Testing

/// Read as Postgres' `parse_bool` reads text: a column retyped from boolean to text holds
/// `true`, and an operator may write any form Postgres would take.
@Suite struct PostgresBooleanTests {
    @Test(arguments: ["t", "true", "TRUE", "tr", "y", "yes", "ye", "on", "ON", "1", " true ", "\tyes\n"])
    func trueForms(text: String) {
        #expect(postgresBoolean(text) == true)
    }

    @Test(arguments: ["f", "false", "fals", "n", "no", "of", "off", "OFF", "0", " f"])
    func falseForms(text: String) {
        #expect(postgresBoolean(text) == false)
    }

    /// `o` is both `on` and `off`; the rest is no boolean at all.
    @Test(arguments: ["", " ", "o", "maybe", "truee", "2", "10", "yes please", "ｔｒｕｅ", "t\u{0}"])
    func otherTextIsNoBoolean(text: String) {
        #expect(postgresBoolean(text) == nil)
    }
}
