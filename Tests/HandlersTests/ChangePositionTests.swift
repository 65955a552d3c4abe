import Core
import Decoding
import Handlers
import PlannedEffects
import Testing

/// One format for every key derived from a change: idempotency keys, staged-row keys and
/// the names behind stable ids are stored and sent, so their text never changes.
@Suite struct ChangePositionTests {
    private let position = Transaction(xid: 1, commitLSN: LSN(0x1_0000_0200), endLSN: LSN(0x1_0000_0230),
                                       commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [])
        .position(ofChange: 3)

    @Test func aKeyIsTheHandlerTheCommitLSNTheIndexAndASuffix() {
        #expect(position.key(handler: "dual_write") == "dual_write:1/200:3")
        #expect(position.key(handler: "dual_write", suffix: "old") == "dual_write:1/200:3:old")
        #expect(position.key(handler: "automations", suffix: "execution:w1") == "automations:1/200:3:execution:w1")
    }

    @Test func stableIDsAndIdempotencyKeysAreMadeFromTheSameKey() {
        #expect(StableID.forChange("automations", commitLSN: LSN(0x1_0000_0200), index: 3, purpose: "execution:w1")
                    == StableID.uuid5(namespace: StableID.namespace, name: "automations:1/200:3:execution:w1"))
        let delivery = PlannedDelivery(target: "echo", url: "http://127.0.0.1:9", body: "{}", orderingKey: nil,
                                       retryPolicy: .fixed(delay: .seconds(1), maxAttempts: 1))
        #expect(PositionedDelivery(handler: "echo", position: position, delivery: delivery).idempotencyKey == "echo:1/200:3:echo")
    }
}
