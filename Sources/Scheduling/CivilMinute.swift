import Core
import Foundation

/// A UTC minute as calendar fields, which cron matches against; moving to the start of
/// the next day or hour (or the end of the previous one) carries into months and years.
struct CivilMinute {
    var year: Int64
    var month: Int
    var day: Int
    var hour: Int
    var minute: Int

    /// Minutes since 1970-01-01 00:00 UTC, rounded down (a date before 1970 rounds toward the past too).
    static func floorMinute(_ date: Date) -> Int64 {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        return seconds >= 0 ? seconds / 60 : -((-seconds + 59) / 60)
    }

    init(unixMinute: Int64) {
        let days = unixMinute >= 0 ? unixMinute / 1440 : -((-unixMinute + 1439) / 1440)
        let minuteOfDay = Int(unixMinute - days * 1440)
        let civil = CivilCalendar.date(daysSince2000: days - CivilCalendar.daysSince1970(year: 2000, month: 1, day: 1))
        year = civil.year
        month = Int(civil.month)
        day = Int(civil.day)
        hour = minuteOfDay / 60
        minute = minuteOfDay % 60
    }

    var daysInMonth: Int { Int(CivilCalendar.daysInMonth(year: year, month: Int64(month))) }

    private var unixDay: Int64 { CivilCalendar.daysSince1970(year: year, month: Int64(month), day: Int64(day)) }

    /// 0 for Sunday; 1970-01-01 was a Thursday.
    var dayOfWeek: Int { Int(((unixDay + 4) % 7 + 7) % 7) }

    var date: Date { Date(timeIntervalSince1970: Double((unixDay * 1440 + Int64(hour * 60 + minute)) * 60)) }

    mutating func startNextDay() {
        hour = 0
        minute = 0
        day += 1
        if day > daysInMonth {
            day = 1
            month += 1
            if month > 12 { month = 1; year += 1 }
        }
    }

    mutating func startNextHour() {
        minute = 0
        hour += 1
        if hour > 23 { startNextDay() }
    }

    mutating func endPreviousDay() {
        hour = 23
        minute = 59
        day -= 1
        if day < 1 {
            month -= 1
            if month < 1 { month = 12; year -= 1 }
            day = daysInMonth
        }
    }

    mutating func endPreviousHour() {
        minute = 59
        hour -= 1
        if hour < 0 { endPreviousDay() }
    }
}
