import ArgumentParser
import Backfill
import RelayConfiguration
import Core
import Foundation
import Pipeline
import Replication
import Schema
import StateStore

struct BackfillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Hands a table's existing rows to the handlers as `read` changes (an incremental snapshot), or lists and cancels backfills.",
        discussion: """
            The request is recorded in changerelay.backfills and carried out by the running service that holds \
            the slot, in primary-key chunks between watermarks, while the live stream keeps flowing. Interrupting \
            this command does not stop the backfill: `backfill cancel ID` does.
            """,
        subcommands: [Start.self, Status.self, Cancel.self], defaultSubcommand: Start.self)

    /// The source and the state database, with 016, 029 and 037 applied.
    static func connect(_ config: Config) throws -> (source: PostgresConnection, state: PostgresConnection) {
        do {
            let sourceURL = try config.requireSourceURL()
            // The --where is checked in the session the runner will read chunks in.
            let source = try PostgresConnection(url: sourceURL, parameters: [("options", BackfillRunner.sessionOptions)])
            let state = try PostgresConnection(url: config.stateDatabaseURL ?? sourceURL)
            try RequiredMigration.backfills.require(neededBy: "it", on: state)
            try RequiredMigration.backfillHighKey.require(neededBy: "it", on: state)
            try RequiredMigration.backfillSlots.require(neededBy: "it", on: state)
            return (source, state)
        } catch let error as CustomStringConvertible & Error {
            throw failure("backfill: \(error)")
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start", abstract: "Backfill a table (the default: `changerelay backfill --table T`).")

        @OptionGroup var options: ConfigOptions

        @Option(help: "The table: `name` or `schema.name`.")
        var table: String

        @Option(name: .customLong("where"), help: "Only rows for which this SQL expression is true.")
        var condition: String?

        @Option(parsing: .unconditional, help: "Rows per chunk (1 to 1000000).")
        var chunkSize = 1000

        @Flag(help: "Return as soon as the request is recorded, instead of following it to the end.")
        var detach = false

        func validate() throws {
            guard (1...1_000_000).contains(chunkSize) else { throw ValidationError(BackfillRefusal.badChunkSize(chunkSize).description) }
        }

        func run() throws {
            let config = try options.load()
            let (source, state) = try BackfillCommand.connect(config)
            let table: BackfillTable
            let estimate: Int64?
            do {
                let catalog = BackfillCatalog(connection: source, publication: config.source.publication)
                table = try catalog.table(named: self.table)
                estimate = try catalog.estimate(table, where: condition)
            } catch let error as CustomStringConvertible & Error {
                throw failure("backfill: \(error)")
            }
            let id: Int64
            do {
                id = try BackfillRequests.request(schema: table.name.schema, table: table.name.name, where: condition,
                                                  chunkSize: chunkSize, keyColumns: table.keyColumns,
                                                  rowsEstimated: estimate, slot: config.source.slot, on: state)
            } catch {
                throw failure("backfill: \(error)")
            }
            FileOutput.standardOutput.write(line: "backfill \(id) requested: \(table.name)"
                + (condition.map { " where \($0)" } ?? "") + (estimate.map { ", about \($0) rows" } ?? ""))
            if detach { return }
            try BackfillCommand.follow(id, slot: config.source.slot, on: state)
        }
    }

    /// Prints the backfill's progress until it ends: exit 0 when it is done, 1 otherwise.
    static func follow(_ id: Int64, slot: String, on state: PostgresConnection) throws {
        var progress = ProgressReporter(label: "backfill \(id)", unit: "rows")
        let clock = ContinuousClock()
        let requested = clock.now
        var waitingNoted = false
        while true {
            let entry: BackfillRequests.Entry?
            do { entry = try BackfillRequests.entry(id: id, on: state) } catch { throw failure("backfill: \(error)") }
            guard let entry else { throw failure("backfill \(id) no longer exists") }
            switch entry.status {
            case .done:
                progress.finish("done: \(entry.rowsDone) rows of \(entry.qualifiedTable) in \(entry.chunksDone) chunks, "
                                + "\(entry.rowsSuperseded) of them superseded by live changes")
                return
            case .cancelled:
                progress.finish("cancelled after \(entry.rowsDone) rows")
                throw ExitCode.failure
            case .failed:
                progress.finish("failed after \(entry.rowsDone) rows: \(entry.error ?? "no reason recorded")")
                throw ExitCode.failure
            case .pending:
                if !waitingNoted, clock.now - requested > .seconds(10) {
                    waitingNoted = true
                    FileOutput.standardError.write(line: """
                        backfill \(id) waits for the service that holds slot \(slot) to pick it up \
                        (is `changerelay run` running?); it is recorded and will run then
                        """)
                }
            case .running:
                progress.update(done: entry.rowsDone, total: entry.rowsEstimated,
                                detail: entry.rowsSuperseded > 0 ? "\(entry.rowsSuperseded) superseded" : "")
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List backfills, newest first, with their progress.")

        @OptionGroup var options: ConfigOptions

        @Option(parsing: .unconditional, help: "At most this many (1…1000).")
        var limit = 20

        func validate() throws {
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1 to 1000, got \(limit)") }
        }

        func run() throws {
            let config = try options.load()
            let (_, state) = try BackfillCommand.connect(config)
            let entries: [BackfillRequests.Entry]
            do { entries = try BackfillRequests.list(limit: limit, on: state) } catch { throw failure("backfill: \(error)") }
            print(["id", "table", "status", "rows", "estimated", "superseded", "rows_per_s", "eta", "requested_at",
                   "finished_at", "error", "slot"].joined(separator: "\t"))
            for entry in entries {
                print(TabSeparated.line([String(entry.id), entry.qualifiedTable + (entry.whereClause.map { " where " + $0 } ?? ""),
                       entry.status.rawValue, String(entry.rowsDone), entry.rowsEstimated.map(String.init) ?? "-",
                       String(entry.rowsSuperseded), entry.rowsPerSecond.map { String(Int64($0.rounded())) } ?? "-",
                       entry.status == .running ? entry.etaSeconds.map { ProgressEstimate.duration(.milliseconds(Int64($0 * 1000))) } ?? "-" : "-",
                       entry.requestedAt, entry.finishedAt ?? "-", entry.error ?? "", entry.slot ?? "-"]))
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a backfill before its next chunk (the one already read is still handled).")

        @OptionGroup var options: ConfigOptions

        /// Every argument no option claimed, so `-1` is named as a bad id, not taken for an option.
        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The backfill's id (see `backfill status`).", valueName: "id"))
        var arguments: [String] = []

        func validate() throws {
            let ids = try Deliveries.ids(arguments, of: self, what: "backfill", shownBy: "backfill status")
            guard ids.count == 1 else { throw ValidationError("give one backfill id (backfill status shows them)") }
        }

        func run() throws {
            let id = try Deliveries.ids(arguments, of: self, what: "backfill", shownBy: "backfill status")[0]
            let config = try options.load()
            let (_, state) = try BackfillCommand.connect(config)
            let result: (cancelled: Bool, status: BackfillRequests.Status?)
            do { result = try BackfillRequests.cancel(id, on: state) } catch { throw failure("backfill: \(error)") }
            if result.cancelled {
                FileOutput.standardOutput.write(line: "backfill \(id) cancelled")
            } else if let status = result.status {
                throw failure("backfill \(id) is \(status.rawValue) already: there is nothing to cancel")
            } else {
                throw failure("there is no backfill \(id)")
            }
        }
    }
}
