import Core
import Decoding
import EmbeddedPostgres
import Foundation
import Testing

@Suite struct DevCommandTests {
    /// `dev` is the whole service: the sample rows reach the stand-in edge functions
    /// through the slot, the planner and the dispatcher.
    @Test func devRunsTheServiceOnSamplesAndStopsOnInterrupt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dev = try Background(["dev", "--directory", directory + "/pg"], environment: [
            "CHANGERELAY_SQL_DIR": repositoryRoot + "/sql",
        ])
        // A conversation check, an automation run, and three webhook events (a session started,
        // a user's message created and to process).
        try dev.waitFor("the sample check, automation run and webhook events", timeout: .seconds(120)) {
            $0.split(separator: "\n").count >= 5
        }
        let received = try dev.stdout.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(Set(received.compactMap { line -> String? in
            guard case .string(let request)? = line["received"] else { return nil }
            return request
        }) == ["POST /functions/v1/check-conversation", "POST /functions/v1/automation-executor", "POST /webhooks"])
        #expect(Set(received.compactMap { line -> String? in
            guard case .string(let type)? = line["body"]?["type"] else { return nil }
            return type
        }) == ["chat.session.started", "chat.message.created", "chat.message.process"])
        let check = received.first { $0["body"]?["clerk_id"] == .string("dev_clerk") }
        #expect(check?["body"]?["attempt"] == .number("1"))
        let run = received.first { $0["body"]?["workflowId"] != nil }
        #expect(run?["body"]?["context"]?["new_status"] == .string("completed"))
        dev.child.signal(SIGINT)
        #expect(dev.waitForExit(timeout: .seconds(60)) == 0, "\(dev.stderr)")
        #expect(!dev.stderr.contains("error"), "\(dev.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/pg/data/postmaster.pid"), "Postgres still running")
    }

    /// A server left running on `dev`'s directory (a `dev` killed with -9 leaves its Postgres
    /// behind) is named with the command that stops it, not started over on other ports until
    /// its lock file fails the start.
    @Test func aServerLeftRunningOnTheDirectoryIsNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try LocalPostgres(.init(directory: directory, removeOnStop: false))
        try first.start()
        defer { try? first.stop() }
        let second = try LocalPostgres(.init(directory: directory, removeOnStop: false))
        #expect {
            try second.start()
        } throws: { error in
            "\(error)".contains("is already running on \(first.dataDirectory)") && "\(error)".contains("pg_ctl -D")
        }
        #expect(try first.connect().execute("SELECT 1 AS one").value("one") == "1")
    }
}
