import ArgumentParser
import Foundation
import Replication
import Schema
import ServiceAssembly
import StateStore

struct Schedules: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Scheduled jobs.", subcommands: [List.self])

    /// Every job `run` would schedule with this configuration, with its last recorded run.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each scheduled job (built-in ones too): name, cron (UTC), last run and its outcome, next run (UTC).")

        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            do {
                let db = try PostgresConnection(url: config.stateDatabaseURL ?? config.requireSourceURL())
                try RequiredMigration.schedules.require(neededBy: "schedules list", on: db)
                let lastRuns = try ScheduleRuns.lastRuns(on: db)
                print(ScheduleListing.header)
                for line in ScheduleListing.lines(jobs: ScheduledJob.all(config), lastRuns: lastRuns, now: Date()) {
                    print(line)
                }
            } catch let error as CustomStringConvertible & Error {
                throw failure(error.description)
            }
        }
    }
}
