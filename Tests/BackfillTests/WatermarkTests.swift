import Backfill
import Core
import Decoding
import Testing

/// Anyone can write a logical message under our prefix: only exact tokens are watermarks.
@Suite struct WatermarkTests {
    @Test func aWatermarkRoundTripsThroughItsMessage() throws {
        let token = ChunkToken(run: "3f2a", backfill: 12, chunk: 7)
        for kind in [Watermark.Kind.low, .high] {
            let mark = Watermark(kind, token)
            let parsed = try #require(Watermark(LogicalMessage(lsn: LSN(1), prefix: mark.prefix, content: Array(mark.content.utf8))))
            #expect(parsed == mark)
        }
    }

    @Test(arguments: [
        "", "a 1", "a 1 2 3", "a x 2", "a 1 y", "a 0 1", "a 1 0", "a -1 1", " 1 1", "a 1 99999999999999999999",
        String(repeating: "r", count: 65) + " 1 1", "a\t1\t1",
    ])
    func malformedContentIsNoWatermark(_ content: String) {
        #expect(Watermark(LogicalMessage(lsn: LSN(1), prefix: Watermark.lowPrefix, content: Array(content.utf8))) == nil)
    }

    @Test func otherPrefixesAreNoWatermarks() {
        for prefix in ["changerelay.tick", "changerelay.backfill", "changerelay.backfill.lower", "other.backfill.low"] {
            #expect(Watermark(LogicalMessage(lsn: LSN(1), prefix: prefix, content: Array("a 1 1".utf8))) == nil)
        }
    }

    @Test func hugeContentIsRefusedBeforeItIsRead() {
        let content = [UInt8](repeating: 0x61, count: 10_000)
        #expect(Watermark(LogicalMessage(lsn: LSN(1), prefix: Watermark.highPrefix, content: content)) == nil)
    }
}
