import ArgumentParser
import Configuration
import Core
import Decoding
import Logging

@main
struct ChangeRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changerelay",
        abstract: "Reads a Postgres logical-replication slot and performs the side effects of its changes.",
        subcommands: [Run.self, Tail.self, Setup.self, Doctor.self, Deliveries.self, Schedules.self, Webhooks.self, DriftCheck.self,
                      BackfillCommand.self, Replay.self, Dev.self])
}

/// `--config F`, shared by every command that reads the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "TOML configuration file; every key can be overridden by CHANGERELAY_<SECTION>_<KEY>.")
    var config: String?

    func load() throws -> Config {
        do { return try Config.load(path: config) } catch { throw failure(error.description) }
    }
}

/// Logs go to standard error so that standard output stays machine-readable.
func bootstrapLogging() {
    let level = Config.processEnvironment()["CHANGERELAY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// A one-line error on standard error and exit code 1: no stack trace, no usage text.
func failure(_ message: String) -> ExitCode {
    FileOutput.standardError.write(line: "changerelay: " + message)
    return ExitCode.failure
}
