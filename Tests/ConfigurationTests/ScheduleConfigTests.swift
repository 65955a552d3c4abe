import RelayConfiguration
import Foundation
import Testing

@Suite struct ScheduleConfigTests {
    @Test func entriesAreReadInFileOrder() throws {
        let path = try write("""
            [source]
            database_url = "postgresql://relay@db/app"

            [[schedules]]
            name = "vacuum"
            cron = "0 3 * * sun"
            sql = "VACUUM (ANALYZE)"

            [[schedules]]
            name = "cache"
            cron = "*/15 * * * *"
            sql = '''DELETE FROM search_cache WHERE expires_at < now()'''
            timeout_ms = 60000

            [delivery]
            retention_days = 30
            """.replacingOccurrences(of: "'''", with: "'"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Config.load(path: path, environment: [:])
        #expect(config.schedules.map(\.name) == ["vacuum", "cache"])
        #expect(config.schedules[0].cron.description == "0 3 * * sun")
        #expect(config.schedules[0].sql == "VACUUM (ANALYZE)")
        #expect(config.schedules[1].sql == "DELETE FROM search_cache WHERE expires_at < now()")
        #expect(config.schedules[0].timeout == nil)
        #expect(config.schedules[1].timeout == .seconds(60))
        #expect(config.delivery.retentionDays == 30)
    }

    struct BadCase: CustomStringConvertible {
        var entries: String
        var error: String
        var description: String { error }
    }

    /// Each entry below follows `[[schedules]]` entries "first" (line 1-4) and "vacuum" (5-8).
    static let prefix = """
        [[schedules]]
        name = "first"
        cron = "* * * * *"
        sql = "SELECT 1"
        [[schedules]]
        name = "vacuum"
        cron = "0 3 * * 0"
        sql = "VACUUM"

        """

    static let badCases: [BadCase] = [
        BadCase(entries: "[[schedules]]\nname = \"vacuum2\"\ncron = \"0 24 * * *\"\nsql = \"VACUUM\"\n",
                error: #"line 11: schedules[2] "vacuum2": cron field "hour": 24 is out of range 0-23"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"0 0 * * FUNDAY\"\nsql = \"SELECT 1\"\n",
                error: #"line 11: schedules[2] "x": cron field "day-of-week": 'FUNDAY' is not a number or a name (SUN…SAT)"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"0 0 * *\"\nsql = \"SELECT 1\"\n",
                error: #"line 11: schedules[2] "x": expected 5 fields (minute hour day-of-month month day-of-week), got 4"#),
        BadCase(entries: "[[schedules]]\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n",
                error: "line 9: schedules[2]: missing key 'name'"),
        BadCase(entries: "[[schedules]]\nname = \"x\"\nsql = \"SELECT 1\"\n",
                error: #"line 9: schedules[2] "x": missing key 'cron'"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\n",
                error: #"line 9: schedules[2] "x": missing key 'sql'"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"  \"\n",
                error: #"line 12: schedules[2] "x": key 'sql' must not be empty"#),
        BadCase(entries: "[[schedules]]\nname = 3\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n",
                error: "line 10: schedules[2]: key 'name' must be a string, got an integer"),
        BadCase(entries: "[[schedules]]\nname = \"vacuum\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n",
                error: #"line 10: schedules[2] "vacuum": the same name as schedules[1]; each schedule needs its own"#),
        BadCase(entries: "[[schedules]]\nname = \"changerelay.delivery_retention\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n",
                error: #"line 10: schedules[2] "changerelay.delivery_retention": names starting with 'changerelay.' are reserved for the built-in jobs"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\ncommand = \"SELECT 2\"\n",
                error: #"line 13: schedules[2] "x": unknown key 'command'; [[schedules]] accepts name, cron, sql, timeout_ms"#),
        BadCase(entries: "[[schedules]]\nnmae = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n",
                error: "line 10: schedules[2]: unknown key 'nmae'; [[schedules]] accepts name, cron, sql, timeout_ms"),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\ntimeout_ms = \"5s\"\n",
                error: #"line 13: schedules[2] "x": key 'timeout_ms' must be an integer, got a string"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\ntimeout_ms = 0\n",
                error: #"line 13: schedules[2] "x": key 'timeout_ms' must be between 1 and 2147483647 (milliseconds), got 0"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\ntimeout_ms = -5\n",
                error: #"line 13: schedules[2] "x": key 'timeout_ms' must be between 1 and 2147483647 (milliseconds), got -5"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\ntimeout_ms = 2147483648\n",
                error: #"line 13: schedules[2] "x": key 'timeout_ms' must be between 1 and 2147483647 (milliseconds), got 2147483648"#),
        BadCase(entries: "[[schedules]]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\ntimeout_ms = 1.5\n",
                error: #"line 13: schedules[2] "x": key 'timeout_ms' must be an integer, got a float"#),
        BadCase(entries: "[[schedules]]\nname = \"a\\tb\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n",
                error: #"line 10: schedules[2] "a\tb": key 'name' holds a control character (tab, newline…)"#),
    ]

    @Test(arguments: badCases)
    func badEntriesNameTheScheduleAndTheKeyOrField(_ test: BadCase) throws {
        let error = try #require(try loadError(Self.prefix + test.entries))
        let expectedLine = String(test.error.prefix { $0 != ":" })
        #expect(error.key == "schedules")
        #expect(error.origin.hasSuffix(" " + expectedLine), "\(error)")
        #expect(error.reason == String(test.error.dropFirst(expectedLine.count + 2)), "\(error)")
    }

    @Test func aSingleBracketedSchedulesSectionSaysToUseTwo() throws {
        let error = try #require(try loadError("[schedules]\nname = \"x\"\ncron = \"* * * * *\"\nsql = \"SELECT 1\"\n"))
        #expect(error.key == "schedules.name" || error.key == "schedules.cron" || error.key == "schedules.sql", "\(error)")
        #expect(error.reason.contains("a scheduled job is a [[schedules]] entry, with two brackets"), "\(error)")
    }

    @Test func otherArraysOfTablesAndScheduleVariablesAreRefused() throws {
        let other = try #require(try loadError("[[jobs]]\nname = \"x\"\n"))
        #expect(other.key == "jobs")
        #expect(other.reason == "unknown array of tables [[jobs]]; the only one is [[schedules]]")
        let variable = try #require(try loadError("", environment: ["CHANGERELAY_SCHEDULES_CRON": "* * * * *"]))
        #expect(variable.key == "CHANGERELAY_SCHEDULES_CRON")
    }

    @Test func retentionDaysIsAtLeastOne() throws {
        let zero = try #require(try loadError("[delivery]\nretention_days = 0\n"))
        #expect(zero.key == "delivery.retention_days")
        #expect(try Config.load(path: nil, environment: ["CHANGERELAY_DELIVERY_RETENTION_DAYS": "1"]).delivery.retentionDays == 1)
    }

    @Test func theCleanUpIntervalOnlySwitchesTheHourlyCleanUpOff() throws {
        #expect(try Config.load(path: nil, environment: ["CHANGERELAY_DUAL_WRITE_CLEANUP_INTERVAL_S": "0"]).dualWrite.cleanupEnabled == false)
        #expect(try Config.load(path: nil, environment: ["CHANGERELAY_DUAL_WRITE_CLEANUP_INTERVAL_S": "600"]).dualWrite.cleanupEnabled)
    }

    /// The example file of `deploy/` stays a valid configuration.
    @Test func theExampleScheduleFileLoads() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let config = try Config.load(path: url.path + "/deploy/schedules.example.toml", environment: [:])
        #expect(config.schedules.map(\.name) == [
            "search_cache_cleanup", "session_memory_cleanup", "trip_archival", "statistics_refresh", "weekly_vacuum",
            "health_sample",
        ])
        #expect(config.schedules.first { $0.name == "weekly_vacuum" }?.cron.description == "0 3 * * 0")
    }
}
