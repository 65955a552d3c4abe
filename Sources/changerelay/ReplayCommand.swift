import ArgumentParser
import RelayConfiguration
import Core
import Logging
import Pipeline
import ServiceAssembly
import Synchronization

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive a retained slot's backlog through the configured handlers, leaving out what is planned already.",
        discussion: """
            Reads SLOT (never the service's own source.slot) from where it stands to --to-lsn, inclusive (default: \
            the server's WAL end when the replay starts; never past the live service's position, which plans the rest \
            itself), plans every change with the keys the live service gives it, and writes only the effects not \
            planned yet, acknowledging SLOT as it goes: run it again after an interruption and it continues. \
            Prints per handler how many effects were new and how many were planned already. The live service's \
            dispatcher sends the new deliveries. --dry-run peeks instead: it writes nothing and SLOT does not move.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(help: "The slot to replay: a logical slot of the source with source.plugin, not source.slot, not in use.")
    var slot: String

    @Option(help: "Stop after the last transaction whose commit ends at or before this LSN (X/X).")
    var toLSN: String?

    @Option(help: ArgumentHelp("Only these handlers, comma-separated: " + ReplayHandlerSelection.known.joined(separator: ", ") + "."))
    var handlers: String?

    @Flag(help: "Read without consuming and print per handler how many effects would be new; write nothing.")
    var dryRun = false

    mutating func validate() throws {
        if let toLSN, LSN(toLSN) == nil { throw ValidationError("--to-lsn '\(toLSN)' is not an LSN like 16/B374D848") }
        if let handlers {
            do { _ = try ReplayHandlerSelection.parse(handlers) } catch { throw ValidationError(error.description) }
        }
    }

    func run() async throws {
        ProcessSignals.prepare()
        let config = try options.load()
        bootstrapLogging(config)
        let outcome = OutcomeBox()
        let replay: SlotReplay
        do {
            let request = SlotReplay.Request(slot: slot, toLSN: toLSN.flatMap { LSN($0) },
                                             handlers: try handlers.map(ReplayHandlerSelection.parse), dryRun: dryRun)
            replay = try SlotReplay.prepare(config, request, credentials: try ChangeRelayService.credentials(config),
                                            logger: Logger(label: "changerelay.replay"))
            ReplayReport.introduce(replay)
            try await ThreadService.runGroup([ThreadService("replay") { stop in
                var reporter = ProgressReporter(label: "replay \(replay.request.slot)", unit: "B")
                let total = Int64(clamping: replay.end.lsn.value - min(replay.start.value, replay.end.lsn.value))
                let result = try replay.run(until: stop) { reached, transactions in
                    let counts = replay.handlers.map(\.tally.counts)
                    reporter.update(done: Int64(clamping: reached.value - min(replay.start.value, reached.value)), total: total,
                                    detail: "at \(reached) of \(replay.end.lsn), \(transactions) transactions, "
                                        + "\(counts.reduce(0) { $0 + $1.new }) effects new, "
                                        + "\(counts.reduce(0) { $0 + $1.alreadyPlanned }) planned already")
                }
                reporter.finish(ReplayReport.summary(of: result, replay: replay))
                outcome.value.withLock { $0 = result }
            }])
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
        guard let result = outcome.value.withLock({ $0 }) else { throw failure("the replay ended without a result") }
        ReplayReport.table(result, dryRun: replay.request.dryRun).forEach { FileOutput.standardOutput.write(line: $0) }
        if !result.reachedEnd { throw ExitCode.failure }
    }
}

/// Carries the outcome out of the replay's thread.
private final class OutcomeBox: Sendable {
    let value = Mutex<SlotReplay.Outcome?>(nil)
}

/// What `replay` prints on standard output: the range and the handlers first, the counts
/// per handler at the end (tab-separated, for scripts); the progress and its summary go to
/// standard error.
enum ReplayReport {
    static func introduce(_ replay: SlotReplay) {
        let out = FileOutput.standardOutput
        out.write(line: "replay of slot \(replay.request.slot)"
            + (replay.request.dryRun ? ", dry run: nothing is written and the slot does not move" : ""))
        out.write(line: "from \(replay.start) \(replay.end.explanation)")
        out.write(line: "handlers: " + replay.handlers.map(\.name).joined(separator: ", "))
        for left in replay.leftOut { out.write(line: "left out \(left.name): \(left.reason)") }
        if replay.isDone { out.write(line: "nothing to replay: slot \(replay.request.slot) is at \(replay.start) already") }
    }

    static func table(_ outcome: SlotReplay.Outcome, dryRun: Bool) -> [String] {
        [["handler", dryRun ? "would_be_new" : "new", "already_planned"].joined(separator: "\t")]
            + outcome.handlers.map { "\($0.name)\t\($0.counts.new)\t\($0.counts.alreadyPlanned)" }
    }

    static func summary(of outcome: SlotReplay.Outcome, replay: SlotReplay) -> String {
        let new = outcome.handlers.reduce(0) { $0 + $1.counts.new }
        let planned = outcome.handlers.reduce(0) { $0 + $1.counts.alreadyPlanned }
        let effects = replay.request.dryRun ? "\(new) effects would be new, \(planned) are planned already"
                                            : "\(new) effects planned, \(planned) planned already and left out"
        guard outcome.reachedEnd else {
            return "\(effects); stopped at \(outcome.position) before the end \(replay.end.lsn): run the same command again to continue"
        }
        return replay.request.dryRun
            ? "\(effects); nothing was written, slot \(replay.request.slot) stays at \(replay.start)"
            : "\(effects); slot \(replay.request.slot) is at \(outcome.position), the end \(replay.end.lsn) reached"
    }
}
