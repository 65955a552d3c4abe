import Testing

/// Numbers on the command line, negative ones included, are read as the option's value or
/// the command's ids and refused by what is wrong with them, before any connection: a `-5`
/// is not taken for an option (`Missing value for '--limit'`) or dropped.
@Suite struct CommandLineNumberTests {
    /// Where no server listens: a command that got past its checks fails to connect instead.
    static let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://relay@127.0.0.1:1/app"]

    static let refusals: [(arguments: [String], message: String)] = [
        (["deliveries", "list", "--limit", "-1"], "--limit must be 1 to 1000, got -1"),
        (["deliveries", "retry", "-5"], "delivery ids are whole numbers from 1 (deliveries list shows them), got -5"),
        (["deliveries", "retry", "3", "0"], "delivery ids are whole numbers from 1 (deliveries list shows them), got 0"),
        (["deliveries", "cancel", "-1"], "delivery ids are whole numbers from 1 (deliveries list shows them), got -1"),
        (["deliveries", "cancel", "--bogus"], "unknown option '--bogus'"),
        (["deliveries", "retry", "--all-daed"], "unknown option '--all-daed'"),
        (["deliveries", "cancel", "abc"], "'abc' is not a delivery id"),
        (["backfill", "--table", "jobs", "--chunk-size", "-3"], "--chunk-size must be between 1 and 1000000, not -3"),
        (["backfill", "status", "--limit", "-1"], "--limit must be 1 to 1000, got -1"),
        (["backfill", "status", "--limit", "0"], "--limit must be 1 to 1000, got 0"),
        (["backfill", "cancel", "-1"], "backfill ids are whole numbers from 1 (backfill status shows them), got -1"),
        (["backfill", "cancel", "1", "2"], "give one backfill id"),
        (["backfill", "cancel"], "give one backfill id"),
        (["backfill", "cancel", "x"], "'x' is not a backfill id"),
        (["tail", "--limit", "-1"], "--limit must be at least 1"),
        (["doctor", "--max-retained-bytes", "-5"], "--max-retained-bytes must be 0 or more, got -5"),
    ]

    /// The ids take every argument no option claims; help still answers, and `--` still ends
    /// the options.
    @Test func helpAndTheEndOfOptionsStillWorkBesideTheIds() throws {
        for command in ["retry", "cancel"] {
            for flag in ["--help", "-h"] {
                let help = try runChangeRelay(["deliveries", command, flag], environment: Self.environment)
                #expect(help.status == 0 && help.stdout.contains("USAGE: changerelay deliveries \(command)"), "\(help.stdout)")
            }
        }
        // Past the checks: the ids were read, and the connection is what fails.
        let ended = try runChangeRelay(["deliveries", "retry", "--", "3", "4"], environment: Self.environment)
        #expect(ended.status == 1 && ended.stderr.contains("cannot connect"), "\(ended.stderr)")
    }

    /// Against a database `setup` never saw, each command names the migration it needs
    /// rather than printing the server's missing-relation error and its statement, on one
    /// line that starts as every command's errors do (not the argument parser's `Error:`).
    @Test func commandsOnADatabaseWithoutTheSchemaNameTheMigration() throws {
        let cluster = try startCluster(schema: false)
        defer { try? cluster.stop() }
        let environment = ["CHANGERELAY_SOURCE_DATABASE_URL": cluster.url]
        for (arguments, file) in [(["deliveries", "list"], "sql/009_delivery_requeue.sql"),
                                  (["deliveries", "cancel", "1"], "sql/009_delivery_requeue.sql"),
                                  (["deliveries", "retry", "1"], "sql/009_delivery_requeue.sql"),
                                  (["deliveries", "purge", "--dead", "--older-than", "1d"], "sql/015_schedules.sql"),
                                  (["webhooks", "test", "hook"], "sql/012_webhooks.sql")] {
            let refused = try runChangeRelay(arguments, environment: environment)
            #expect(refused.status == 1 && refused.stderr.contains(file) && !refused.stderr.contains("SQLSTATE"),
                    "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.hasPrefix("changerelay: "), "\(arguments): \(refused.stderr)")
            // Every other migration the database lacks is named too, not one per start.
            #expect(refused.stderr.contains("sql/032_checkpoint_writers.sql"), "\(arguments): \(refused.stderr)")
        }
    }

    @Test(arguments: refusals.indices)
    func aBadNumberIsRefusedByName(_ index: Int) throws {
        let (arguments, message) = Self.refusals[index]
        let result = try runChangeRelay(arguments, environment: Self.environment)
        #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("cannot connect"), "\(arguments): \(result.stderr)")
    }
}
