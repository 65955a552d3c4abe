@testable import Delivery
import Testing

/// What a log column keeps of a response body: a receiver chooses the bytes, and the 4 KiB
/// kept must stay 4 KiB however many of them are not UTF-8.
@Suite struct StorableBodyTests {
    @Test func invalidBytesAreReplacedWithoutGrowingPastTheBodysLength() {
        let body = (0..<4096).map { UInt8(0x80 + $0 % 0x80) }
        let stored = HTTPResponse(status: 500, body: body).storableBody
        #expect(stored.utf8.count <= 4096)
        #expect(stored.unicodeScalars.allSatisfy { $0 == "\u{FFFD}" })
        #expect(!stored.isEmpty)
    }

    @Test func validTextAndNulBytes() {
        #expect(HTTPResponse(status: 200, body: Array("ok ✓".utf8)).storableBody == "ok ✓")
        #expect(HTTPResponse(status: 200, body: [0x61, 0, 0x62]).storableBody == "ab")
        // A multi-byte character cut by the body limit is one replacement, within the length.
        let cut = Array("ab✓".utf8).dropLast()
        let stored = HTTPResponse(status: 200, body: Array(cut)).storableBody
        #expect(stored.utf8.count <= cut.count && stored.hasPrefix("ab"))
    }
}
