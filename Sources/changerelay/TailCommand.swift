import ArgumentParser
import RelayConfiguration
import Core
import Decoding
import Logging
import Pipeline
import PlannedEffects
import Replication
import ServiceAssembly
import StateStore

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print decoded changes as JSON lines, one per row change, in commit order.")

    enum Format: String, ExpressibleByArgument { case json, none }

    @OptionGroup var options: ConfigOptions

    @Option(help: "Output plugin: pgoutput or wal2json (default: source.plugin).")
    var plugin: Config.Plugin?

    @Option(help: "Read this persistent slot, acknowledging what was printed; not source.slot, nor a slot a service or a replay plans from.")
    var slot: String?

    @Flag(help: "Use a temporary slot that disappears on exit (the default without --slot).")
    var temporary = false

    @Option(help: "Start at this LSN (X/X); the slot's confirmed position wins when it is later.")
    var startLSN: String?

    @Option(parsing: .unconditional, help: "Stop after this many changes.")
    var limit: Int?

    @Option(help: "json prints the changes; none only counts them (for benchmarks).")
    var format: Format = .json

    @Option(help: "pgoutput protocol version (1, 2 or 3; default 2); 2 and 3 stream large transactions.")
    var protoVersion: Int?

    @Flag(help: "Ask pgoutput for binary values (send format).")
    var binary = false

    mutating func validate() throws {
        if slot != nil && temporary { throw ValidationError("--slot and --temporary exclude each other") }
        if let startLSN, LSN(startLSN) == nil { throw ValidationError("--start-lsn '\(startLSN)' is not an LSN like 16/B374D848") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let protoVersion, !(1...3).contains(protoVersion) {
            throw ValidationError("--proto-version must be 1, 2 or 3 (PostgreSQL 15)")
        }
    }

    func run() async throws {
        ProcessSignals.prepare()
        let config = try options.load()
        bootstrapLogging(config)
        let logger = Logger(label: "changerelay.tail")
        let limit = self.limit
        let format = self.format
        let plugin = self.plugin ?? config.source.plugin
        // pgoutput's own options: passed over in silence, they made a wal2json line look binary-checked.
        if plugin == .wal2json, binary || protoVersion != nil {
            // Known only once the configuration is read, so not in `validate()`: said as a usage
            // error of `tail` itself (exit 64), not with the usage of the whole command.
            FileOutput.standardError.write(line: "changerelay: tail: \(binary ? "--binary" : "--proto-version") is pgoutput's, "
                                               + "and the plugin is wal2json (from \(self.plugin == nil ? "source.plugin" : "--plugin"))")
            throw ExitCode.validationFailure
        }
        let protoVersion = self.protoVersion ?? 2
        do {
            if let slot { try Self.refuseIfPlannedFrom(slot, config: config) }
            let settings = SlotReader.Settings(
                databaseURL: try config.requireSourceURL(), plugin: plugin,
                slot: slot, publication: config.source.publication,
                startLSN: startLSN.flatMap { LSN($0) } ?? .zero, statusInterval: config.source.statusInterval,
                protocolVersion: protoVersion, streaming: protoVersion >= 2, binary: binary,
                spill: try config.checkedSpillSettings())
            try await ThreadService.runGroup([ThreadService("tail") { stop in
                let output = FileOutput(descriptor: 1)
                var writer = JSONWriter(capacity: 1 << 16)
                var printed = 0
                do {
                    try SlotReader(settings, logger: logger).run(until: stop) { transaction in
                        let remaining = limit.map { $0 - printed } ?? Int.max
                        let count = transaction.changes.count
                        printed += format == .json
                            ? try output.writeLines(of: transaction, limit: remaining, using: &writer)
                            : min(remaining, count)
                        guard let limit, printed >= limit else { return .proceed }
                        // A transaction cut by --limit is not acknowledged: the next run prints it whole.
                        return remaining >= count ? .stop : .stopUnacknowledged
                    }
                } catch OutputError.closed {
                    return
                }
                if format == .none { print("\(printed) changes") }
            }])
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }
}

extension Tail {
    /// A slot a service or a replay plans from is not tail's to read: tail acknowledges what it
    /// prints, and the planner, resuming at the slot's position, would never see those changes.
    /// Such a slot is `source.slot`, or one with a checkpoint in the state database (a service
    /// configured another way, a replay's).
    static func refuseIfPlannedFrom(_ slot: String, config: Config) throws {
        let reason: String
        if slot == config.source.slot {
            reason = "it is source.slot, the slot the service plans from"
        } else {
            let stateURL = try config.stateDatabaseURL ?? config.requireSourceURL()
            let stored: Bool
            do {
                stored = try SlotCheckpoint(slot: slot).isStored(on: PostgresConnection(url: stateURL))
            } catch {
                throw failure("tail: cannot tell whether a service or a replay plans from slot \(slot), which --slot would "
                              + "acknowledge (its checkpoint in the state database's changerelay.checkpoints): \(error)")
            }
            guard stored else { return }
            reason = "the state database has a checkpoint for it: a service or a replay plans from it"
        }
        throw failure("tail: refusing slot \(slot): \(reason). Tail acknowledges what it prints, so the planner would "
                      + "never see those changes; read them with a slot of tail's own (a temporary one, the default, or "
                      + "another --slot)")
    }
}

extension Config.Plugin: ExpressibleByArgument {}
