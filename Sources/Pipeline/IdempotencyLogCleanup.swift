#if canImport(Glibc)
import Glibc
#endif
import Logging
import Replication

/// What the seed's hourly `pg_cron` job did: deletes expired `idempotency_log` rows
/// through `public.cleanup_idempotency_log()`, at start and then every interval. A
/// failure is logged and tried again at the next interval; it never stops the service.
public final class IdempotencyLogCleanup {
    private let url: String
    private let interval: Duration
    private let logger: Logger
    private let clock = ContinuousClock()
    private var connection: PostgresConnection?
    private var due: ContinuousClock.Instant

    public init(stateURL: String, interval: Duration, logger: Logger) {
        url = stateURL
        self.interval = interval
        self.logger = logger
        due = clock.now
    }

    /// Runs until `shouldStop`, looking at the clock every `step`.
    public func run(shouldStop: () -> Bool, step: Duration = .milliseconds(200)) {
        while !shouldStop() {
            runIfDue()
            usleep(UInt32(clamping: step.wholeMilliseconds * 1000))
        }
    }

    private func runIfDue() {
        let now = clock.now
        guard now >= due else { return }
        due = now.advanced(by: interval)
        do {
            let connection = try self.connection ?? PostgresConnection(url: url)
            self.connection = connection
            let deleted = try connection.execute("SELECT public.cleanup_idempotency_log() AS deleted").value("deleted")
            if let deleted, deleted != "0" {
                logger.info("deleted expired idempotency_log rows", metadata: ["rows": "\(deleted)"])
            }
        } catch {
            connection = nil
            logger.warning("idempotency_log clean-up failed; trying again at the next interval", metadata: [
                "error": "\(error)", "interval_s": "\(interval.components.seconds)",
            ])
        }
    }
}
