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
/// It sleeps until the deadline or until a new one is published; it never polls while this
/// instance streams. A standby ticks for nothing: its handlers' deadlines are those it
/// loaded at start, and the instance streaming the slot closes the windows; it looks once a
/// second whether it streams now.
///
/// Deadlines are the source's commit times, so the wait is measured on the source's clock:
/// the difference from this host's, read when the ticker connects and at each tick, is
/// added to the local time. A host clock behind the server's otherwise made every tick late
/// by the difference.
public final class CommitTicker {
    public static let prefix = "changerelay.tick"

    private let url: String
    private let deadline: NextDeadline
    private let isStreaming: @Sendable () -> Bool
    /// This host's clock.
    private let localNow: @Sendable () -> PostgresTimestamp
    private let logger: Logger
    private var connection: PostgresConnection?
    private var backoff = Backoff(initial: .milliseconds(200), cap: .seconds(10))
    /// The server's clock minus this host's, as last measured.
    private var serverAhead: Duration = .zero

    public init(sourceURL: String, deadline: NextDeadline, isStreaming: @escaping @Sendable () -> Bool = { true },
                localNow: @escaping @Sendable () -> PostgresTimestamp = { .now }, logger: Logger) {
        url = sourceURL
        self.deadline = deadline
        self.isStreaming = isStreaming
        self.localNow = localNow
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
            guard isStreaming() else {
                ticked = nil
                deadline.wait(for: .seconds(1), unless: stop)
                continue
            }
            guard let due = deadline.current else {
                ticked = nil
                deadline.wait(for: .seconds(3600), unless: stop)
                continue
            }
            // The connection is opened before the wait, not in the tick's lateness, and tells
            // how far the server's clock is from this one.
            _ = try? connected()
            let now = localNow().advanced(by: serverAhead)
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
            let serverTime = result.value("server_time").flatMap { Int64($0) }.map { PostgresTimestamp(unixMicroseconds: $0) }
            if let serverTime { serverAhead = .microseconds(serverTime.microseconds - localNow().microseconds) }
            return serverTime
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
        let asked = localNow()
        if let server = try connection.execute("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS t")
            .value("t").flatMap({ Int64($0) }) {
            // The server read its clock about halfway through the round trip.
            let halfway = asked.microseconds + (localNow().microseconds - asked.microseconds) / 2
            serverAhead = .microseconds(PostgresTimestamp(unixMicroseconds: server).microseconds - halfway)
        }
        return connection
    }
}
