import Core
import Logging
import Replication

/// Closes time windows on a quiet database. When a deadline a handler published passes,
/// it commits a transaction that holds only a logical message (`changerelay.tick`) on the
/// source; the stream delivers it like any commit, later in the WAL than everything
/// committed before the deadline, and the handler closes what was due before its commit
/// time, in the checkpoint transaction like every other effect. The ticker decides nothing
/// and writes no state: a lost or doubled tick only closes a window later or not again.
///
/// It sleeps until the deadline or until a new one is published; it never polls.
public final class CommitTicker {
    public static let prefix = "changerelay.tick"

    private let url: String
    private let deadline: NextDeadline
    private let logger: Logger
    private var connection: PostgresConnection?
    private var backoff = Backoff(initial: .milliseconds(200), cap: .seconds(10))

    public init(sourceURL: String, deadline: NextDeadline, logger: Logger) {
        url = sourceURL
        self.deadline = deadline
        self.logger = logger
    }

    /// How long to wait for a tick to close its deadline before writing another: the stream
    /// may be behind (a backlog), and a tick written again changes nothing.
    static let patience: Duration = .seconds(5)

    public func run(until stop: StopSignal) {
        /// The deadline ticked for, and the server's clock when that tick committed.
        var ticked: (deadline: PostgresTimestamp, serverTime: PostgresTimestamp, at: ContinuousClock.Instant)?
        let clock = ContinuousClock()
        while !stop.isRequested {
            guard let due = deadline.current else {
                ticked = nil
                deadline.wait(for: .seconds(3600), unless: stop)
                continue
            }
            let now = PostgresTimestamp.now
            if let last = ticked, last.deadline == due {
                // The tick's commit time must pass the deadline: with a server clock behind
                // this one, tick again once the difference has elapsed; otherwise give the
                // stream time to deliver it.
                let wait = last.serverTime > due ? Self.patience - (clock.now - last.at)
                    : .microseconds(due.microseconds - last.serverTime.microseconds + 1000) - (clock.now - last.at)
                if wait > .zero {
                    deadline.wait(for: wait, unless: stop)
                    continue
                }
            } else if due >= now {
                // Linux lets a `poll` timeout end up to 0.1 % late (30 ms on a 30 s window):
                // wait that much less, and the rest again.
                // The connection is opened before the wait, not in the tick's lateness.
                _ = try? connected()
                let left = Duration.microseconds(due.microseconds - now.microseconds)
                deadline.wait(for: left - left / 500 + .microseconds(500), unless: stop)
                continue
            }
            if let serverTime = tick(for: due) {
                ticked = (due, serverTime, clock.now)
                backoff.reset()
            } else {
                stop.sleep(for: backoff.nextDelay())
            }
        }
    }

    /// Commits the tick; the server's clock at that moment, or nil when it failed (logged).
    private func tick(for due: PostgresTimestamp) -> PostgresTimestamp? {
        do {
            let result = try connected().execute("""
                SELECT pg_logical_emit_message(true, \(quoteLiteral(Self.prefix)), '') AS lsn,
                       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS server_time
                """)
            logger.debug("tick written", metadata: ["due": "\(due.postgresText)", "lsn": "\(result.value("lsn") ?? "?")"])
            return result.value("server_time").flatMap { Int64($0) }.map { PostgresTimestamp(unixMicroseconds: $0) }
        } catch {
            connection = nil
            logger.warning("cannot write a tick to close a message window; trying again", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func connected() throws(PostgresError) -> PostgresConnection {
        if let connection { return connection }
        let connection = try PostgresConnection(url: url)
        self.connection = connection
        return connection
    }
}
