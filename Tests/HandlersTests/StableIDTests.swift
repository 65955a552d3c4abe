import Core
import Handlers
import PlannedEffects
import Testing

@Suite struct StableIDTests {
    /// Python's `uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")`.
    @Test func matchesTheRFCConstruction() {
        let dns: [UInt8] = [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]
        #expect(StableID.uuid5(namespace: dns, name: "python.org") == "886313e1-3b8a-5372-9b90-0c9aee199e5d")
    }

    /// `uuid.uuid5(uuid.NAMESPACE_URL, "changerelay")` is the namespace, and a position's
    /// id is fixed: a replay must reproduce it byte for byte.
    @Test func aSourcePositionAlwaysNamesTheSameID() {
        let url: [UInt8] = [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8]
        #expect(StableID.uuid5(namespace: url, name: "changerelay") == "1ba10b16-a418-52c0-a707-0dbbd670bd7c")
        let id = StableID.forChange("automations", commitLSN: LSN(0x16B3A50), index: 3, purpose: "execution")
        #expect(id == "517de862-8422-52f3-93a4-c08649c76947")
        #expect(StableID.forChange("automations", commitLSN: LSN(0x16B3A50), index: 4, purpose: "execution") != id)
    }
}
