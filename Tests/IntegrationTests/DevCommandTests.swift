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
        let settings = try String(contentsOfFile: first.dataDirectory + "/changerelay.conf", encoding: .utf8)
        #expect {
            try LocalPostgres(.init(directory: directory, removeOnStop: false))
        } throws: { error in
            "\(error)".contains("is already running on \(first.dataDirectory)") && "\(error)".contains("pg_ctl -D")
        }
        // Its settings (its port) are left as they are.
        #expect(try String(contentsOfFile: first.dataDirectory + "/changerelay.conf", encoding: .utf8) == settings)
        #expect(try first.connect().execute("SELECT 1 AS one").value("one") == "1")
    }

    /// Each plugin keeps a slot of its own; switching back to one whose slot the other's runs
    /// left behind read again what they had planned, and every start stopped on a duplicate
    /// idempotency key. The other plugin's slot is dropped at start.
    @Test func switchingPluginsAndBackKeepsDevRunning() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for plugin in ["pgoutput", "wal2json", "pgoutput"] {
            let dev = try Background(["dev", "--directory", directory + "/pg", "--plugin", plugin], environment: [
                "CHANGERELAY_SQL_DIR": repositoryRoot + "/sql",
            ])
            // Every run writes the samples again: their requests arrive only past what the
            // runs before planned.
            try dev.waitFor("the samples' requests through \(plugin)", timeout: .seconds(120)) {
                $0.split(separator: "\n").count >= 5
            }
            dev.child.signal(SIGINT)
            #expect(dev.waitForExit(timeout: .seconds(60)) == 0, "\(plugin): \(dev.stderr.suffix(2000))")
            #expect(!dev.stderr.contains("duplicate key"), "\(plugin): \(dev.stderr.suffix(2000))")
        }
    }

    /// SIGTERM while `dev` starts ends it with its local server stopped: by default the
    /// signal ended the process at once, and the server ran on.
    @Test func aStopDuringStartUpStopsTheLocalServer() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dev = try Background(["dev", "--directory", directory + "/pg"], environment: [
            "CHANGERELAY_SQL_DIR": repositoryRoot + "/sql",
        ])
        try RunPipelineTests.waitFor("the local server to start", timeout: .seconds(120)) {
            dev.stderr.contains("local Postgres running")
        }
        dev.child.signal(SIGTERM)
        #expect(dev.waitForExit(timeout: .seconds(60)) == 0, "\(dev.stderr.suffix(2000))")
        #expect(dev.stderr.contains("asked to stop during start-up"), "\(dev.stderr.suffix(2000))")
        #expect(!FileManager.default.fileExists(atPath: directory + "/pg/data/postmaster.pid"), "Postgres still running")
    }

    /// Run as root, the cluster runs as the postgres user: a directory it cannot reach is
    /// refused by name with what to do, not left to initdb's "Permission denied".
    @Test(.enabled(if: geteuid() == 0)) func aDirectoryThePostgresUserCannotReachIsRefused() throws {
        let closed = FileManager.default.temporaryDirectory.appendingPathComponent("closed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: closed) }
        #expect(!LocalPostgres.serverCanReach(closed + "/"))
        #expect {
            try LocalPostgres(.init(directory: closed + "/pg", removeOnStop: false))
        } throws: { error in
            "\(error)".contains("the postgres user") && "\(error)".contains("cannot reach it")
                && "\(error)".contains("/var/tmp/changerelay-dev")
        }
    }
}
