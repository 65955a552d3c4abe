import Replication

/// The channel that wakes dispatchers: the batch committer notifies it in a checkpoint transaction
/// that planned deliveries, `deliveries retry` when it re-queues some, and every
/// dispatcher listens on it. A notification lost to a dropped connection costs only a
/// poll interval.
public enum DeliveryNotifications {
    static let channel = "changerelay_deliveries"

    /// Wakes every listening dispatcher once the caller's open transaction commits.
    public static let statement = "NOTIFY " + channel
}
