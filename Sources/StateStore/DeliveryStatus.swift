/// `changerelay.deliveries.status`, as the table's CHECK constraint allows it.
public enum DeliveryStatus: String, Sendable, Hashable, CaseIterable {
    /// Planned and not tried yet, or re-queued by `deliveries retry`.
    case pending
    /// Claimed by a dispatcher until `locked_until`; a claim that outlives it is taken over.
    case sending
    case succeeded
    /// Tried and due again at `next_attempt_at`.
    case failed
    /// Given up on; only `deliveries retry` sends it again.
    case dead
}
