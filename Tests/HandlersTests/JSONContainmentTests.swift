import Core
import Decoding
import Handlers
import PlannedEffects
import Testing

/// Each case is what `SELECT a::jsonb @> b::jsonb` answers on PostgreSQL 15.
@Suite struct JSONContainmentTests {
    @Test(arguments: [
        (#"[{"field":"status","value":"done"}]"#, #"[{"field":"status","value":"done"}]"#, true),
        (#"[{"field":"status","value":"done","op":"eq"},{"field":"x"}]"#, #"[{"field":"status","value":"done"}]"#, true),
        (#"[{"field":"status","value":"open"}]"#, #"[{"field":"status","value":"done"}]"#, false),
        (#"[{"field":"status"},{"value":"done"}]"#, #"[{"field":"status","value":"done"}]"#, false),
        (#"{"a":{"b":[1,2,3]}}"#, #"{"a":{"b":[3,1]}}"#, true),
        (#"{"a":1}"#, #"{"a":1.0}"#, true),
        (#"{"a":1,"a":2}"#, #"{"a":2}"#, true),
        (#"["foo","bar"]"#, #""foo""#, true),
        (#"[["foo"]]"#, #""foo""#, false),
        (#"{"a":[1]}"#, #"{"a":1}"#, false),
        (#"[1,2]"#, #"[]"#, true),
        (#"{}"#, #"{}"#, true),
        (#""a""#, #""a""#, true),
        (#"null"#, #"false"#, false),
        (#"[[1,2]]"#, #"[1]"#, false),
        (#"[1]"#, #"[[1]]"#, false),
    ])
    func containsAsJsonbDoes(container: String, contained: String, expected: Bool) throws {
        #expect(try JSONParser.parse(container).contains(try JSONParser.parse(contained)) == expected)
    }
}
