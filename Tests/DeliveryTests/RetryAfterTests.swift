import Core
import Delivery
import PlannedEffects
import Testing

@Suite struct RetryAfterTests {
    @Test(arguments: [("0", 0), ("120", 120), ("  30\t", 30), ("007", 7), ("3600", 3_600)] as [(String, Int64)])
    func deltaSeconds(header: String, seconds: Int64) {
        #expect(RetryAfter.delay(parsing: header, now: 1_000) == .seconds(seconds))
    }

    @Test(arguments: ["", "   ", "soon", "-5", "+5", "1.5", "12 34", "0x10", "5s", "١٢"])
    func garbageIsIgnored(header: String) {
        #expect(RetryAfter.delay(parsing: header, now: 1_000) == nil)
    }

    @Test func longWaitsAreClampedToTheCap() {
        #expect(RetryAfter.delay(parsing: "3601", now: 0) == .seconds(3_600))
        #expect(RetryAfter.delay(parsing: "99999999999999999999999999", now: 0) == .seconds(3_600))
        #expect(RetryAfter.delay(parsing: "90", now: 0, cap: .seconds(60)) == .seconds(60))
        #expect(RetryAfter.delay(parsing: "60", now: 0, cap: .milliseconds(60_500)) == .seconds(60))
        #expect(RetryAfter.delay(parsing: "61", now: 0, cap: .milliseconds(60_500)) == .milliseconds(60_500))
        #expect(RetryAfter.delay(parsing: "Fri, 31 Dec 9999 23:59:59 GMT", now: .min) == .seconds(3_600))
    }

    @Test func datesAreMeasuredFromNow() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(RetryAfter.delay(parsing: date, now: 784_111_777 - 45) == .seconds(45))
        #expect(RetryAfter.delay(parsing: date, now: 784_111_777) == .zero)
        #expect(RetryAfter.delay(parsing: date, now: 784_111_777 + 1) == .zero)
        #expect(RetryAfter.delay(parsing: date, now: .max) == .zero)
        #expect(RetryAfter.delay(parsing: " \(date) ", now: 784_111_777 - 5) == .seconds(5))
    }

    @Test(arguments: [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Sat, 01 Jan 2000 00:00:00 GMT", 946_684_800),
        ("Thu, 29 Feb 2024 00:00:00 GMT", 1_709_164_800),
        ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 253_402_300_799),
        ("Wed, 31 Dec 1969 23:59:59 GMT", -1),
        ("Mon, 06 Nov 1994 08:49:37 GMT", 784_111_777),
    ] as [(String, Int64)])
    func imfFixdates(text: String, unixSeconds: Int64) {
        #expect(HTTPDate.unixSeconds(imfFixdate: text) == unixSeconds)
    }

    @Test(arguments: [
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT ",
        "Sun, 06 Nov 1994 08:49:37 GMT+1",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Wed, 29 Feb 2023 00:00:00 GMT",
        "Mon, 29 Feb 1900 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 19x4 08:49:37 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "",
    ])
    func notIMFFixdates(text: String) {
        #expect(HTTPDate.unixSeconds(imfFixdate: text) == nil)
    }
}
