/// Proleptic Gregorian date arithmetic on the Postgres epoch (2000-01-01), the calendar
/// Postgres itself uses for `date` and `timestamp`. Howard Hinnant's algorithms.
public enum CivilCalendar {
    /// Days between 1970-01-01 and 2000-01-01.
    private static let epochShift: Int64 = 10_957

    /// `year` is astronomical (1 BC is year 0).
    public static func daysSince2000(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468 - epochShift
    }

    /// Unix days, for HTTP dates.
    public static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        daysSince2000(year: year, month: month, day: day) + epochShift
    }

    public static func date(daysSince2000 days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + epochShift + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
