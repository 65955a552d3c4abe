import Dispatch
import Replication

/// One libpq connection used from async request handlers: every call runs on one serial
/// queue (libpq blocks, and a connection serves one caller at a time), off the cooperative
/// pool. The connection is opened on first use and dropped after a failure, so the next call
/// connects again: a state database that comes back is found without a restart.
final class BlockingDatabase: @unchecked Sendable {
    private let url: String
    private let queue: DispatchQueue
    /// Touched only on `queue`.
    private var connection: PostgresConnection?

    init(url: String, name: String) {
        self.url = url
        queue = DispatchQueue(label: "changerelay.admin." + name)
    }

    /// Runs `body` with the connection on the queue. A short connect timeout and statement
    /// timeout keep a probe from hanging on an unreachable database.
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws(PostgresError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                do {
                    let db = try connection ?? PostgresConnection(url: url, parameters: [
                        ("connect_timeout", "2"), ("options", "-c statement_timeout=5000"),
                        ("application_name", "changerelay-admin"),
                    ])
                    connection = db
                    continuation.resume(returning: try body(db))
                } catch {
                    connection = nil
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}
