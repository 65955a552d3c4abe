import Core

extension JSONWriter {
    /// Writes a `date` in ISO DateStyle (`2024-02-29`, `0044-03-15 BC`, `infinity`).
    mutating func postgresDate(daysSince2000 days: Int32) {
        switch days {
        case .max: string("infinity")
        case .min: string("-infinity")
        default:
            var text: [UInt8] = []
            text.reserveCapacity(16)
            let (year, month, day) = CivilCalendar.date(daysSince2000: Int64(days))
            Self.appendDate(year: year, month: month, day: day, to: &text)
            if year <= 0 { text.append(contentsOf: " BC".utf8) }
            string(utf8: text)
        }
    }

    /// Writes a `timestamp` (`withZone: false`) or a `timestamptz` rendered with
    /// TimeZone=UTC, as Postgres prints them with DateStyle=ISO: fraction trimmed of
    /// trailing zeros, ` BC` last.
    mutating func postgresTimestamp(microsecondsSince2000 value: Int64, withZone: Bool) {
        switch value {
        case .max: string("infinity")
        case .min: string("-infinity")
        default:
            var text: [UInt8] = []
            text.reserveCapacity(40)
            var days = value / 86_400_000_000
            var timeOfDay = value % 86_400_000_000
            if timeOfDay < 0 {
                timeOfDay += 86_400_000_000
                days -= 1
            }
            let (year, month, day) = CivilCalendar.date(daysSince2000: days)
            Self.appendDate(year: year, month: month, day: day, to: &text)
            let seconds = timeOfDay / 1_000_000
            text.append(UInt8(ascii: " "))
            Self.appendPadded(seconds / 3600, width: 2, to: &text)
            text.append(UInt8(ascii: ":"))
            Self.appendPadded(seconds / 60 % 60, width: 2, to: &text)
            text.append(UInt8(ascii: ":"))
            Self.appendPadded(seconds % 60, width: 2, to: &text)
            var fraction = timeOfDay % 1_000_000
            if fraction != 0 {
                var width = 6
                while fraction % 10 == 0 {
                    fraction /= 10
                    width -= 1
                }
                text.append(UInt8(ascii: "."))
                Self.appendPadded(fraction, width: width, to: &text)
            }
            if withZone { text.append(contentsOf: "+00".utf8) }
            if year <= 0 { text.append(contentsOf: " BC".utf8) }
            string(utf8: text)
        }
    }

    private static func appendDate(year: Int64, month: Int64, day: Int64, to text: inout [UInt8]) {
        appendPadded(year <= 0 ? 1 - year : year, width: 4, to: &text)
        text.append(UInt8(ascii: "-"))
        appendPadded(month, width: 2, to: &text)
        text.append(UInt8(ascii: "-"))
        appendPadded(day, width: 2, to: &text)
    }

    private static func appendPadded(_ value: Int64, width: Int, to text: inout [UInt8]) {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        for _ in digits..<max(width, digits) { text.append(UInt8(ascii: "0")) }
        var divisor: Int64 = 1
        for _ in 1..<digits { divisor *= 10 }
        while divisor > 0 {
            text.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }
}
