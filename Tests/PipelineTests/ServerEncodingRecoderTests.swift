@testable import Pipeline
import Testing

/// wal2json's records in the database's encoding, read as UTF-8.
@Suite struct ServerEncodingRecoderTests {
    @Test(arguments: [
        ("LATIN1", [0x63, 0x61, 0x66, 0xE9, 0x20, 0xFF], "café ÿ"),
        ("LATIN9", [0xA4], "€"),
        ("WIN1251", [0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2], "Привет"),
        ("WIN1252", [0x80, 0x93, 0x94], "€\u{201C}\u{201D}"),
        ("KOI8R", [0xF0, 0xD2, 0xC9], "При"),
        ("EUC_JP", [0xC6, 0xFC, 0xCB, 0xDC], "日本"),
        ("ISO_8859_7", [0xE1, 0xE2], "αβ"),
    ] as [(String, [UInt8], String)])
    func recordsAreConvertedFromTheDatabasesEncoding(encoding: String, bytes: [UInt8], text: String) throws {
        let recoder = try #require(try ServerEncodingRecoder(serverEncoding: encoding))
        let record = Array(#"{"v":""#.utf8) + bytes + Array(#""}"#.utf8)
        #expect(try recoder.utf8(record) == Array(#"{"v":"\#(text)"}"#.utf8))
        #expect(try recoder.utf8(record) == recoder.utf8(record), "the descriptor's state does not carry over")
    }

    @Test func utf8NeedsNoRecoder() throws {
        #expect(try ServerEncodingRecoder(serverEncoding: "UTF8") == nil)
    }

    /// SQL_ASCII stores any bytes: those that are not UTF-8 read as U+FFFD, as pgoutput shows them.
    @Test func sqlAsciiKeepsUTF8AndReplacesTheRest() throws {
        let recoder = try #require(try ServerEncodingRecoder(serverEncoding: "SQL_ASCII"))
        #expect(try recoder.utf8(Array("café".utf8)) == Array("café".utf8))
        #expect(try recoder.utf8([0x61, 0xE9, 0x62]) == Array("a\u{FFFD}b".utf8))
    }

    @Test func anEncodingWithoutAConversionIsRefusedNamingPgoutput() {
        #expect {
            try ServerEncodingRecoder(serverEncoding: "MULE_INTERNAL")
        } throws: { error in
            "\(error)".contains("MULE_INTERNAL") && "\(error)".contains("pgoutput")
        }
    }

    /// EUC_JP has no character 0xFF: the record is not what its database stores.
    @Test func bytesTheEncodingDoesNotAllowAreAnError() throws {
        let recoder = try #require(try ServerEncodingRecoder(serverEncoding: "EUC_JP"))
        #expect(throws: UnconvertibleRecord.self) { try recoder.utf8([0x7B, 0xFF, 0xFF, 0x7D]) }
        #expect(try recoder.utf8(Array("{}".utf8)) == Array("{}".utf8), "a failure leaves the descriptor usable")
    }
}
