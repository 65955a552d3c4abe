import Decoding
import EmbeddedPostgres
import Replication
import Testing

/// What a writer for jsonb columns copies from a `json` value is what jsonb takes: checked
/// against the server's own jsonb input, for each side of each numeric limit and for the
/// escapes jsonb refuses.
@Suite struct JSONBStorableTests {
    static let numbers = [
        "1e131071", "1e131072", "1" + String(repeating: "0", count: 131_071), "1" + String(repeating: "0", count: 131_072),
        "0.001e131074", "0.001e131075", "1e-16383", "1e-16384", "1.5e-16383", "15e-16384",
        "0." + String(repeating: "0", count: 16_382) + "1", "0." + String(repeating: "0", count: 16_383) + "1",
        "0e99999999", "1e2147483648", "1e1000000", "-12.50e+3", "-0.0",
    ]

    @Test func whatTheWriterKeepsJSONBTakesAndWhatItQuotesJSONBRefuses() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        func jsonbTakes(_ json: String) -> Bool {
            (try? db.query("SELECT $1::text::jsonb IS NOT NULL AS taken", [json])) != nil
        }
        for number in Self.numbers {
            var writer = JSONWriter(storableAsJSONB: true)
            try writer.compactJSON(Array("[\(number)]".utf8))
            let kept = writer.string == "[\(number)]"
            #expect(kept || writer.string == "[\"\(number)\"]")
            #expect(jsonbTakes("[\(number)]") == kept, "\(number.prefix(24))… (\(number.utf8.count) bytes): kept \(kept)")
            #expect(jsonbTakes(writer.string))
        }
        let escapes = #"{"a\u0000": "x\u0000y", "b": "\\u0000", "c": "\uDE00"}"#
        #expect(!jsonbTakes(escapes))
        var writer = JSONWriter(storableAsJSONB: true)
        try writer.compactJSON(Array(escapes.utf8))
        #expect(jsonbTakes(writer.string), "\(writer.string)")
    }
}
