import RelayConfiguration
import Core
import Decoding
import Foundation
@testable import Pipeline
import Testing

/// What the pgoutput path hands on of a transaction's logical messages: ChangeRelay's own
/// (a timer's tick), in order; another application's are dropped.
@Suite struct PluginDecodersTests {
    private static func bytes(_ tag: Character, _ parts: [[UInt8]]) -> [UInt8] {
        [UInt8(tag.asciiValue!)] + parts.flatMap { $0 }
    }

    private static func int64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    private static func int32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

    private static func message(lsn: UInt64, prefix: String, content: String) -> [UInt8] {
        bytes("M", [[1], int64(lsn), Array(prefix.utf8) + [0], int32(UInt32(content.utf8.count)), Array(content.utf8)])
    }

    @Test func onlyChangeRelaysTransactionalMessagesComeWithTheTransaction() throws {
        var decoder = PgOutputTransactionDecoder(protocolVersion: 1,
                                                 spill: SpillSettings(threshold: 1 << 20, directory: NSTemporaryDirectory()),
                                                 baseTypes: .unresolved)
        #expect(try decoder.consume(Self.bytes("B", [Self.int64(0x200), Self.int64(1_000), Self.int32(9)]), at: LSN(0x100)).isEmpty)
        #expect(try decoder.consume(Self.message(lsn: 0x110, prefix: "other.app", content: "x"), at: LSN(0x110)).isEmpty)
        #expect(try decoder.consume(Self.message(lsn: 0x120, prefix: "changerelay.tick", content: ""), at: LSN(0x120)).isEmpty)
        let committed = try decoder.consume(
            Self.bytes("C", [[0], Self.int64(0x200), Self.int64(0x230), Self.int64(1_000)]), at: LSN(0x200))
        #expect(committed.count == 1)
        #expect(committed.first?.messages == [LogicalMessage(lsn: LSN(0x120), prefix: "changerelay.tick", content: [])])
        #expect(committed.first?.changes.count == 0)
        #expect(PgOutputTransactionDecoder.options(.init(databaseURL: "", plugin: .pgoutput, slot: "s", publication: "p"))
                    .contains { $0 == ("messages", "true") })
    }
}
