import ArgumentParser
import Configuration
import Core
import Delivery
import PlannedEffects
import Replication
import Schema

struct Deliveries: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect deliveries and re-queue failed or dead ones.",
        subcommands: [List.self, Retry.self])

    static func connect(_ options: ConfigOptions) throws -> PostgresConnection {
        let config = try options.load()
        do {
            return try PostgresConnection(url: config.stateDatabaseURL ?? config.requireSourceURL())
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }

    struct List: ParsableCommand {
        @OptionGroup var options: ConfigOptions

        @Option(help: "Only deliveries in this status: pending, sending, succeeded, failed or dead.")
        var status: String?

        @Option(help: "At most this many, newest first.")
        var limit: Int = 50

        func validate() throws {
            if let status, !["pending", "sending", "succeeded", "failed", "dead"].contains(status) {
                throw ValidationError("--status must be pending, sending, succeeded, failed or dead")
            }
        }

        func run() throws {
            let db = try Deliveries.connect(options)
            let rows = try db.query("""
                SELECT id, status, attempt, handler, idempotency_key, target_url, coalesce(last_http_status::text, '-'),
                       coalesce(last_error, ''), to_char(next_attempt_at, 'YYYY-MM-DD HH24:MI:SS')
                FROM changerelay.deliveries WHERE $1::text IS NULL OR status = $1
                ORDER BY id DESC LIMIT $2
                """, [status, String(limit)]).rows
            print(["id", "status", "attempt", "handler", "idempotency_key", "url", "http", "error", "next_attempt_at"]
                .joined(separator: "\t"))
            for row in rows { print(row.map { $0 ?? "" }.joined(separator: "\t")) }
        }
    }

    /// Re-queues failed or dead deliveries. Each gets its retry policy's whole allowance
    /// and schedule again, while its attempt numbers run on (`requeued_at_attempt`, 009):
    /// attempt rows, log rows and the body's attempt field never repeat a number. The log
    /// rows of seed handlers follow in the same statement.
    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send these deliveries again, with a fresh allowance of tries; attempt numbers run on.")

        @OptionGroup var options: ConfigOptions

        @Argument(help: "Delivery ids.")
        var ids: [Int64] = []

        @Flag(help: "Every dead delivery.")
        var allDead = false

        func validate() throws {
            if ids.isEmpty == !allDead { throw ValidationError("give delivery ids or --all-dead (not both)") }
        }

        func run() throws {
            let db = try Deliveries.connect(options)
            try RequiredMigration.deliveryRequeue.require(neededBy: "deliveries retry", on: db)
            // Only the log tables this database has: a state database without the seed's
            // tables has no delivery reporting into them.
            var reportFragments = ""
            for kind in DeliveryReport.Kind.allCases {
                guard let fragment = DeliveryReport.requeueFragment(for: kind),
                      try db.query("SELECT to_regclass($1) IS NOT NULL AS present", [kind.table]).value("present") == "t"
                else { continue }
                reportFragments += ",\n" + fragment
            }
            let result = try db.query("""
                WITH requeued AS (
                    UPDATE changerelay.deliveries
                    SET status = 'pending', requeued_at_attempt = attempt, next_attempt_at = now(), locked_until = NULL,
                        completed_at = NULL, updated_at = now()
                    WHERE CASE WHEN $1 THEN status = 'dead' ELSE id = ANY($2::bigint[]) AND status IN ('failed', 'dead') END
                    RETURNING id, report)\(reportFragments)
                SELECT count(*) AS n, pg_notify('\(Dispatcher.notifyChannel)', '') IS NULL AS notified FROM requeued
                """, [allDead ? "true" : "false", "{" + ids.map(String.init).joined(separator: ",") + "}"])
            print("re-queued \(result.value("n") ?? "0") deliveries")
        }
    }
}
