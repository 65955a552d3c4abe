import Logging
import Replication

/// Writes a small non-transactional logical message into the source's WAL every
/// interval. Where the published tables are quiet but the server's WAL still grows
/// (other databases, hosted Postgres housekeeping), decoding this message gives the
/// walsender a position inside this database to report, so the slot keeps up and
/// the host does not retain WAL for it. A failed heartbeat is logged and tried again
/// at the next interval; it never stops the stream.
final class Heartbeat {
    static let prefix = "changerelay.heartbeat"

    private let url: String
    private let interval: Duration
    private let logger: Logger
    private let clock = ContinuousClock()
    private var connection: PostgresConnection?
    private var due: ContinuousClock.Instant

    init(url: String, interval: Duration, logger: Logger) {
        self.url = url
        self.interval = interval
        self.logger = logger
        due = clock.now
    }

    func beatIfDue() {
        let now = clock.now
        guard now >= due else { return }
        due = now.advanced(by: interval)
        do {
            let connection = try self.connection ?? PostgresConnection(url: url)
            self.connection = connection
            try connection.execute("SELECT pg_logical_emit_message(false, \(quoteLiteral(Self.prefix)), '')")
        } catch {
            connection = nil
            logger.warning("heartbeat failed; trying again at the next interval", metadata: [
                "error": "\(error)", "interval_ms": "\(interval.wholeMilliseconds)",
            ])
        }
    }
}
