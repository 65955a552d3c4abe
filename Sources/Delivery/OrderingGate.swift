/// A delivery whose time has come, as the dispatcher sees it when choosing what to send.
public struct DueDelivery<ID: Hashable & Sendable>: Sendable, Hashable {
    public var id: ID
    /// Deliveries with the same key (one conversation, one job, one endpoint and record) must
    /// reach the receiver in `sequence` order; nil means the delivery depends on nothing.
    public var orderingKey: String?
    /// Planning order within the key, e.g. the row's position in the source stream.
    public var sequence: Int64

    public init(id: ID, orderingKey: String?, sequence: Int64) {
        self.id = id
        self.orderingKey = orderingKey
        self.sequence = sequence
    }
}

/// Chooses which due deliveries may go now, so that a key never has two requests in flight
/// and never overtakes itself, while a key that is failing delays nothing but its own
/// deliveries (guarantee 4 without letting one dead endpoint stall the rest).
public enum OrderingGate {
    /// `busyKeys` holds every key with a delivery in flight, or failed and waiting for its
    /// retry, or otherwise unfinished with an earlier sequence than anything in `due`: the
    /// gate only sees `due`, so such a key must be named there to stay closed.
    ///
    /// Per open key the lowest sequence goes; unkeyed deliveries all go. The result keeps
    /// the order of `due` (typically oldest first), so the caller can take a prefix to fit
    /// its concurrency.
    public static func admissible<ID>(_ due: [DueDelivery<ID>], busyKeys: Set<String>) -> [DueDelivery<ID>] {
        var headOfKey: [String: Int] = [:]
        for (index, delivery) in due.enumerated() {
            guard let key = delivery.orderingKey, !busyKeys.contains(key) else { continue }
            if let head = headOfKey[key], due[head].sequence <= delivery.sequence { continue }
            headOfKey[key] = index
        }
        return due.indices.compactMap { index in
            guard let key = due[index].orderingKey else { return due[index] }
            return headOfKey[key] == index ? due[index] : nil
        }
    }
}
