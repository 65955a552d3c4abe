import Core
import Foundation

/// A five-field cron expression (minute hour day-of-month month day-of-week), read in
/// UTC, as pg_cron and Vixie cron read it: `*`, numbers, ranges `a-b`, lists `a,b`,
/// steps `*/n` and `a-b/n`, month and weekday names (any case), 0 and 7 for Sunday.
/// When both day fields are restricted (neither starts with `*`) a day matches either
/// of them, as cron has always done; otherwise it must match both.
///
/// `next(after:)` and `previous(atOrBefore:)` skip by field (a month that is not
/// allowed is passed over whole, then days, hours and minutes), so even a yearly
/// expression is found in a few dozen steps.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written, for listings and logs.
    public let description: String
    private let minutes: CronValues
    private let hours: CronValues
    private let daysOfMonth: CronValues
    private let months: CronValues
    private let daysOfWeek: CronValues
    private let dayOfMonthRestricted: Bool
    private let dayOfWeekRestricted: Bool

    public init(parsing text: String) throws(CronError) {
        // Any white space separates, a line break too: a TOML multi-line string ends in one.
        let parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard parts.count == CronField.allCases.count else {
            throw CronError(field: nil, reason: "expected 5 fields (minute hour day-of-month month day-of-week), got \(parts.count)")
        }
        description = parts.joined(separator: " ")
        minutes = try Self.values(parts[0], .minute)
        hours = try Self.values(parts[1], .hour)
        daysOfMonth = try Self.values(parts[2], .dayOfMonth)
        months = try Self.values(parts[3], .month)
        var weekdays = try Self.values(parts[4], .dayOfWeek)
        if weekdays.contains(7) { weekdays.insert(0) }
        daysOfWeek = weekdays
        dayOfMonthRestricted = !parts[2].hasPrefix("*")
        dayOfWeekRestricted = !parts[4].hasPrefix("*")
        // Only the day-of-month field can name a day that never comes (`30 2`, February 30th);
        // with a weekday list as well, the weekdays still match.
        if dayOfMonthRestricted, !dayOfWeekRestricted {
            let longest = (1...12).filter(months.contains).map { $0 == 2 ? 29 : Int(CivilCalendar.daysInMonth(year: 2001, month: Int64($0))) }.max() ?? 0
            guard daysOfMonth.minimum <= longest else {
                throw CronError(field: .dayOfMonth, reason: "day \(daysOfMonth.minimum) never occurs in the months of the month field")
            }
        }
    }

    /// The first minute strictly after `date` that the expression matches.
    public func next(after date: Date) -> Date {
        var time = CivilMinute(unixMinute: CivilMinute.floorMinute(date) + 1)
        while true {
            if !months.contains(time.month) {
                if let month = months.first(after: time.month) { time.month = month } else { time.year += 1; time.month = months.minimum }
                time.day = 1; time.hour = 0; time.minute = 0
            } else if !matchesDay(time) {
                time.startNextDay()
            } else if !hours.contains(time.hour) {
                if let hour = hours.first(after: time.hour) { time.hour = hour; time.minute = 0 } else { time.startNextDay() }
            } else if !minutes.contains(time.minute) {
                if let minute = minutes.first(after: time.minute) { time.minute = minute } else { time.startNextHour() }
            } else {
                return time.date
            }
        }
    }

    /// The last minute at or before `date` that the expression matches: the due time a
    /// run missed while nothing was up would have had.
    public func previous(atOrBefore date: Date) -> Date {
        var time = CivilMinute(unixMinute: CivilMinute.floorMinute(date))
        while true {
            if !months.contains(time.month) {
                if let month = months.last(before: time.month) { time.month = month } else { time.year -= 1; time.month = months.last ?? 12 }
                time.day = time.daysInMonth; time.hour = 23; time.minute = 59
            } else if !matchesDay(time) {
                time.endPreviousDay()
            } else if !hours.contains(time.hour) {
                if let hour = hours.last(before: time.hour) { time.hour = hour; time.minute = 59 } else { time.endPreviousDay() }
            } else if !minutes.contains(time.minute) {
                if let minute = minutes.last(before: time.minute) { time.minute = minute } else { time.endPreviousHour() }
            } else {
                return time.date
            }
        }
    }

    private func matchesDay(_ time: CivilMinute) -> Bool {
        let dayOfMonth = daysOfMonth.contains(time.day)
        let dayOfWeek = daysOfWeek.contains(time.dayOfWeek)
        return dayOfMonthRestricted && dayOfWeekRestricted ? dayOfMonth || dayOfWeek : dayOfMonth && dayOfWeek
    }

    /// One field's list: items separated by commas, each `*`, `v`, `a-b`, optionally `/step`.
    private static func values(_ text: String, _ field: CronField) throws(CronError) -> CronValues {
        var values = CronValues()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw CronError(field: field, reason: "empty item in \(quotedExcerpt(text))") }
            let pieces = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if pieces.count == 2 {
                guard pieces[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }), let number = Int(pieces[1]), number >= 1 else {
                    throw CronError(field: field, reason: "step \(quotedExcerpt(String(pieces[1]))) in \(quotedExcerpt(String(item))) is not a positive number")
                }
                guard number <= field.range.count else {
                    throw CronError(field: field, reason: "step \(number) in \(quotedExcerpt(String(item))) is larger than the field's range \(field.range.lowerBound)-\(field.range.upperBound)")
                }
                step = number
            }
            let base = pieces[0]
            let range: ClosedRange<Int>
            if base == "*" {
                range = field == .dayOfWeek ? 0...6 : field.range
            } else if let dash = base.firstIndex(of: "-") {
                guard dash != base.startIndex, base.index(after: dash) != base.endIndex else {
                    throw CronError(field: field, reason: "range \(quotedExcerpt(String(base))) lacks a bound (no value is negative)")
                }
                let low = try value(base[..<dash], field), high = try value(base[base.index(after: dash)...], field)
                guard low <= high else { throw CronError(field: field, reason: "range \(quotedExcerpt(String(base))) goes backwards") }
                range = low...high
            } else {
                guard pieces.count == 1 else {
                    throw CronError(field: field, reason: "a step needs '*' or a range before it, got \(quotedExcerpt(String(item)))")
                }
                let single = try value(base, field)
                range = single...single
            }
            for value in stride(from: range.lowerBound, through: range.upperBound, by: step) { values.insert(value) }
        }
        return values
    }

    private static func value(_ text: Substring, _ field: CronField) throws(CronError) -> Int {
        if let index = field.names.firstIndex(of: text.uppercased()) { return field.range.lowerBound + index }
        // Digits only: `Int` also reads `+5`, which no cron accepts.
        let digits = !text.isEmpty && text.utf8.allSatisfy({ (0x30...0x39).contains($0) })
        guard digits, let number = Int(text) else {
            if digits {
                throw CronError(field: field, reason: "\(quotedExcerpt(String(text))) is out of range \(field.range.lowerBound)-\(field.range.upperBound)")
            }
            let names = field.names.isEmpty ? "" : " or a name (\(field.names.first!)…\(field.names.last!))"
            throw CronError(field: field, reason: "\(quotedExcerpt(String(text))) is not a number\(names)")
        }
        guard field.range.contains(number) else {
            throw CronError(field: field, reason: "\(number) is out of range \(field.range.lowerBound)-\(field.range.upperBound)")
        }
        return number
    }
}
