import Replication

/// The endpoints with unfinished deliveries, as the dispatcher last read them
/// (`DeliveryQueue.endpointsWithWork`). Reading them costs as much as the rest of a claim,
/// and they change with webhook configs, not with rows: a claim uses the last list while it
/// is younger than `maxAge`, and a notification (the planner committed rows, perhaps for a
/// new endpoint) or a new connection makes the next claim read it again. An endpoint listed
/// with no work left costs its claim one index probe; one not yet listed waits `maxAge` at
/// most, and only while the dispatcher is busy, since an idle one is woken by the notification.
struct EndpointCache {
    static let maxAge: Duration = .milliseconds(250)

    private var last: (endpoints: [String], at: ContinuousClock.Instant)?

    mutating func current(at now: ContinuousClock.Instant,
                          read: () throws(PostgresError) -> [String]) throws(PostgresError) -> [String] {
        if let last, now - last.at < Self.maxAge { return last.endpoints }
        let endpoints = try read()
        last = (endpoints, now)
        return endpoints
    }

    mutating func forget() {
        last = nil
    }
}
