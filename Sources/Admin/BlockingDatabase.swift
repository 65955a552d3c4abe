import Dispatch
import Replication
import Synchronization

/// One libpq connection used from async request handlers: every call runs on one serial
/// queue (libpq blocks, and a connection serves one caller at a time), off the cooperative
/// pool. The connection is opened on first use and dropped after a failure, so the next call
/// connects again: a state database that comes back is found without a restart.
final class BlockingDatabase: Sendable {
    /// A call that got no answer in time. Its work may still finish on the queue; the caller
    /// has stopped waiting for it.
    struct NoAnswer: Error, CustomStringConvertible {
        var within: Duration
        var description: String { "no answer within \(within.wholeMilliseconds) ms" }
    }

    /// A queue and the connection used on it (touched only there).
    private final class Lane: @unchecked Sendable {
        let queue: DispatchQueue
        var connection: PostgresConnection?

        init(_ label: String) { queue = DispatchQueue(label: label) }
    }

    private let url: String
    private let label: String
    private let lane: Mutex<Lane>

    init(url: String, name: String) {
        self.url = url
        label = "changerelay.admin." + name
        lane = Mutex(Lane(label))
    }

    /// Runs `body` with the connection on the queue. A short connect timeout, a statement
    /// timeout and TCP keepalives keep a probe from hanging on an unreachable database;
    /// `deadline` bounds the wait for one that stops answering on a connection already open
    /// (a frozen server, a network that drops packets), which the server's timeout never
    /// sees: the caller gets `NoAnswer`, and the stuck queue and its connection are left
    /// behind, so the next call connects afresh instead of waiting behind it.
    func run<T: Sendable>(within deadline: Duration = .seconds(10),
                          _ body: @escaping @Sendable (PostgresConnection) throws(PostgresError) -> T) async throws -> T {
        let current = lane.withLock { $0 }
        return try await withCheckedThrowingContinuation { continuation in
            let answer = OneAnswer(continuation)
            current.queue.async { [url] in
                do {
                    let db = try current.connection ?? PostgresConnection(url: url, parameters: [
                        ("connect_timeout", "2"), ("options", "-c statement_timeout=5000"),
                        ("application_name", "changerelay-admin"), ("keepalives_idle", "10"),
                        ("keepalives_interval", "5"), ("keepalives_count", "3"), ("tcp_user_timeout", "20000"),
                    ])
                    current.connection = db
                    answer.give(.success(try body(db)))
                } catch {
                    current.connection = nil
                    answer.give(.failure(error))
                }
            }
            let nanoseconds = Int(min(deadline.wholeMilliseconds, Int64(Int.max / 1_000_000))) * 1_000_000
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                guard answer.give(.failure(NoAnswer(within: deadline))) else { return }
                lane.withLock { if $0 === current { $0 = Lane(label) } }
            }
        }
    }
}

/// Resumes a continuation with the first result given; later ones are dropped.
private final class OneAnswer<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    /// Whether this was the first result.
    @discardableResult
    func give(_ result: Result<T, any Error>) -> Bool {
        guard let waiting = continuation.withLock({ $0.take() }) else { return false }
        waiting.resume(with: result)
        return true
    }
}
