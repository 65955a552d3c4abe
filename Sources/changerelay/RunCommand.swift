import Admin
import ArgumentParser
import Logging
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
        bootstrapLogging(config.log)
        do {
            let service = try ChangeRelayService(config, credentials: try ChangeRelayService.credentials(config), role: only,
                                                 metrics: config.adminListen == AdminSettings.off ? MetricsExport() : .process)
            try await service.run()
            Logger(label: "changerelay.run").info("stopped")
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }
}

extension ChangeRelayService.Role: ExpressibleByArgument {}
