@testable import Admin
import Testing

@Suite struct ScrapedGaugesTests {
    private static func exported(_ update: (ScrapedGauges) -> Void) -> String {
        let export = MetricsExport()
        let gauges = ScrapedGauges(export, handlers: ["echo"])
        update(gauges)
        return String(decoding: export.emit(), as: UTF8.self)
    }

    private static func sample(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }

    /// Lag is a byte count: large values must read as themselves, not as the bits of a float
    /// (which turned 12 MB into 5.9e-317 and kept every lag alert silent).
    @Test(arguments: [0, 1, 12_030_864, 4 * 1024 * 1024 * 1024, 1 << 52] as [UInt64])
    func lagIsExportedAsItsValue(bytes: UInt64) {
        let text = Self.exported { $0.update(lagBytes: bytes) }
        #expect(Self.sample(ScrapedGauges.lagName, in: text) == Double(bytes), "\(text)")
    }

    @Test func anUnknownLagIsNaN() {
        let text = Self.exported { $0.update(lagBytes: nil) }
        #expect(Self.sample(ScrapedGauges.lagName, in: text)?.isNaN == true, "\(text)")
    }

    @Test func theCheckpointIsExportedAsItsPosition() {
        let text = Self.exported { $0.update(checkpoint: 0x1_0000_0000, counts: [], buffersOpen: 3) }
        #expect(Self.sample(ScrapedGauges.checkpointName, in: text) == Double(0x1_0000_0000))
        #expect(Self.sample(ScrapedGauges.buffersName, in: text) == 3)
    }
}
