import Core
import Logging
import Replication

/// One statement run every interval, first at once, on a connection of its own that is
/// kept between runs. A failure is logged and tried again at the next interval: periodic
/// housekeeping never stops the stream or the service.
final class PeriodicStatement {
    private let url: String
    private let sql: String
    /// Names the job in the log: "heartbeat".
    private let job: String
    private let interval: Duration
    private let logger: Logger
    private let clock = ContinuousClock()
    private var connection: PostgresConnection?
    private var due: ContinuousClock.Instant

    init(url: String, sql: String, job: String, interval: Duration, logger: Logger) {
        self.url = url
        self.sql = sql
        self.job = job
        self.interval = interval
        self.logger = logger
        due = clock.now
    }

    /// How long until the statement is due again (zero when it is due now).
    var untilDue: Duration { max(.zero, clock.now.duration(to: due)) }

    /// Runs the statement if it is due; its result, or nil when it was not due or failed.
    func runIfDue() -> QueryResult? {
        let now = clock.now
        guard now >= due else { return nil }
        due = now.advanced(by: interval)
        do {
            let connection = try self.connection ?? PostgresConnection(url: url)
            self.connection = connection
            return try connection.execute(sql)
        } catch {
            connection = nil
            logger.warning("\(job) failed; trying again at the next interval", metadata: [
                "error": "\(error)", "interval_ms": "\(interval.wholeMilliseconds)",
            ])
            return nil
        }
    }
}
