import ArgumentParser
import RelayConfiguration
import Core
import Decoding
import LogFormat
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

/// Logs go to standard error so that standard output stays machine-readable, in the format and at
/// the level of the configuration's `[log]`. swift-log takes one bootstrap per process, so a command
/// calls this once, after reading its configuration and before making its first `Logger` (one made
/// earlier would keep swift-log's default handler). Variables that look like configuration
/// but are not are named here, once logging is set up.
func bootstrapLogging(_ config: Config) {
    let settings = config.log
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = switch settings.format {
        case .plain: StreamLogHandler.standardError(label: label)
        case .json: JSONLogHandler(label: label)
        }
        handler.logLevel = settings.level
        return handler
    }
    let logger = Logger(label: "changerelay.config")
    for name in config.unrecognizedVariables {
        logger.warning("\(name) is not a configuration variable and is ignored",
                       metadata: ["variable": "\(name)"])
    }
}

/// A one-line error on standard error and exit code 1: no stack trace, no usage text.
func failure(_ message: String) -> ExitCode {
    FileOutput.standardError.write(line: "changerelay: " + message)
    return ExitCode.failure
}
