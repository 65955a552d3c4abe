import Testing
import Delivery

@Suite struct OrderingGateTests {
    private typealias Due = DueDelivery<String>

    private func due(_ id: String, _ key: String?, _ sequence: Int64) -> Due {
        Due(id: id, orderingKey: key, sequence: sequence)
    }

    @Test func oneDeliveryPerKeyTheEarliestFirst() {
        let batch = [
            due("a2", "conversation:1", 2), due("b1", "job:7", 10), due("a1", "conversation:1", 1),
            due("x", nil, 99), due("c1", "endpoint:3/trip:9", 5), due("b2", "job:7", 11), due("y", nil, 98),
        ]
        #expect(OrderingGate.admissible(batch, busyKeys: []).map(\.id) == ["b1", "a1", "x", "c1", "y"])
    }

    @Test func aBusyKeyHoldsBackOnlyItself() {
        let batch = [due("a1", "a", 1), due("b1", "b", 2), due("a2", "a", 3), due("c1", "c", 4), due("z", nil, 5)]
        #expect(OrderingGate.admissible(batch, busyKeys: ["b"]).map(\.id) == ["a1", "c1", "z"])
        #expect(OrderingGate.admissible(batch, busyKeys: ["a", "b", "c"]).map(\.id) == ["z"])
    }

    @Test func nothingDueNothingSent() {
        #expect(OrderingGate.admissible([Due](), busyKeys: ["a"]).isEmpty)
    }

    @Test func unkeyedDeliveriesAllGo() {
        let batch = (1...5).map { due("u\($0)", nil, Int64($0)) }
        #expect(OrderingGate.admissible(batch, busyKeys: ["u1"]) == batch)
    }

    /// Drives the gate the way the dispatcher does: every round, deliveries that failed are
    /// waiting for their retry and their key is busy. Key "b" fails twice, then recovers.
    @Test func perKeyOrderHoldsWhileOneKeyFails() {
        struct Pending { var delivery: DueDelivery<String>; var dueRound: Int }
        var pending = [
            ("a1", "a", 1), ("b1", "b", 2), ("a2", "a", 3), ("c1", "c", 4),
            ("b2", "b", 5), ("a3", "a", 6), ("c2", "c", 7), ("b3", "b", 8),
        ].map { Pending(delivery: due($0.0, $0.1, Int64($0.2)), dueRound: 0) }
        var failuresLeft = ["b": 2]
        var deliveredAt: [String: Int] = [:]
        var log: [String: [Int64]] = [:]

        for round in 0..<20 where !pending.isEmpty {
            let busy = Set(pending.filter { $0.dueRound > round }.compactMap(\.delivery.orderingKey))
            let sendable = OrderingGate.admissible(pending.filter { $0.dueRound <= round }.map(\.delivery), busyKeys: busy)
            #expect(Set(sendable.compactMap(\.orderingKey)).count == sendable.count, "one in flight per key")
            for delivery in sendable {
                let key = delivery.orderingKey!
                let index = pending.firstIndex { $0.delivery.id == delivery.id }!
                if let left = failuresLeft[key], left > 0 {
                    failuresLeft[key] = left - 1
                    pending[index].dueRound = round + 2
                } else {
                    pending.remove(at: index)
                    log[key, default: []].append(delivery.sequence)
                    deliveredAt[delivery.id] = round
                }
            }
        }

        #expect(pending.isEmpty)
        #expect(log == ["a": [1, 3, 6], "b": [2, 5, 8], "c": [4, 7]])
        // "a" and "c" finish while "b" is still failing.
        #expect(deliveredAt["a3"]! < deliveredAt["b1"]!)
        #expect(deliveredAt["c2"]! < deliveredAt["b1"]!)
    }
}
