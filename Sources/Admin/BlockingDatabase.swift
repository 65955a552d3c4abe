import Dispatch
import Replication
import Synchronization

/// One libpq connection used from async request handlers: every call runs on one serial
/// queue (libpq blocks, and a connection serves one caller at a time), off the cooperative
/// pool. The connection is opened on first use and dropped after a failure, so the next call
/// connects again: a state database that comes back is found without a restart.
final class BlockingDatabase: @unchecked Sendable {
    /// A call that got no answer in time. Its work may still finish on the queue; the caller
    /// has stopped waiting for it.
    struct NoAnswer: Error, CustomStringConvertible {
        var within: Duration
        var description: String { "no answer within \(within.wholeMilliseconds) ms" }
    }

    private let url: String
    private let queue: DispatchQueue
    /// Touched only on `queue`.
    private var connection: PostgresConnection?

    init(url: String, name: String) {
        self.url = url
        queue = DispatchQueue(label: "changerelay.admin." + name)
    }

    /// Runs `body` with the connection on the queue. A short connect timeout and statement
    /// timeout keep a probe from hanging on an unreachable database; `deadline` bounds the
    /// wait for one that stops answering on a connection already open (a frozen server, a
    /// network that drops packets), which neither timeout sees: the caller gets `NoAnswer`,
    /// and calls queued behind the stuck one get it too until the queue moves again.
    func run<T: Sendable>(within deadline: Duration = .seconds(10),
                          _ body: @escaping @Sendable (PostgresConnection) throws(PostgresError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let answer = OneAnswer(continuation)
            queue.async { [self] in
                do {
                    let db = try connection ?? PostgresConnection(url: url, parameters: [
                        ("connect_timeout", "2"), ("options", "-c statement_timeout=5000"),
                        ("application_name", "changerelay-admin"),
                    ])
                    connection = db
                    answer.give(.success(try body(db)))
                } catch {
                    connection = nil
                    answer.give(.failure(error))
                }
            }
            let nanoseconds = Int(min(deadline.wholeMilliseconds, Int64(Int.max / 1_000_000))) * 1_000_000
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                answer.give(.failure(NoAnswer(within: deadline)))
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

    func give(_ result: Result<T, any Error>) {
        continuation.withLock { $0.take() }?.resume(with: result)
    }
}
