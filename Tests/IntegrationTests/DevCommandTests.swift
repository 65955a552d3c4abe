import Decoding
import Foundation
import Testing

@Suite struct DevCommandTests {
    @Test func devStartsPostgresStreamsSamplesAndStopsOnInterrupt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dev = try Background(["dev", "--directory", directory + "/pg"], environment: [
            "CHANGERELAY_SQL_DIR": repositoryRoot + "/sql",
        ])
        try dev.waitFor("the sample changes", timeout: .seconds(120)) { $0.split(separator: "\n").count >= 4 }
        let tables = try dev.stdout.split(separator: "\n").map { line -> String in
            guard case .string(let table)? = try JSONParser.parse(Array(line.utf8))["table"] else { return "?" }
            return table
        }
        #expect(Array(tables.prefix(4)) == ["user_conversations", "jobs", "jobs", "habit_tracker"])
        dev.child.signal(SIGINT)
        #expect(dev.waitForExit(timeout: .seconds(60)) == 0, "\(dev.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/pg/data/postmaster.pid"), "Postgres still running")
    }
}
