import Replication

/// Where the unfinished deliveries are, as the dispatcher last read them
/// (`DeliveryQueue.openDeliveries`). Reading it costs as much as the rest of a claim, and
/// it changes with webhook configs and the oldest open rows, not with every row: a claim
/// uses the last reading while it is younger than `maxAge`, and a notification (the planner
/// committed rows, perhaps for a new endpoint) or a new connection makes the next claim read
/// it again. An endpoint listed with no work left costs its claim one index probe; one not
/// yet listed, or a row below its floor, waits `maxAge` at most, and only while the
/// dispatcher is busy, since an idle one is woken by the notification.
struct EndpointCache<Reading: Sendable> {
    static var maxAge: Duration { .milliseconds(250) }

    private var last: (reading: Reading, at: ContinuousClock.Instant)?

    mutating func current(at now: ContinuousClock.Instant,
                          read: () throws(PostgresError) -> Reading) throws(PostgresError) -> Reading {
        if let last, now - last.at < Self.maxAge { return last.reading }
        let reading = try read()
        last = (reading, now)
        return reading
    }

    mutating func forget() {
        last = nil
    }
}
