import Admin
import ArgumentParser
import Logging
import Pipeline
import ServiceAssembly

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The service: stream, handlers, planner commit, dispatcher.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "all (default); planner: read the slot and plan, send nothing; dispatcher: only send (scale out).")
    var only: ChangeRelayService.Role = .all

    func run() async throws {
        ProcessSignals.prepare()
        let config = try options.load()
        bootstrapLogging(config)
        let logger = Logger(label: "changerelay.run")
        do {
            // A standby that takes the slot over finds the checkpoint moved on since it loaded
            // its state: it builds the whole service again, as of the checkpoint it now holds.
            while true {
                let service = try ChangeRelayService(config, credentials: try ChangeRelayService.credentials(config), role: only,
                                                     metrics: config.adminListen == AdminSettings.off ? MetricsExport() : .process)
                do {
                    try await service.run()
                    break
                } catch let moved as CheckpointMoved {
                    logger.notice("taking the slot over: rebuilding the service", metadata: [
                        "slot": "\(moved.slot)", "loaded": "\(moved.loaded)", "checkpoint": "\(moved.stored)",
                    ])
                }
            }
            logger.info("stopped")
        } catch let error as CustomStringConvertible & Error {
            // With JSON logs every line on standard error is an object: the error is one too.
            guard config.log.format == .json else { throw failure(error.description) }
            logger.critical("stopped by an error", metadata: ["error": "\(error.description)"])
            throw ExitCode.failure
        }
    }
}

extension ChangeRelayService.Role: ExpressibleByArgument {}
