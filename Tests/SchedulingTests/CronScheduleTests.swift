import Foundation
import Scheduling
import Testing

/// `2026-03-01 12:30` (UTC) as a Date.
func utc(_ text: String) -> Date {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = text.count > 16 ? "yyyy-MM-dd HH:mm:ss" : "yyyy-MM-dd HH:mm"
    return formatter.date(from: text)!
}

@Suite struct CronScheduleTests {
    struct NextCase: CustomStringConvertible {
        var cron: String
        var after: String
        var next: String
        var description: String { "\(cron) after \(after)" }
    }

    static let nextCases: [NextCase] = [
        // Every syntax form.
        NextCase(cron: "* * * * *", after: "2026-03-01 12:30", next: "2026-03-01 12:31"),
        NextCase(cron: "* * * * *", after: "2026-03-01 12:30:59", next: "2026-03-01 12:31"),
        NextCase(cron: "15 * * * *", after: "2026-03-01 12:30", next: "2026-03-01 13:15"),
        NextCase(cron: "10-20 * * * *", after: "2026-03-01 12:20", next: "2026-03-01 13:10"),
        NextCase(cron: "5,45 * * * *", after: "2026-03-01 12:30", next: "2026-03-01 12:45"),
        NextCase(cron: "*/15 * * * *", after: "2026-03-01 12:46", next: "2026-03-01 13:00"),
        NextCase(cron: "10-40/10 * * * *", after: "2026-03-01 12:40", next: "2026-03-01 13:10"),
        NextCase(cron: "0 9-17/4 * * *", after: "2026-03-01 13:00", next: "2026-03-01 17:00"),
        NextCase(cron: "0 0 * jan,Jul *", after: "2026-03-01 12:00", next: "2026-07-01 00:00"),
        NextCase(cron: "0 0 * * mon-FRI", after: "2026-03-06 12:00", next: "2026-03-09 00:00"), // Friday → Monday
        NextCase(cron: "0 0 * * 7", after: "2026-03-02 00:00", next: "2026-03-08 00:00"), // 7 is Sunday
        NextCase(cron: "0 0 * * 0", after: "2026-03-02 00:00", next: "2026-03-08 00:00"),
        NextCase(cron: "0 0 * * 5-7", after: "2026-03-02 00:00", next: "2026-03-06 00:00"),
        NextCase(cron: "0 12 * * */2", after: "2026-03-01 12:00", next: "2026-03-03 12:00"), // Sun → Tue
        // `0 3 * * 0`: weekly, Sunday 03:00.
        NextCase(cron: "0 3 * * 0", after: "2026-03-01 03:00", next: "2026-03-08 03:00"),
        NextCase(cron: "0 3 * * 0", after: "2026-03-01 02:59", next: "2026-03-01 03:00"),
        // Month ends and leap days.
        NextCase(cron: "0 0 31 * *", after: "2026-04-01 00:00", next: "2026-05-31 00:00"),
        NextCase(cron: "0 0 30 * *", after: "2026-01-30 00:00", next: "2026-03-30 00:00"),
        NextCase(cron: "0 0 29 2 *", after: "2026-03-01 00:00", next: "2028-02-29 00:00"),
        NextCase(cron: "0 0 29 2 *", after: "2096-03-01 00:00", next: "2104-02-29 00:00"), // 2100 is not a leap year
        NextCase(cron: "59 23 28-31 * *", after: "2026-02-28 23:59", next: "2026-03-28 23:59"),
        // Both day fields restricted: either matches (the 13th, or any Friday).
        NextCase(cron: "0 0 13 * 5", after: "2026-03-01 00:00", next: "2026-03-06 00:00"),
        NextCase(cron: "0 0 13 * 5", after: "2026-03-10 00:00", next: "2026-03-13 00:00"),
        NextCase(cron: "0 0 1 * mon", after: "2026-03-01 00:00", next: "2026-03-02 00:00"),
        // One of them `*`: the other alone decides; `*/n` counts as `*`, as in Vixie cron.
        // The first 1st, 11th, 21st or 31st that is a Monday.
        NextCase(cron: "0 0 */10 * 1", after: "2026-03-01 00:00", next: "2026-05-11 00:00"),
        // Year rollover.
        NextCase(cron: "0 0 1 1 *", after: "2026-12-31 23:59", next: "2027-01-01 00:00"),
        NextCase(cron: "30 23 31 12 *", after: "2026-12-31 23:30", next: "2027-12-31 23:30"),
        NextCase(cron: "* * * * *", after: "2026-12-31 23:59", next: "2027-01-01 00:00"),
    ]

    @Test(arguments: nextCases)
    func next(_ test: NextCase) throws {
        let cron = try CronSchedule(parsing: test.cron)
        #expect(cron.next(after: utc(test.after)) == utc(test.next))
    }

    static let previousCases: [NextCase] = [
        NextCase(cron: "* * * * *", after: "2026-03-01 12:30:40", next: "2026-03-01 12:30"),
        NextCase(cron: "0 * * * *", after: "2026-03-01 12:30", next: "2026-03-01 12:00"),
        NextCase(cron: "0 3 * * 0", after: "2026-03-07 12:00", next: "2026-03-01 03:00"),
        NextCase(cron: "0 0 29 2 *", after: "2027-06-01 00:00", next: "2024-02-29 00:00"),
        NextCase(cron: "0 0 31 * *", after: "2026-05-01 00:00", next: "2026-03-31 00:00"),
        NextCase(cron: "0 0 1 1 *", after: "2027-01-01 00:00", next: "2027-01-01 00:00"),
        NextCase(cron: "45 23 31 12 *", after: "2027-01-01 00:00", next: "2026-12-31 23:45"),
        NextCase(cron: "0 0 13 * 5", after: "2026-03-12 00:00", next: "2026-03-06 00:00"),
    ]

    @Test(arguments: previousCases)
    func previous(_ test: NextCase) throws {
        let cron = try CronSchedule(parsing: test.cron)
        #expect(cron.previous(atOrBefore: utc(test.after)) == utc(test.next))
    }

    /// Skipping by field: the worst cases are found in a few dozen steps, not by minutes.
    @Test func farAwayTimesAreFoundFast() throws {
        let cron = try CronSchedule(parsing: "0 0 29 2 *")
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            var date = utc("2026-01-01 00:00")
            for _ in 0..<1_000 { date = cron.next(after: date) }
        }
        #expect(elapsed < .seconds(1))
    }

    struct BadCase: CustomStringConvertible {
        var cron: String
        var error: String
        var description: String { cron }
    }

    static let badCases: [BadCase] = [
        BadCase(cron: "* * * *", error: "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        BadCase(cron: "* * * * * *", error: "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
        BadCase(cron: "60 * * * *", error: #"cron field "minute": 60 is out of range 0-59"#),
        BadCase(cron: "0 24 * * *", error: #"cron field "hour": 24 is out of range 0-23"#),
        BadCase(cron: "0 0 0 * *", error: #"cron field "day-of-month": 0 is out of range 1-31"#),
        BadCase(cron: "0 0 32 * *", error: #"cron field "day-of-month": 32 is out of range 1-31"#),
        BadCase(cron: "0 0 * 13 *", error: #"cron field "month": 13 is out of range 1-12"#),
        BadCase(cron: "0 0 * * 8", error: #"cron field "day-of-week": 8 is out of range 0-7"#),
        BadCase(cron: "x * * * *", error: #"cron field "minute": 'x' is not a number"#),
        BadCase(cron: "0 0 * FOO *", error: #"cron field "month": 'FOO' is not a number or a name (JAN…DEC)"#),
        BadCase(cron: "0 0 * * MONDAY", error: #"cron field "day-of-week": 'MONDAY' is not a number or a name (SUN…SAT)"#),
        BadCase(cron: "0 0 * JAN-MON *", error: #"cron field "month": 'MON' is not a number or a name (JAN…DEC)"#),
        BadCase(cron: "20-10 * * * *", error: #"cron field "minute": range '20-10' goes backwards"#),
        BadCase(cron: "*/0 * * * *", error: #"cron field "minute": step '0' in '*/0' is not a positive number"#),
        BadCase(cron: "*/x * * * *", error: #"cron field "minute": step 'x' in '*/x' is not a positive number"#),
        BadCase(cron: "+5 * * * *", error: #"cron field "minute": '+5' is not a number"#),
        BadCase(cron: "*/+5 * * * *", error: #"cron field "minute": step '+5' in '*/+5' is not a positive number"#),
        BadCase(cron: "*/61 * * * *", error: #"cron field "minute": step 61 in '*/61' is larger than the field's range 0-59"#),
        BadCase(cron: "5/10 * * * *", error: #"cron field "minute": a step needs '*' or a range before it, got '5/10'"#),
        BadCase(cron: "1,,2 * * * *", error: #"cron field "minute": empty item in '1,,2'"#),
        BadCase(cron: "1- * * * *", error: #"cron field "minute": range '1-' lacks a bound (no value is negative)"#),
        BadCase(cron: "-1 * * * *", error: #"cron field "minute": range '-1' lacks a bound (no value is negative)"#),
        BadCase(cron: "99999999999999999999 * * * *", error: #"cron field "minute": '99999999999999999999' is out of range 0-59"#),
        // A control character is shown escaped, never raw: it could forge a second log line.
        BadCase(cron: "0 0 * * 1\u{7}", error: #"cron field "day-of-week": '1\u{07}' is not a number or a name (SUN…SAT)"#),
        BadCase(cron: "0 0 30 2 *", error: #"cron field "day-of-month": day 30 never occurs in the months of the month field"#),
        BadCase(cron: "0 0 31 4,6 *", error: #"cron field "day-of-month": day 31 never occurs in the months of the month field"#),
    ]

    /// Any white space separates fields: a TOML multi-line string ends in a line break, and
    /// a file written on Windows in a carriage return too.
    @Test func lineBreaksSeparateFieldsAsSpacesDo() throws {
        #expect(try CronSchedule(parsing: "0 0 * * *\r\n") == CronSchedule(parsing: "0 0 * * *"))
        #expect(try CronSchedule(parsing: "0\t0 *\n* *") == CronSchedule(parsing: "0 0 * * *"))
    }

    @Test(arguments: badCases)
    func badExpressionsNameTheirField(_ test: BadCase) {
        #expect(throws: CronError.self) { try CronSchedule(parsing: test.cron) }
        do {
            _ = try CronSchedule(parsing: test.cron)
        } catch {
            #expect(error.description == test.error)
        }
    }

    /// February 30th with a weekday as well is fine: the weekdays still match.
    @Test func anImpossibleDayWithAWeekdayStillRuns() throws {
        let cron = try CronSchedule(parsing: "0 0 30 2 1")
        #expect(cron.next(after: utc("2026-01-01 00:00")) == utc("2026-02-02 00:00"))
    }

    @Test func theDescriptionIsTheExpression() throws {
        #expect(try CronSchedule(parsing: "  0   3 * *\t0 ").description == "0 3 * * 0")
    }
}
