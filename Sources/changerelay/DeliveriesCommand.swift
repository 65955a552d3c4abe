import ArgumentParser
import RelayConfiguration
import Core
import Handlers
import Replication
import Schema
import StateStore

struct Deliveries: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect deliveries, re-queue failed or dead ones, cancel unfinished ones, purge old dead ones.",
        subcommands: [List.self, Retry.self, Cancel.self, Purge.self])

    /// The ids among `arguments`, every argument no option claimed: so `-5` is named as a
    /// bad id rather than mistaken for an option, while `--help` (and `-h`) still asks for
    /// help, `--` ends the options, and a misspelled option is named as one.
    /// `what` names the ids (`delivery`) and `shownBy` the command that lists them.
    static func ids(_ arguments: [String], of command: any ParsableCommand, what: String = "delivery",
                    shownBy: String = "deliveries list") throws -> [Int64] {
        var ids: [Int64] = []
        for argument in arguments where argument != "--" {
            if argument == "--help" || argument == "-h" { throw CleanExit.helpRequest(command) }
            if let id = Int64(argument) {
                guard id >= 1 else {
                    throw ValidationError("\(what) ids are whole numbers from 1 (\(shownBy) shows them), got \(id)")
                }
                ids.append(id)
            } else if argument.hasPrefix("--") {
                throw ValidationError("unknown option '\(argument)'")
            } else {
                throw ValidationError("'\(argument)' is not a \(what) id: ids are whole numbers from 1 (\(shownBy) shows them)")
            }
        }
        return ids
    }

    /// Runs `work` on the state database. An error (a missing migration, a statement the
    /// server refused) is said on one line as every command says it, not as the argument
    /// parser's `Error:`.
    static func withDatabase(_ options: ConfigOptions, _ work: (PostgresConnection) throws -> Void) throws {
        let config = try options.load()
        do {
            try work(try PostgresConnection(url: config.stateDatabaseURL ?? config.requireSourceURL()))
        } catch let exit as ExitCode {
            throw exit
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }

    /// "1 delivery", "3 deliveries": what a command did, said as a sentence says it.
    static func counted(_ count: some BinaryInteger, _ kind: String = "") -> String {
        "\(count) \(kind)\(count == 1 ? "delivery" : "deliveries")"
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The newest deliveries, tab-separated; a paused one waits for its webhook config to be active.")

        @OptionGroup var options: ConfigOptions

        @Option(help: "Only deliveries in this status: pending, sending, succeeded, failed, dead, or paused (waiting for their webhook config).")
        var status: String?

        @Option(parsing: .unconditional, help: "At most this many, newest first (1…1000).")
        var limit: Int = 50

        func validate() throws {
            if let status, DeliveryListing.Filter(status) == nil {
                throw ValidationError("--status must be pending, sending, succeeded, failed, dead or paused")
            }
            // As the admin API's: the whole answer is read into memory before it is printed.
            guard (1...1000).contains(limit) else { throw ValidationError("--limit must be 1 to 1000, got \(limit)") }
        }

        func run() throws {
            try Deliveries.withDatabase(options) { db in
                try RequiredMigration.deliveryRequeue.require(neededBy: "deliveries list", on: db)
                try RequiredMigration.webhooks.require(neededBy: "deliveries list", on: db)
                let deliveries = try DeliveryListing.newest(status: status.flatMap(DeliveryListing.Filter.init), limit: limit,
                                                            logs: BuiltInHandlers.deliveryLogs, on: db)
                print(["id", "status", "attempt", "handler", "idempotency_key", "url", "http", "error", "next_attempt_at"]
                    .joined(separator: "\t"))
                for delivery in deliveries {
                    print(TabSeparated.line([delivery.id, delivery.status, delivery.attempt, delivery.handler, delivery.idempotencyKey,
                                             delivery.url, delivery.lastHTTPStatus, delivery.lastError, delivery.nextAttemptAt]))
                }
            }
        }
    }

    /// Re-queues failed or dead deliveries (`DeliveryRequeue`), the log rows of every
    /// built-in handler following in the same statement.
    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send these deliveries again, with a fresh allowance of tries; attempt numbers run on.")

        @OptionGroup var options: ConfigOptions

        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Delivery ids.", valueName: "ids"))
        var arguments: [String] = []

        @Flag(help: "Every dead delivery.")
        var allDead = false

        func validate() throws {
            let ids = try Deliveries.ids(arguments, of: self)
            if ids.isEmpty == !allDead { throw ValidationError("give delivery ids or --all-dead (not both)") }
        }

        func run() throws {
            let ids = try Deliveries.ids(arguments, of: self)
            try Deliveries.withDatabase(options) { db in
                try RequiredMigration.deliveryRequeue.require(neededBy: "deliveries retry", on: db)
                try RequiredMigration.webhooks.require(neededBy: "deliveries retry", on: db)
                let requeued = try DeliveryRequeue.requeue(allDead ? .allDead : .ids(ids), logs: BuiltInHandlers.deliveryLogs,
                                                           on: db)
                print("re-queued \(Deliveries.counted(requeued))")
                // A script must be able to tell that an id it named was not sent again.
                let named = Set(ids).count
                if !allDead, requeued < named {
                    throw failure("\(named - requeued) of the \(named) deliveries named were not re-queued: "
                                  + "they do not exist, or are not failed or dead (deliveries list shows them)")
                }
            }
        }
    }

    /// Ends unfinished deliveries an operator gives up on (`DeliveryCancel`); their log rows
    /// are finished in the same statement, and `deliveries retry` can send them again.
    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End these unfinished deliveries (pending, failed or paused) as dead, cancelled by an operator.")

        @OptionGroup var options: ConfigOptions

        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Delivery ids.", valueName: "ids"))
        var arguments: [String] = []

        func validate() throws {
            if try Deliveries.ids(arguments, of: self).isEmpty {
                throw ValidationError("give the ids of the deliveries to cancel (deliveries list shows them)")
            }
        }

        func run() throws {
            let ids = try Deliveries.ids(arguments, of: self)
            try Deliveries.withDatabase(options) { db in
                try RequiredMigration.deliveryRequeue.require(neededBy: "deliveries cancel", on: db)
                try RequiredMigration.webhooks.require(neededBy: "deliveries cancel", on: db)
                let cancelled = try DeliveryCancel.cancel(ids, logs: BuiltInHandlers.deliveryLogs, on: db)
                print("cancelled \(Deliveries.counted(cancelled))")
                let named = Set(ids).count
                if cancelled < named {
                    throw failure("\(named - cancelled) of the \(named) deliveries named were not cancelled: they do not exist, "
                                  + "are finished, have a try under way, or keep a log that cannot record a cancellation")
                }
            }
        }
    }

    /// Deletes dead deliveries (and their attempts) that nobody has touched for a while:
    /// retention never sweeps dead ones, since each is work an operator may still retry.
    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete deliveries dead for longer than --older-than; print how many.")

        @OptionGroup var options: ConfigOptions

        @Flag(help: "Dead deliveries (the only ones that can be purged; required, so the command says what it deletes).")
        var dead = false

        @Option(help: "An age: a whole number and s, m, h or d, e.g. 30d or 12h.")
        var olderThan: String

        func validate() throws {
            guard dead else { throw ValidationError("--dead is required: only dead deliveries can be purged") }
            guard let age = Duration(age: olderThan) else {
                throw ValidationError("--older-than must be a whole number and a unit s, m, h or d (30d, 12h), got '\(olderThan)'")
            }
            // Further back than Postgres' timestamps reach is "every dead delivery" in intent,
            // but the server refuses the subtraction: a century says it.
            guard age <= Self.longestAge else {
                throw ValidationError("--older-than must be at most 36500d (a century), got '\(olderThan)'")
            }
        }

        static let longestAge = Duration.seconds(36_500 * 86_400)

        func run() throws {
            let age = Duration(age: olderThan)!
            try Deliveries.withDatabase(options) { db in
                try RequiredMigration.schedules.require(neededBy: "deliveries purge", on: db)
                let purged = try DeliveryRetention.purgeDead(olderThanSeconds: age.components.seconds, on: db)
                print("purged \(Deliveries.counted(purged, "dead "))")
            }
        }
    }
}
