/// Capped exponential backoff for reconnects: 0.5 s, 1 s, 2 s … up to `cap`, with
/// jitter so that several instances do not reconnect in lockstep.
public struct Backoff: Sendable {
    public var initial: Duration
    public var cap: Duration
    private var attempt = 0

    public init(initial: Duration = .milliseconds(500), cap: Duration = .seconds(30)) {
        self.initial = initial
        self.cap = cap
    }

    /// The delay before the next try; each call doubles it up to the cap.
    public mutating func nextDelay() -> Duration {
        let exponent = min(attempt, 30)
        attempt += 1
        let base = min(initial * (1 << exponent), cap)
        return base * Double.random(in: 0.5...1.0)
    }

    /// Call once a connection works again.
    public mutating func reset() { attempt = 0 }
}
