import Core
import Logging
import Replication

/// What the seed's hourly `pg_cron` job did: deletes expired `idempotency_log` rows
/// through `public.cleanup_idempotency_log()`, at start and then every interval. A
/// failure is logged and tried again at the next interval; it never stops the service.
public final class IdempotencyLogCleanup {
    private let statement: PeriodicStatement
    private let logger: Logger

    public init(stateURL: String, interval: Duration, logger: Logger) {
        statement = PeriodicStatement(url: stateURL, sql: "SELECT public.cleanup_idempotency_log() AS deleted",
                                      job: "idempotency_log clean-up", interval: interval, logger: logger)
        self.logger = logger
    }

    /// Runs until `stop` is asked, sleeping between runs.
    public func run(until stop: StopSignal) {
        repeat {
            if let deleted = statement.runIfDue()?.value("deleted"), deleted != "0" {
                logger.info("deleted expired idempotency_log rows", metadata: ["rows": "\(deleted)"])
            }
        } while !stop.sleep(for: statement.untilDue)
    }
}
