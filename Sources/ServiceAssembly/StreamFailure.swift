import Replication
import Synchronization

/// Why the stream is not running when it should be, for `/readyz`: set while the source
/// refuses or drops it, cleared once it streams or stands by for another instance's slot.
/// A standby that said "ready" while its source was unreachable hid the outage.
final class StreamFailure: Sendable {
    private let error = Mutex<PostgresError?>(nil)

    func set(_ failure: PostgresError?) { error.withLock { $0 = failure } }

    var current: PostgresError? { error.withLock { $0 } }
}
