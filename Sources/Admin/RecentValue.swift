import Synchronization

/// A value read from a database and used again while it is younger than `maxAge`: counting
/// deliveries walks every row counted, and a scraper or a dashboard asking every second
/// would otherwise make that walk a steady cost to the pipeline sharing the database.
final class RecentValue<Value: Sendable>: Sendable {
    private let maxAge: Duration
    private let last = Mutex<(at: ContinuousClock.Instant, value: Value)?>(nil)

    init(maxAge: Duration) {
        self.maxAge = maxAge
    }

    /// The remembered value, or what `read` gives now (then remembered). A failed read
    /// remembers nothing.
    func value(_ read: () async throws -> Value) async rethrows -> Value {
        let now = ContinuousClock.now
        if let cached = last.withLock({ $0 }), now - cached.at < maxAge { return cached.value }
        let value = try await read()
        last.withLock { $0 = (now, value) }
        return value
    }

    /// The next read asks again: what was remembered is known to have changed.
    func forget() {
        last.withLock { $0 = nil }
    }
}
