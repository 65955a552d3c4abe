import Core
import Replication
import Testing

@Suite struct LSNTests {
    @Test(arguments: [("0/0", UInt64(0)), ("16/B374D848", UInt64(0x16_B374_D848)), ("FFFFFFFF/FFFFFFFF", UInt64.max),
                      ("0/1", UInt64(1)), ("a/b", UInt64(0xA_0000_000B))])
    func parsesAndPrints(text: String, value: UInt64) throws {
        let lsn = try #require(LSN(text))
        #expect(lsn.value == value)
        #expect(lsn.description == text.uppercased())
    }

    @Test(arguments: ["", "/", "1/", "/1", "1/2/3", "G/0", "123456789/0", "0/123456789", " 0/1", "0x1/2", "-1/0", "+1/0", "1/+0", "１/0"])
    func rejectsMalformedText(text: String) {
        #expect(LSN(text) == nil)
    }

    @Test func ordersByPosition() {
        #expect(LSN("0/FFFFFFFF")! < LSN("1/0")!)
    }
}

@Suite struct PostgresTimestampTests {
    @Test(arguments: [
        (Int64(0), "2000-01-01 00:00:00+00"),
        (Int64(1), "2000-01-01 00:00:00.000001+00"),
        (Int64(-1), "1999-12-31 23:59:59.999999+00"),
        (Int64(120_000), "2000-01-01 00:00:00.12+00"),
        (Int64(825_505_327_123_456), "2026-02-27 11:02:07.123456+00"),
        (Int64(4_107_456_000_000_000), "2130-02-28 00:00:00+00"),
        (Int64(-946_684_800_000_000), "1970-01-01 00:00:00+00"),
    ])
    func printsLikePostgres(microseconds: Int64, text: String) {
        #expect(PostgresTimestamp(microsecondsSince2000: microseconds).postgresText == text)
    }

    /// As webhook bodies carry commit times: the fraction as Postgres prints it, a year past 9999 whole.
    @Test(arguments: [
        (Int64(0), "2000-01-01T00:00:00Z"),
        (Int64(1), "2000-01-01T00:00:00.000001Z"),
        (Int64(-1), "1999-12-31T23:59:59.999999Z"),
        (Int64(120_000), "2000-01-01T00:00:00.12Z"),
        (Int64(825_505_327_123_456), "2026-02-27T11:02:07.123456Z"),
        (Int64(252_455_616_000_000_000), "10000-01-01T00:00:00Z"),
    ])
    func printsRFC3339(microseconds: Int64, text: String) {
        #expect(PostgresTimestamp(microsecondsSince2000: microseconds).rfc3339 == text)
    }

    @Test(arguments: [
        (Int64(0), "2000-01-01T00:00:00.000Z"),
        (Int64(1), "2000-01-01T00:00:00.000Z"),
        (Int64(-1), "1999-12-31T23:59:59.999Z"),
        (Int64(120_000), "2000-01-01T00:00:00.120Z"),
        (Int64(825_505_327_123_456), "2026-02-27T11:02:07.123Z"),
    ])
    func printsRFC3339WithMilliseconds(microseconds: Int64, text: String) {
        #expect(PostgresTimestamp(microsecondsSince2000: microseconds).rfc3339Milliseconds == text)
    }

    @Test func convertsFromUnixTime() {
        #expect(PostgresTimestamp(unixMicroseconds: 946_684_800_000_000).microseconds == 0)
    }
}

@Suite struct BackoffTests {
    @Test func doublesUpToTheCapWithJitter() {
        var backoff = Backoff(initial: .milliseconds(100), cap: .seconds(1))
        let delays = (0..<8).map { _ in backoff.nextDelay() }
        #expect(delays[0] >= .milliseconds(50) && delays[0] <= .milliseconds(100))
        #expect(delays[2] >= .milliseconds(200) && delays[2] <= .milliseconds(400))
        #expect(delays.allSatisfy { $0 <= .seconds(1) })
        #expect(delays[7] >= .milliseconds(500))
        backoff.reset()
        #expect(backoff.nextDelay() <= .milliseconds(100))
    }
}
