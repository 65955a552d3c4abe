import Foundation
import Testing

/// `log.format = "json"` on the real binary: `run` writes nothing to stderr but JSON lines, each
/// with the five members, and its known lines carry their metadata.
@Suite struct JSONLogsTests {
    @Test func runWritesOneJSONObjectPerStderrLine() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let secret = "service-key-\(UUID().uuidString)"
        var environment = setup.environment
        environment["CHANGERELAY_LOG_FORMAT"] = "json"
        environment["CHANGERELAY_LOG_LEVEL"] = "debug"
        environment["CHANGERELAY_SERVICE_KEY"] = secret
        let run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("streaming") { run.stderr.contains(#""message":"streaming""#) }
        try setup.db.execute("INSERT INTO items VALUES (1, 'a \"quoted\" value' || chr(10) || 'on two lines')")
        try RunPipelineTests.waitFor("the delivery") { setup.receiver.requestCount >= 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")

        let stderr = run.stderr
        #expect(!stderr.contains(secret))
        #expect(stderr.hasSuffix("\n"))
        var records: [[String: Any]] = []
        for line in stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let record = parsed as? [String: Any] else {
                Issue.record("a stderr line that is not a JSON object: \(line)")
                continue
            }
            #expect(Set(record.keys) == ["time", "level", "label", "message", "metadata"], "\(line)")
            #expect(record["metadata"] is [String: Any], "\(line)")
            records.append(record)
        }
        func record(_ message: String) -> [String: Any]? { records.first { $0["message"] as? String == message } }
        let streaming = try #require(record("streaming"), "\(stderr.prefix(3000))")
        #expect(streaming["level"] as? String == "info" && streaming["label"] as? String == "changerelay.source")
        let metadata = try #require(streaming["metadata"] as? [String: String])
        #expect(metadata["slot"] == "changerelay")
        #expect(metadata["plugin"] == "pgoutput")
        #expect(metadata["from"]?.contains("/") == true)
        let committed = try #require(record("batch committed"))
        #expect(committed["level"] as? String == "debug")
        #expect((committed["metadata"] as? [String: String])?["checkpoint"] != nil)
        #expect(record("stopped")?["label"] as? String == "changerelay.run")
    }
}
