import Core
import Logging
import Replication

/// Writes a small non-transactional logical message into the source's WAL every
/// interval. Where the published tables are quiet but the server's WAL still grows
/// (other databases, hosted Postgres housekeeping), decoding this message gives the
/// walsender a position inside this database to report, so the slot keeps up and
/// the host does not retain WAL for it. A failed heartbeat never stops the stream.
final class Heartbeat {
    static let prefix = "changerelay.heartbeat"

    private let statement: PeriodicStatement

    init(url: String, interval: Duration, logger: Logger) {
        statement = PeriodicStatement(url: url, sql: "SELECT pg_logical_emit_message(false, \(quoteLiteral(Self.prefix)), '')",
                                      job: "heartbeat", interval: interval, logger: logger)
    }

    func beatIfDue() { _ = statement.runIfDue() }
}
